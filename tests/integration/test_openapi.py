"""The OpenAPI batch type end to end against the emulator's OpenAPI and Tiefblue routes.

bohrium-sdk (the ``bohrium`` extra) is installed from PyPI at test time when missing
(``tests/cloud_emulator/original.py``). The original 1.1.0 OpenAPI backend is run
against the same emulator first, so the routes are those it uses, and this package's
requests must have the shapes of the original's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine
from dpdispatcher.contexts.dp_cloud_server_context import DpCloudServerContext
from dpdispatcher.errors import ConfigurationError, JobFailedError
from dpdispatcher.machines.openapi import OpenAPI
from tests.cloud_emulator.original import OPENAPI_DRIVER, ensure_bohrium_sdk, original_python
from tests.cloud_emulator.server import CloudEmulator
from tests.integration.test_cloud_wire import make_inputs, shapes, three_tasks

pytest_plugins = ["tests.cloud_emulator.fixture"]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _sdk_and_fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    ensure_bohrium_sdk()
    monkeypatch.setattr(DpCloudServerContext, "client_options", {"backoff": 0.01})
    yield


@pytest.fixture
def access_key(cloud_emulator: CloudEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in cloud_emulator.openapi_env().items():
        monkeypatch.setenv(name, value)
    for name in ("BOHRIUM_ACCESS_KEY", "ACCESS_KEY", "BOHRIUM_PROJECT_ID", "PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    return cloud_emulator.issue_access_key()


def openapi_machine(work: Path, key: str, **extra: Any) -> Machine:
    profile = {
        "access_key": key,
        "project_id": 4242,
        "machine_type": "c2_m4_cpu",
        "image_address": "ubuntu:22.04",
        "job_name": "wire",
        "platform": "ali",
        **extra,
    }
    return Machine.load_from_dict(
        {
            "batch_type": "OpenAPI",
            "context_type": "OpenAPIContext",
            "local_root": str(work),
            "remote_profile": profile,
            "retry_count": 1,
        }
    )


def test_round_trip_with_the_originals_request_shapes(
    cloud_emulator: CloudEmulator, access_key: str, tmp_path: Path
) -> None:
    orig_work = tmp_path / "orig"
    make_inputs(orig_work)
    (tmp_path / "driver.py").write_text(OPENAPI_DRIVER)
    env = {**os.environ, "EMU_AK": access_key}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(original_python()), str(tmp_path / "driver.py"), str(orig_work)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "COMPLETED" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    theirs = shapes(cloud_emulator.requests)
    cloud_emulator.reset_calls()
    before = len(cloud_emulator.requests)

    work = tmp_path / "ours"
    make_inputs(work)
    sub = three_tasks(openapi_machine(work, access_key))
    sub.run_submission(check_interval=0.3)
    for i in range(3):
        assert (work / f"t{i}" / "out.txt").read_text() == f"in {i}\nc\n"
    assert cloud_emulator.rejected == []
    ours = shapes(cloud_emulator.requests[before:])
    assert ours["POST /openapi/v2/job/add"]
    for route, seen in ours.items():
        assert route in theirs, f"{route}: the original never sends it"
        assert seen <= theirs[route], f"{route}: {seen - theirs[route]} not in {theirs[route]}"
    assert cloud_emulator.calls["POST /openapi/v1/job/create"] == 3
    # grouped by default: jobs 2 and 3 join the first job's group
    creates = [r["json"] for r in cloud_emulator.requests[before:] if r["route"].endswith("create")]
    assert ["bohrGroupId" in body for body in creates] == [False, True, True]
    # the access key is never persisted
    home = Path(os.environ["DPDISPATCHER_HOME"])
    for path in [*home.rglob("*.json"), *work.rglob("*")]:
        if path.is_file():
            assert access_key not in path.read_text(errors="replace"), path


def test_a_5xx_burst_is_ridden_out_and_each_job_added_once(
    cloud_emulator: CloudEmulator, access_key: str, tmp_path: Path
) -> None:
    work = tmp_path / "w"
    make_inputs(work)
    cloud_emulator.fail_next(3, status=503, path_prefix="/openapi/v1/job/create")
    cloud_emulator.fail_next(8, status=502, path_prefix="/openapi/v1/job/5")
    sub = three_tasks(openapi_machine(work, access_key))
    sub.run_submission(check_interval=0.2)
    assert all((work / f"t{i}" / "out.txt").exists() for i in range(3))
    assert cloud_emulator.calls["POST /openapi/v2/job/add"] == 3
    assert cloud_emulator.rejected == []


def test_a_failed_job_names_its_cloud_id_and_the_others_come_back(
    cloud_emulator: CloudEmulator, access_key: str, tmp_path: Path
) -> None:
    work = tmp_path / "w"
    make_inputs(work)
    command = 'if [ "$(cat in.txt)" = "in 1" ]; then exit 9; fi; cp in.txt out.txt'
    sub = three_tasks(openapi_machine(work, access_key), command)
    with pytest.raises(JobFailedError) as info:
        sub.run_submission(check_interval=0.2)
    assert (work / "t0" / "out.txt").exists() and (work / "t2" / "out.txt").exists()
    (failed,) = [j for j in sub.belonging_jobs if j.job_task_list[0].task_work_path == "t1"]
    assert failed.job_hash in str(info.value) and f"cloud job {failed.job_id} " in str(info.value)


def test_without_bohrium_sdk_the_error_names_the_extra(
    cloud_emulator: CloudEmulator, access_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "bohrium", None)  # import bohrium -> ImportError
    work = tmp_path / "w"
    make_inputs(work)
    sub = three_tasks(openapi_machine(work, access_key))
    with pytest.raises(ConfigurationError, match=r"dpdispatcher\[bohrium\]"):
        sub.run_submission(check_interval=0.2)
    assert cloud_emulator.calls["POST /openapi/v1/job/create"] == 0


def test_missing_access_key_or_project_is_a_configuration_error(tmp_path: Path) -> None:
    for name in ("BOHRIUM_ACCESS_KEY", "ACCESS_KEY", "BOHRIUM_PROJECT_ID", "PROJECT_ID"):
        os.environ.pop(name, None)
    with pytest.raises(ConfigurationError, match="remote_profile/access_key"):
        openapi_machine(tmp_path, "", access_key=None)
    with pytest.raises(ConfigurationError, match="remote_profile/project_id"):
        openapi_machine(tmp_path, "ak", project_id=None)


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from dpdispatcher import Machine, Resources, Submission, Task
    from dpdispatcher.contexts.dp_cloud_server_context import DpCloudServerContext
    from dpdispatcher.dpcloudserver.openapi import OpenApiClient
    sys.path.append(sys.argv[4])
    work, point, key = sys.argv[1], sys.argv[2], sys.argv[3]
    DpCloudServerContext.client_options = {"backoff": 0.01}
    if point != "none":
        original = getattr(OpenApiClient, point)
        def dying(self, *a, **k):
            out = original(self, *a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        setattr(OpenApiClient, point, dying)
    machine = Machine.load_from_dict({"batch_type": "OpenAPI", "context_type": "OpenAPIContext",
        "local_root": work, "remote_profile": {"access_key": key, "project_id": 4242}})
    tasks = [Task("cp in.txt out.txt", f"t{i}", forward_files=["in.txt"],
                  backward_files=["out.txt"]) for i in range(3)]
    sub = Submission("./", machine, Resources(1, 1, 0, "", 3), task_list=tasks)
    sub.timing.first_interval = 0.05
    sub.run_submission(check_interval=0.2)
    print("COMPLETED")
    """
)


