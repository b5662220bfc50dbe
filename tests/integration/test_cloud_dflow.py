"""The Bohrium touch points dflow uses (pydflow 1.8.134, ``dflow/plugins/dispatcher.py``).

dflow renders each ``DispatcherExecutor`` step into a script that: loads the machine
with ``context_type: "Bohrium"``, ``remote_profile`` carrying ``hostname``/``username``/
``port``/``timeout`` and ``input_data`` with ``log_file``, ``output_log: true`` and
``bohr_job_group_id``; retries ``run_submission`` on
``dpdispatcher.dpcloudserver.client.RequestInfoException`` (``retry_on_submission_error``);
then asserts ``machine.get_exit_code(job) == 0`` for every job. Each is exercised here
against the emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.contexts.dp_cloud_server_context import DpCloudServerContext
from tests.cloud_emulator.server import CloudEmulator

pytest_plugins = ["tests.cloud_emulator.fixture"]


@pytest.fixture(autouse=True)
def _fast_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(DpCloudServerContext, "client_options", {"backoff": 0.01})
    yield


def dflow_machine(work: Path, **top: Any) -> Machine:
    """The machine dict as dflow's DispatcherExecutor writes it for Bohrium."""
    return Machine.load_from_dict(
        {
            **top,
            "batch_type": "Bohrium",
            "context_type": "Bohrium",
            "local_root": str(work),
            "remote_profile": {
                "email": CloudEmulator.EMAIL,
                "password": CloudEmulator.PASSWORD,
                "program_id": 4242,
                "hostname": None,
                "username": "root",
                "port": 22,
                "timeout": 10,
                "input_data": {
                    "log_file": "log",
                    "job_type": "container",
                    "platform": "ali",
                    "scass_type": "c4_m8_cpu",
                    "job_name": "step-1",
                    "output_log": True,
                    "image_name": "python:3.11",
                },
            },
        }
    )


def step(
    machine: Machine, work: Path, command: str = "echo hi from the step; cp in.txt out.txt"
) -> Submission:
    """One task in the work base itself, its output in ``log`` (as dflow's steps)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "in.txt").write_text("payload\n")
    task = Task(command, "./", forward_files=["in.txt"], backward_files=["out.txt"], outlog="log")
    sub = Submission(".", machine, Resources(1, 1, 0, "", 1), task_list=[task])
    sub.timing.first_interval = 0.05
    return sub


def dflow_run(sub: Submission, tries: int, between: Any = None) -> int:
    """dflow's loop: retry run_submission on RequestInfoException; returns the attempts."""
    from dpdispatcher.dpcloudserver.client import RequestInfoException

    for attempt in range(1, tries + 1):
        try:
            sub.run_submission(check_interval=0.2)
            return attempt
        except RequestInfoException:
            if between is not None:
                between()
    raise AssertionError("never succeeded")


def test_dflow_step_runs_and_its_checks_pass(
    cloud_emulator: CloudEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work = tmp_path / "work"
    machine = dflow_machine(work)
    sub = step(machine, work)
    with caplog.at_level(logging.INFO, logger="dpdispatcher"):
        assert dflow_run(sub, 3) == 1
    assert (work / "out.txt").read_text() == "payload\n"
    for job in sub.belonging_jobs:
        assert machine.get_exit_code(job) == 0  # type: ignore[attr-defined]
    assert "hi from the step" in caplog.text  # output_log: the job's log reaches dlog
    (body,) = [job.body for job in cloud_emulator.service.jobs.values()]
    assert body["logFiles"] == ["log"] and body["outputLog"] is True
    assert cloud_emulator.rejected == []


def test_get_exit_code_is_the_cloud_jobs(cloud_emulator: CloudEmulator, tmp_path: Path) -> None:
    work = tmp_path / "work"
    machine = dflow_machine(work)
    cloud_emulator.force_exit_code(3)  # the task succeeded, the job's exit code says 3
    sub = step(machine, work)
    sub.run_submission(check_interval=0.2)  # ignore_exit_code: judged by the finish tag
    (job,) = sub.belonging_jobs
    assert machine.get_exit_code(job) == 3  # type: ignore[attr-defined]


def test_input_data_is_the_live_dict_jobs_are_created_with(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    machine = dflow_machine(work)
    machine.input_data["bohr_job_group_id"] = 77  # type: ignore[attr-defined]
    machine.input_data["job_resources"] = [cloud_emulator.bucket_url + "datasets/x.zip"]  # type: ignore[attr-defined]
    cloud_emulator.put_object("datasets/x.zip", b"PK\x05\x06" + b"\0" * 18)
    step(machine, work).run_submission(check_interval=0.2)
    (body,) = [job.body for job in cloud_emulator.service.jobs.values()]
    assert body["bohrJobGroupId"] == 77
    assert body["jobResources"][0] == cloud_emulator.bucket_url + "datasets/x.zip"
    assert body["ossPath"] == body["jobResources"] and len(body["ossPath"]) == 2


def test_retry_on_submission_error_catches_our_failures(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    """A refusal that retrying inside cannot fix reaches dflow as RequestInfoException;
    dflow's next attempt (the cause gone) finishes without creating a job twice."""
    work = tmp_path / "work"
    cloud_emulator.restrict_projects([1])  # 4242 refused: code 2103
    sub = step(dflow_machine(work), work)
    attempts = dflow_run(sub, 3, between=lambda: cloud_emulator.restrict_projects(None))
    assert attempts == 2
    assert len(cloud_emulator.service.jobs) == 1
    assert (work / "out.txt").exists()


def test_the_1_1_0_names_import() -> None:
    from dpdispatcher.utils.dpcloudserver.client import RequestInfoException as ViaUtils

    from dpdispatcher.contexts.dp_cloud_server_context import BohriumContext, LebesgueContext
    from dpdispatcher.contexts.openapi_context import OpenAPIContext
    from dpdispatcher.dpcloudserver.client import RequestInfoException
    from dpdispatcher.dpcloudserver.client import RequestInfoException as ViaUtils2
    from dpdispatcher.machines.dp_cloud_server import Bohrium, DpCloudServer, Lebesgue
    from dpdispatcher.machines.openapi import OpenAPI

    assert Bohrium is Lebesgue is DpCloudServer
    assert BohriumContext is LebesgueContext is DpCloudServerContext
    assert RequestInfoException is ViaUtils is ViaUtils2
    assert issubclass(RequestInfoException, Exception)
    assert OpenAPI.__name__ == "OpenAPI" and OpenAPIContext.__name__ == "OpenAPIContext"


def test_dflows_cluster_remote_root_is_ignored(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    """dflow passes ``remote_root: /root/dflow/workflows`` to Bohrium steps; 1.1.0 ignored
    it for the cloud, and so do we (the staging root stays in the work base)."""
    work = tmp_path / "work"
    unwritable = tmp_path / "not-here" / "dflow" / "workflows"
    machine = dflow_machine(work, remote_root=str(unwritable))
    step(machine, work).run_submission(check_interval=0.2, clean=False)
    assert (work / "out.txt").exists()
    assert not unwritable.exists()
    assert (work / ".dpdispatcher").is_dir()
