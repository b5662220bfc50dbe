"""The dargs schemas accept every spelling the registries accept (SPEC §3, revised).

Clients validate their files against ``Machine.arginfo()`` / ``Resources.arginfo()`` with
dargs' own strict check (DP-GEN embeds them in its mdata schema; DP-GUI checks files), so
the checks below call dargs directly, exactly as they do, on configurations spelled the way
DP-GEN's example machine files spell them (``"context_type": "local"``, ``"lazylocal"``,
``"ssh"``; ``"batch_type": "shell"`` ...).
"""

from __future__ import annotations

from typing import Any

import pytest
from dargs import Argument
from dargs.dargs import ArgumentError

from dpdispatcher import Machine, Resources
from dpdispatcher.arginfo import machine_dargs, resources_dargs
from dpdispatcher.base_context import BaseContext

SSH_PROFILE = {"hostname": "login.example.org", "username": "me", "port": 22}


def machine_for(context_type: str, batch_type: str = "Slurm") -> dict[str, Any]:
    data: dict[str, Any] = {
        "batch_type": batch_type,
        "context_type": context_type,
        "local_root": "./",
        "remote_root": "/scratch/me",
    }
    cls = BaseContext.get_class(context_type).__name__
    if cls == "SSHContext":
        data["remote_profile"] = dict(SSH_PROFILE)
    elif cls == "DpCloudServerContext":
        data["remote_profile"] = {
            "email": "a@b.c",
            "password": "x",
            "program_id": 1,
            "input_data": {"job_type": "container"},
        }
    return data


def _spellings(registry: Any) -> list[str]:
    return sorted(registry.subclasses_dict)


@pytest.mark.parametrize("context_type", _spellings(BaseContext))
def test_machine_schema_accepts_every_context_spelling(context_type: str) -> None:
    schema: Argument = Machine.arginfo()
    schema.check_value(machine_for(context_type), strict=True)


@pytest.mark.parametrize("batch_type", _spellings(Machine))
def test_resources_schema_accepts_every_batch_spelling(batch_type: str) -> None:
    schema: Argument = Resources.arginfo()
    schema.check_value({"group_size": 1, "batch_type": batch_type}, strict=True)
    Machine.arginfo().check_value(machine_for("local", batch_type), strict=True)


@pytest.mark.parametrize(
    "spelling",
    [
        "local",
        "Local",
        "LocalContext",
        "lazylocal",
        "LazyLocal",
        "ssh",
        "SSH",
        "SSHContext",
        "sshcontext",
        "Bohrium",
        "BohriumContext",
        "lebesgue",
    ],
)
def test_dpgen_style_mdata_with_embedded_schemas(spelling: str) -> None:
    """DP-GEN's mdata schema embeds ours under new names, as its ``mdata_arginfo`` does."""
    machine = Machine.arginfo()
    machine.name = "machine"
    resources = Resources.arginfo()
    resources.name = "resources"
    task = Argument("fp", dict, [Argument("command", str), machine, resources])
    mdata = Argument("mdata", dict, [task])
    value = {
        "fp": {
            "command": "vasp_std",
            "machine": machine_for(spelling, "shell"),
            "resources": {
                "group_size": 1,
                "batch_type": "shell",
                "cpu_per_node": 4,
                "kwargs": {"anything": 1},
            },
        }
    }
    mdata.check_value(value, strict=True)
    # the schema still checks: a misspelt key is refused by dargs' strict check
    value["fp"]["resources"]["cpu_per_nod"] = 1
    with pytest.raises(ArgumentError, match="cpu_per_nod"):
        mdata.check_value(value, strict=True)


def test_free_kwargs_without_detail_and_checked_kwargs_with_it() -> None:
    resources_dargs(detail_kwargs=False).check_value(
        {"group_size": 1, "kwargs": {"qos": "high"}}, strict=True
    )
    with pytest.raises(ArgumentError, match="slurm_job_size"):
        resources_dargs().check_value(
            {"group_size": 1, "batch_type": "slurmjobarray", "kwargs": {"slurm_job_size": "x"}},
            strict=True,
        )


def test_unknown_context_spelling_is_still_refused() -> None:
    with pytest.raises(ArgumentError):
        machine_dargs().check_value(machine_for("local") | {"context_type": "nowhere"}, strict=True)