@pytest.mark.parametrize("point", ["create_job", "insert_job"])
def test_killed_mid_submission_then_rerun_runs_the_job_once(
    cloud_emulator: CloudEmulator, access_key: str, tmp_path: Path, point: str
) -> None:
    """Killed right after the job was created (not added) or added (not recorded)."""
    import bohrium  # type: ignore[import-not-found,unused-ignore]

    sdk_path = str(Path(bohrium.__file__).parents[1])
    work = tmp_path / "w"
    make_inputs(work)
    (tmp_path / "child.py").write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def child(at: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, str(tmp_path / "child.py"), str(work), at, access_key, sdk_path]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    first = child(point)
    assert first.returncode == -9, first.stderr[-2000:]
    second = child("none")
    assert second.returncode == 0 and "COMPLETED" in second.stdout, second.stderr[-3000:]
    assert cloud_emulator.calls["POST /openapi/v2/job/add"] == 1  # the job ran once
    assert len(cloud_emulator.service.jobs) == 1
    expected_creates = 2 if point == "create_job" else 1
    assert cloud_emulator.calls["POST /openapi/v1/job/create"] == expected_creates
    assert all((work / f"t{i}" / "out.txt").exists() for i in range(3))
    assert access_key not in first.stderr + second.stderr
    assert isinstance(Machine.load_from_dict(json.loads(_machine_json(access_key))), OpenAPI)


def _machine_json(key: str) -> str:
    return json.dumps(
        {
            "batch_type": "openapi",
            "context_type": "openapi",
            "local_root": ".",
            "remote_profile": {"access_key": key, "project_id": 1},
        }
    )
