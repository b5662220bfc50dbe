"""Golden PBS / Torque / SGE / LSF scripts over a matrix of resources.

Regenerate after an intended change with
``UPDATE_GOLDEN=1 pytest tests/unit/test_pbs_sge_lsf_golden.py`` and review the diff of
``tests/fixtures/scripts/{pbs,torque,sge,lsf}/``. A missing golden file is a failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine
from tests import golden
from tests.golden import make_job

SCRIPTS = Path(__file__).parent.parent / "fixtures" / "scripts"
FLAVOURS = {"pbs": "PBS", "torque": "Torque", "sge": "SGE", "lsf": "LSF"}
CUDA = {"if_cuda_multi_devices": True}

#: case -> (number of tasks, task_name, resources keywords); run for every flavour
COMMON: dict[str, tuple[int, str | None, dict[str, Any]]] = {
    "cpu": (3, None, {}),
    "cpu_para_deg": (5, None, {"para_deg": 2}),
    "multi_node": (2, None, {"number_node": 2, "cpu_per_node": 8}),
    "gpu_cuda_multi": (
        6,
        None,
        {"gpu_per_node": 2, "para_deg": 2, "queue_name": "gpu", "strategy": CUDA},
    ),
    "custom_flags": (
        2,
        None,
        {"queue_name": "normal", "custom_flags": ["# site flag one", "# site flag two"]},
    ),
    "modules_sources_envs": (
        2,
        None,
        {
            "module_purge": True,
            "module_unload_list": ["intel/old"],
            "module_list": ["intel/2023", "cuda/12.1"],
            "source_list": ["/opt/env.sh", "~/my env.sh"],
            "envs": {"OMP_NUM_THREADS": 4, "PATH": "/opt/bin:$PATH", "LIST": ["a", "b c"]},
        },
    ),
    "prepend_append": (
        2,
        None,
        {
            "prepend_script": ["ulimit -s unlimited", "set -x"],
            "append_script": ["echo all done", "date"],
        },
    ),
    "template_header": (
        2,
        None,
        {
            "queue_name": "debug",
            "strategy": {"customized_script_header_template_file": "{template}"},
        },
    ),
    "job_name": (1, "relax Fe/bcc #1", {"queue_name": "normal"}),
    "job_name_ignored_for_groups": (2, "relax", {}),
}

#: flavour-specific cases: case -> (number of tasks, task_name, resources keywords)
SPECIFIC: dict[str, dict[str, tuple[int, str | None, dict[str, Any]]]] = {
    "pbs": {
        "flags_select": (
            1,
            None,
            {"custom_flags": ["#PBS -l walltime=1:00:00", "#PBS -l mem=4gb"]},
        ),
    },
    "torque": {
        "long_job_name": (1, "a_rather_long_job_name_for_torque", {}),
    },
    "sge": {
        "pe_name_job_name": (
            3,
            None,
            {"queue_name": "all.q", "kwargs": {"pe_name": "smp", "job_name": "my run/1"}},
        ),
        "sge_pe_name_alias": (1, "9lives", {"kwargs": {"sge_pe_name": "orte"}}),
    },
    "lsf": {
        "gpu_old_syntax": (2, None, {"gpu_per_node": 2, "kwargs": {"gpu_usage": True}}),
        "gpu_new_syntax": (
            2,
            None,
            {"gpu_per_node": 1, "kwargs": {"gpu_usage": True, "gpu_new_syntax": True}},
        ),
        "gpu_new_syntax_shared": (
            2,
            None,
            {
                "gpu_per_node": 4,
                "kwargs": {"gpu_usage": True, "gpu_new_syntax": True, "gpu_exclusive": False},
            },
        ),
        "gpu_without_gpu_usage": (1, None, {"gpu_per_node": 2}),
        "custom_gpu_line": (
            1,
            None,
            {
                "gpu_per_node": 2,
                "kwargs": {
                    "gpu_usage": True,
                    "custom_gpu_line": "#BSUB -gpu 'num=2:gmodel=NVIDIAA100'",
                },
            },
        ),
    },
}

CASES = [(flavour, case) for flavour in FLAVOURS for case in [*COMMON, *SPECIFIC[flavour]]]


def spec(flavour: str, case: str) -> tuple[int, str | None, dict[str, Any]]:
    n, name, res = COMMON.get(case) or SPECIFIC[flavour][case]
    strategy = res.get("strategy", {})
    if strategy.get("customized_script_header_template_file") == "{template}":
        template = str(SCRIPTS / flavour / "header_template.tpl")
        res = {**res, "strategy": {"customized_script_header_template_file": template}}
    return n, name, res


def make_machine(flavour: str, tmp_path: Path) -> Machine:
    return golden.make_machine(FLAVOURS[flavour], tmp_path)


def render(flavour: str, case: str, tmp_path: Path) -> tuple[str, str, str]:
    return golden.render(make_machine(flavour, tmp_path), make_job(*spec(flavour, case)))


@pytest.mark.parametrize(("flavour", "case"), CASES)
def test_golden_scripts(flavour: str, case: str, tmp_path: Path) -> None:
    text, _, _ = render(flavour, case, tmp_path)
    golden.check_golden(SCRIPTS / flavour / f"{case}.sub", text)


@pytest.mark.parametrize(("flavour", "case"), CASES)
def test_valid_bash_shebang_first_and_pure(flavour: str, case: str, tmp_path: Path) -> None:
    job = make_job(*spec(flavour, case))
    before = job.resources.serialize()
    machine = make_machine(flavour, tmp_path)
    script, body = machine.gen_script(job), machine.gen_run_body(job)
    assert script.startswith("#!/bin/bash")
    for text in (script, body):
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    assert machine.gen_script(job) == script and machine.gen_run_body(job) == body
    assert job.resources.serialize() == before


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_golden_file_has_a_case(flavour: str) -> None:
    known = {case for fl, case in CASES if fl == flavour}
    stale = {p.stem for p in (SCRIPTS / flavour).glob("*.sub")} - known
    assert not stale, f"golden files without a case: {sorted(stale)}"
