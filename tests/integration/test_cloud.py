"""DpCloudServer (Bohrium) end to end, through real HTTP against the local emulator.

The emulator (``tests/cloud_emulator``) is a real HTTP server on 127.0.0.1 with an
OSS-compatible store that ``oss2`` talks to; it runs each job's script for real. The
backend finds it through the ``DPDISPATCHER_LEBESGUE_*`` variables the fixture sets.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher._script import names
from dpdispatcher.contexts.dp_cloud_server_context import (
    DpCloudServerContext,
    JobRecord,
)
from dpdispatcher.dpcloudserver import CloudAPIError, CloudAuthError
from dpdispatcher.errors import ConfigurationError, JobFailedError
from dpdispatcher.machines.dp_cloud_server import DpCloudServer, cloud_job_status
from dpdispatcher.utils.job_status import JobStatus
from tests.cloud_emulator.server import CloudEmulator

pytest_plugins = ["tests.cloud_emulator.fixture"]

REPO = Path(__file__).resolve().parents[2]
PROGRAM = 4242
FAST_CLIENT = {"backoff": 0.01, "max_backoff": 0.05, "timeout": (5.0, 10.0)}
INPUT_DATA = {
    "job_type": "container",
    "platform": "ali",
    "scass_type": "c2_m4_cpu",
    "image_name": "ubuntu:22.04",
    "disk_size": 20,
}


@pytest.fixture(autouse=True)
def _fast_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Retries of the HTTP client back off in milliseconds, not seconds."""
    monkeypatch.setattr(DpCloudServerContext, "client_options", FAST_CLIENT)
    yield


def cloud_machine(tmp_path: Path, **profile: Any) -> Machine:
    remote_profile = {
        "email": CloudEmulator.EMAIL,
        "password": CloudEmulator.PASSWORD,
        "program_id": PROGRAM,
        "input_data": dict(INPUT_DATA),
        **profile,
    }
    return Machine.load_from_dict(
        {
            "batch_type": "Bohrium",
            "context_type": "BohriumContext",
            "local_root": str(tmp_path / "local"),
            "remote_profile": remote_profile,
            "retry_count": 1,
        }
    )


def make_work(tmp_path: Path, n: int) -> Path:
    work = tmp_path / "local" / "work"
    for i in range(n):
        (work / f"t{i}").mkdir(parents=True)
        (work / f"t{i}" / "in.txt").write_text(f"input {i}\n")
    (work / "common.txt").write_text("shared\n")
    return work


def submission(
    machine: Machine, n: int, command: str | None = None, group_size: int = 2, **kw: Any
) -> Submission:
    tasks = [
        Task(
            command
            or f"cat in.txt ../common.txt > out.txt; mkdir -p d; echo {i} > d/f; "
            f"echo s{i} > ../summary_{i}.txt",
            f"t{i}",
            forward_files=["in.txt"],
            backward_files=["out.txt", "d"],
        )
        for i in range(n)
    ]
    sub = Submission(
        "work",
        machine,
        Resources(1, 1, 0, "", group_size),
        forward_common_files=["common.txt"],
        task_list=tasks,
        **kw,
    )
    sub.timing.first_interval = 0.05
    sub.timing.resubmit_delay = 0.05
    return sub


def run(sub: Submission) -> dict[str, Any]:
    return sub.run_submission(check_interval=0.2)


def files_under(root: Path) -> set[Path]:
    return set(root.rglob("*")) if root.exists() else set()


# ---------------------------------------------------------------------- round trip
def test_multi_task_round_trip(cloud_emulator: CloudEmulator, tmp_path: Path) -> None:
    work = make_work(tmp_path, 5)
    machine = cloud_machine(tmp_path, input_data={**INPUT_DATA, "grouped": True})
    assert isinstance(machine.context, DpCloudServerContext)
    sub = submission(machine, 5, backward_common_files=["summary_*.txt"])
    sub.machine.context.multipart_threshold = 1  # type: ignore[union-attr,misc]
    sub.machine.context.part_size = 512  # type: ignore[union-attr,misc]
    final = run(sub)

    for i in range(5):
        assert (work / f"t{i}" / "out.txt").read_text() == f"input {i}\nshared\n"
        assert (work / f"t{i}" / "d" / "f").read_text() == f"{i}\n"
        assert (work / f"summary_{i}.txt").read_text() == f"s{i}\n"
    states = [body["job_state"] for job in final["belonging_jobs"] for body in job.values()]
    assert states == [JobStatus.finished] * 3
    calls = cloud_emulator.calls
    assert calls["POST /brm/v2/job/add"] == 3
    assert calls["OSS UploadPart"] >= 3 and calls["OSS CompleteMultipartUpload"] == 3
    assert calls["POST /account/login"] == 1

    jobs = list(cloud_emulator.service.jobs.values())
    assert len({job.group_id for job in jobs}) == 1  # grouped: one job group per submission
    by_hash = {job.body["cmd"].split(".")[1]: job for job in jobs}
    assert set(by_hash) == {job.job_hash for job in sub.belonging_jobs}
    for job in sub.belonging_jobs:
        body = by_hash[job.job_hash].body
        assert body["cmd"] == f"bash {names.script_file(job.job_hash)}"
        assert body["projectId"] == PROGRAM
        (url,) = body["ossPath"]
        assert body["jobResources"] == [url] and body["command"] == body["cmd"]
        assert url.startswith(f"{cloud_emulator.bucket_url}program/{PROGRAM}/")
        assert url.endswith(f"/{job.job_hash}.zip")
        assert body["backwardFiles"] == body["outFiles"]
        assert body["jobType"] == "container" and body["imageName"] == "ubuntu:22.04"
        assert body["scassType"] == "c2_m4_cpu" and body["diskSize"] == 20
        assert names.job_tag_file(job.job_hash) in body["outFiles"]
        task_dir = job.job_task_list[0].task_work_path
        assert f"{task_dir}/out.txt" in body["outFiles"] and "summary_*.txt" in body["outFiles"]
        assert body["logFiles"]
        archive = cloud_emulator.get_object(url[len(cloud_emulator.bucket_url) :])
        assert archive is not None
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            entries = set(zf.namelist())
        assert {names.script_file(job.job_hash), names.run_file(job.job_hash)} <= entries
        assert "common.txt" in entries and f"{task_dir}/in.txt" in entries

    # the staging root is cleaned, no backup is kept, the password went nowhere
    assert not (work / ".dpdispatcher").exists()
    assert not (work / "backup").exists()
    assert CloudEmulator.PASSWORD not in json.dumps(final)
    home = Path(os.environ["DPDISPATCHER_HOME"])
    for state in home.rglob("*.json"):
        assert CloudEmulator.PASSWORD not in state.read_text()


def test_keep_backup_keeps_each_jobs_whole_result(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    work = make_work(tmp_path, 2)
    sub = submission(cloud_machine(tmp_path, keep_backup=True), 2, group_size=1)
    run(sub)
    for job in sub.belonging_jobs:
        backup = work / "backup" / job.job_hash
        task_dir = job.job_task_list[0].task_work_path
        assert (backup / names.job_tag_file(job.job_hash)).exists()
        assert (backup / task_dir / "log").exists()
        assert (backup / task_dir / "out.txt").exists()  # copied, not moved
        assert (work / task_dir / "out.txt").exists()


def test_the_script_runs_in_the_unpacked_archive(tmp_path: Path) -> None:
    machine = cloud_machine(tmp_path)
    sub = submission(machine, 1)
    sub.generate_jobs()
    script = machine.gen_script(sub.belonging_jobs[0])
    assert script.startswith("#!/bin/bash -l\n")
    assert "REMOTE_ROOT=$(readlink -f .)" in script


# ------------------------------------------------------------------- exit codes
@pytest.mark.parametrize("ignore_exit_code", [True, False])
def test_non_zero_exit_code_of_a_job_whose_tasks_succeeded(
    cloud_emulator: CloudEmulator, tmp_path: Path, ignore_exit_code: bool
) -> None:
    work = make_work(tmp_path, 2)
    cloud_emulator.force_exit_code(3)
    sub = submission(cloud_machine(tmp_path, ignore_exit_code=ignore_exit_code), 2)
    if ignore_exit_code:  # the finish tag came back: the job finished
        run(sub)
        assert (work / "t0" / "out.txt").exists()
        assert cloud_emulator.calls["POST /brm/v2/job/add"] == 1
    else:  # the exit code decides: failed, resubmitted once (retry_count=1), given up
        with pytest.raises(JobFailedError, match="failed 2 times"):
            run(sub)
        assert cloud_emulator.calls["POST /brm/v2/job/add"] == 2
    assert {d["status"] for d in map(cloud_emulator.job, cloud_emulator.service.jobs)} == {-1}


@pytest.mark.parametrize("ignore_exit_code", [True, False])
def test_a_failing_task_fails_the_job_under_both_settings(
    cloud_emulator: CloudEmulator, tmp_path: Path, ignore_exit_code: bool
) -> None:
    make_work(tmp_path, 2)
    command = 'if [ "$(cat in.txt)" = "input 1" ]; then echo boom >&2; exit 7; fi\ncp in.txt o.txt'
    sub = submission(cloud_machine(tmp_path, ignore_exit_code=ignore_exit_code), 2, command=command)
    with pytest.raises(JobFailedError) as info:
        run(sub)
    text = str(info.value)
    assert "exit code 7" in text and "boom" in text
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 2
    # the second attempt carried the tag of the task that succeeded: it was skipped
    first, second = sorted(cloud_emulator.service.jobs.values(), key=lambda j: j.job_id)
    assert first.oss_key != second.oss_key
    archive = cloud_emulator.get_object(second.oss_key)
    assert archive is not None
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        tags = [n for n in zf.namelist() if n.endswith("_task_tag_finished")]
    assert [t.split("/")[0] for t in tags] == ["t0"]


def test_a_resubmission_skips_finished_tasks_and_merges_results(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    work = make_work(tmp_path, 2)
    runs, once = tmp_path / "runs", tmp_path / "failed-once"
    command = (
        f'echo "$(cat in.txt)" >> {runs}\n'
        f'if [ "$(cat in.txt)" = "input 1" ] && [ ! -e {once} ]; then touch {once}; exit 1; fi\n'
        "cp in.txt out.txt; mkdir -p d; echo x > d/f"
    )
    sub = submission(cloud_machine(tmp_path), 2, command=command)
    final = run(sub)
    assert sorted(runs.read_text().splitlines()) == ["input 0", "input 1", "input 1"]
    for i in range(2):  # t0's result comes from the first cloud job, t1's from the second
        assert (work / f"t{i}" / "out.txt").read_text() == f"input {i}\n"
    ((body,),) = (job.values() for job in final["belonging_jobs"])
    assert body["fail_count"] == 1 and body["job_state"] == JobStatus.finished
    assert len(cloud_emulator.service.jobs) == 2


# ---------------------------------------------------------------- service faults
def test_token_expiry_mid_run_logs_in_again(cloud_emulator: CloudEmulator, tmp_path: Path) -> None:
    work = make_work(tmp_path, 3)
    # the jobs outlast the first poll, so the run sleeps (and the tokens expire) at least once
    command = "sleep 1; cat in.txt ../common.txt > out.txt; mkdir -p d; echo x > d/f"
    sub = submission(cloud_machine(tmp_path), 3, command=command)
    naps: list[float] = []
    real_sleep = sub.timing.sleep

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            cloud_emulator.expire_tokens()
        real_sleep(seconds)

    sub.timing.sleep = sleep
    run(sub)
    assert (work / "t2" / "out.txt").exists()
    assert cloud_emulator.calls["POST /account/login"] == 2
    assert len(cloud_emulator.service.jobs) == 2


def test_a_5xx_burst_is_ridden_out(cloud_emulator: CloudEmulator, tmp_path: Path) -> None:
    work = make_work(tmp_path, 4)
    cloud_emulator.fail_next(3, status=503, path_prefix="/brm/")  # absorbed by retries
    # longer than the storage retries (4 attempts): the first submit is deferred
    cloud_emulator.fail_next(6, status=503, path_prefix=f"/{cloud_emulator.bucket}/program/")
    sub = submission(cloud_machine(tmp_path, input_data={**INPUT_DATA, "grouped": True}), 4)
    naps: list[float] = []
    real_sleep = sub.timing.sleep

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:  # longer than the client's retries: the poll is deferred
            cloud_emulator.fail_next(12, status=502, path_prefix="/brm/v1/job")
        real_sleep(seconds)

    sub.timing.sleep = sleep
    run(sub)
    assert all((work / f"t{i}" / "out.txt").exists() for i in range(4))
    assert len(cloud_emulator.service.jobs) == 2  # each job created exactly once
    assert cloud_emulator.calls["GET /brm/v1/job/list"] > 4  # grouped: one listing a poll
    assert cloud_emulator.calls["OSS PutObject"] == 2 + 6


# ---------------------------------------------------------------------- crashes
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from dpdispatcher import Machine, Resources, Submission, Task
    from dpdispatcher.contexts.dp_cloud_server_context import DpCloudServerContext
    from dpdispatcher.dpcloudserver.client import Client
    from dpdispatcher.machines.dp_cloud_server import DpCloudServer

    tmp, point, password, program = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    DpCloudServerContext.client_options = {"backoff": 0.01, "max_backoff": 0.05}

    def die_after(owner, name, n):
        original = getattr(owner, name)
        calls = [0]
        def wrapper(*a, **k):
            out = original(*a, **k)
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        setattr(owner, name, wrapper)

    if point == "answer_received":  # the service created the job; nothing recorded yet
        die_after(Client, "create_job", 2)
    elif point == "job_recorded":
        die_after(DpCloudServer, "submit_prepared", 2)

    machine = Machine.load_from_dict({"batch_type": "Lebesgue",
        "context_type": "LebesgueContext", "local_root": tmp + "/local",
        "remote_profile": {"email": "tester@example.com", "password": password,
                           "project_id": program, "input_data": {"job_type": "container"}}})
    tasks = [Task(f"cp in.txt out.txt", f"t{i}", forward_files=["in.txt"],
                  backward_files=["out.txt"]) for i in range(5)]
    sub = Submission("work", machine, Resources(1, 1, 0, "", 2), task_list=tasks)
    sub.timing.first_interval = 0.05
    sub.run_submission(check_interval=0.2)
    print("COMPLETED")
    """
)


def _child(tmp: Path, point: str) -> subprocess.CompletedProcess[str]:
    script = tmp / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(script), str(tmp), point, CloudEmulator.PASSWORD, str(PROGRAM)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize("point", ["answer_received", "job_recorded"])
def test_killed_after_job_creation_then_rerun_creates_no_second_job(
    cloud_emulator: CloudEmulator, tmp_path: Path, point: str
) -> None:
    work = make_work(tmp_path, 5)
    first = _child(tmp_path, point)
    assert first.returncode == -9, first.stderr
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 2
    second = _child(tmp_path, "none")
    assert second.returncode == 0, second.stderr
    assert "COMPLETED" in second.stdout
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 3  # one per job, never two
    assert len(cloud_emulator.service.jobs) == 3
    assert len({job.oss_key for job in cloud_emulator.service.jobs.values()}) == 3
    for i in range(5):
        assert (work / f"t{i}" / "out.txt").read_text() == f"input {i}\n"
    assert CloudEmulator.PASSWORD not in first.stderr + second.stderr


def test_a_pending_record_is_resolved_on_the_service(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    """The record written before the request finds the job the service did create."""
    make_work(tmp_path, 1)
    machine = cloud_machine(tmp_path)
    assert isinstance(machine, DpCloudServer)
    sub = submission(machine, 1)
    sub.generate_jobs()
    machine.context.bind_submission(sub)
    machine.context.upload(sub)
    job = sub.belonging_jobs[0]
    job_id = machine.do_submit(job)  # writes the script, then submit_prepared
    record = machine.context.read_record(job.job_hash)
    assert record is not None and record.job_id == job_id
    pending = JobRecord(record.job_hash, record.oss_path, record.job_group_id)
    assert machine.recorded_job_id(pending.dumps()) == job_id
    assert (
        machine.recorded_job_id(JobRecord(job.job_hash, "program/1/elsewhere/x.zip").dumps())
        is None
    )
    assert machine.recorded_job_id("garbage") is None
    cloud_emulator.wait_for_job(int(job_id))


# ------------------------------------------------------------------ hostile result
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_a_hostile_result_member_is_skipped_and_the_rest_extracted(
    cloud_emulator: CloudEmulator,
    tmp_path: Path,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The rule of ``_archive.safe_extract_zip`` (B8): the unsafe member is skipped with
    a WARNING naming it; nothing is written outside; the real results come home."""
    work = make_work(tmp_path, 2)
    before_outside = files_under(tmp_path) - files_under(work)
    absolute_existed = Path("/tmp/evil-absolute").exists()
    cloud_emulator.serve_hostile_result(kind)  # type: ignore[arg-type]
    sub = submission(cloud_machine(tmp_path), 2)
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        run(sub)
    outside = files_under(tmp_path) - files_under(work)
    emulator = tmp_path / "cloud-emulator"
    new_outside = {p for p in outside - before_outside if emulator not in (p, *p.parents)}
    assert new_outside == set()
    assert Path("/tmp/evil-absolute").exists() == absolute_existed
    assert not any(p.name in ("evil", "etc_link", "evil-absolute") for p in work.rglob("*"))
    assert (work / "t0" / "out.txt").read_text() == "input 0\nshared\n"
    name = {"dotdot": "../evil", "absolute": "/tmp/evil-absolute", "symlink": "etc_link"}[kind]
    assert name in caplog.text


def test_a_result_replaces_a_stale_local_file(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    """B1: the job's fresh result wins over what the work base held."""
    work = make_work(tmp_path, 1)
    (work / "t0" / "out.txt").write_text("stale\n")
    (work / "t0" / "d").mkdir()
    (work / "t0" / "d" / "old").write_text("stale\n")
    run(submission(cloud_machine(tmp_path), 1))
    assert (work / "t0" / "out.txt").read_text() == "input 0\nshared\n"
    assert sorted(p.name for p in (work / "t0" / "d").iterdir()) == ["f"]


# ------------------------------------------------------------- errors and secrets
def test_bad_password_names_the_field_and_hides_the_password(
    cloud_emulator: CloudEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_work(tmp_path, 1)
    wrong = "Wr0ng-Pa55word-xyz"
    sub = submission(cloud_machine(tmp_path, password=wrong), 1)
    with caplog.at_level(logging.DEBUG), pytest.raises(CloudAuthError) as info:
        run(sub)
    text = str(info.value)
    assert "remote_profile/password" in text and "2104" in text
    assert wrong not in text and wrong not in caplog.text
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 0
    assert wrong not in json.dumps(sub.serialize())
    # neither the hash nor the persisted form depends on the password
    other = submission(cloud_machine(tmp_path, password="another"), 1)
    other.generate_jobs()
    assert other.get_hash() == sub.submission_hash


def test_unknown_program_id_names_the_field(cloud_emulator: CloudEmulator, tmp_path: Path) -> None:
    make_work(tmp_path, 1)
    cloud_emulator.restrict_projects([1])
    sub = submission(cloud_machine(tmp_path), 1)
    with pytest.raises(CloudAPIError) as info:
        run(sub)
    assert "remote_profile/program_id" in str(info.value) and "2103" in str(info.value)
    assert CloudEmulator.PASSWORD not in str(info.value)


def test_bohr_ticket_instead_of_a_password(
    cloud_emulator: CloudEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_work(tmp_path, 1)
    monkeypatch.setenv("BOHR_TICKET", cloud_emulator.issue_ticket())
    machine = cloud_machine(tmp_path)
    machine.context.remote_profile = {  # no credentials at all
        k: v for k, v in machine.context.remote_profile.items() if k not in ("email", "password")
    }
    run(submission(machine, 1))
    assert (work / "t0" / "out.txt").exists()
    assert cloud_emulator.calls["POST /account/login"] == 0


def test_configuration_errors() -> None:
    base = {
        "batch_type": "DpCloudServer",
        "context_type": "DpCloudServerContext",
        "local_root": ".",
    }
    with pytest.raises(ConfigurationError, match="program_id"):
        Machine.load_from_dict({**base, "remote_profile": {"input_data": {}}})
    with pytest.raises(ConfigurationError, match="input_data"):
        Machine.load_from_dict({**base, "remote_profile": {"program_id": 1}})
    on_local = Machine.load_from_dict({**base, "context_type": "LocalContext", "remote_root": "/"})
    probe = Submission("w", on_local, Resources(1, 1, 0, "", 1), task_list=[Task("true", "t")])
    probe.generate_jobs()
    probe.belonging_jobs[0].job_id = "1"
    with pytest.raises(ConfigurationError, match="needs context_type DpCloudServerContext"):
        on_local.check_status_many(probe.belonging_jobs)  # scripts render; nothing runs
    with pytest.raises(ConfigurationError, match="passwd"):  # unknown keys: strict only
        Machine.load_from_dict(
            {**base, "remote_profile": {"program_id": 1, "input_data": {}, "passwd": "x"}},
            strict=True,
        )
    m = Machine.load_from_dict(
        {**base, "remote_profile": {"project_id": 7, "input_data": {"job_type": "container"}}}
    )
    assert isinstance(m.context, DpCloudServerContext)
    assert m.context.program_id == 7
    assert m.context.ignore_exit_code is True and m.context.keep_backup is False
    example = json.loads((REPO / "examples" / "machine" / "bohrium.json").read_text())
    loaded = Machine.load_from_dict(example)
    assert "password" not in loaded.serialize()["remote_profile"]


def test_status_codes_map_per_the_spec() -> None:
    ended, failed = JobStatus.finished, JobStatus.terminated
    for code, status in {
        0: JobStatus.waiting,
        3: JobStatus.waiting,
        9: JobStatus.waiting,
        1: JobStatus.running,
        4: JobStatus.running,
        6: JobStatus.running,
        2: ended,
        5: failed,
    }.items():
        assert cloud_job_status(code, None, True) == status
    assert cloud_job_status(-1, 1, True) == ended  # judged by the finish tag
    assert cloud_job_status(-1, 1, False) == failed
    assert cloud_job_status(-1, None, True) == failed  # killed before it ran
    assert cloud_job_status(-1, 0, True) == failed
    assert cloud_job_status(2, 1, False) == failed
    assert cloud_job_status(42, None, True) == JobStatus.unknown


# ------------------------------------------------------ the reference's functions
def test_reference_dpcloudserver_functions(cloud_emulator: CloudEmulator, tmp_path: Path) -> None:
    import dpdispatcher.dp_cloud_server as flat_machine
    import dpdispatcher.dp_cloud_server_context as flat_context
    from dpdispatcher.dpcloudserver import api, config, zip_file
    from dpdispatcher.dpcloudserver.retcode import RETCODE

    assert flat_machine.DpCloudServer is DpCloudServer
    assert flat_context.DpCloudServerContext is DpCloudServerContext
    assert cloud_emulator.env()["DPDISPATCHER_LEBESGUE_API_HOST"] == config.API_HOST
    assert RETCODE.PWDERR == "2104"
    api.set_default_client(api.Client(**FAST_CLIENT))  # type: ignore[arg-type]
    try:
        token = api.login(CloudEmulator.PASSWORD, email=CloudEmulator.EMAIL)
        assert token
        src = tmp_path / "src"
        src.mkdir()
        (src / "a.txt").write_text("hello\n")
        archive = zip_file.zip_file_list(str(src), "job.zip", file_list=["a.txt"])
        api.upload("program/1/u/job.zip", archive, None, None)
        created = api.job_create(
            "container",
            "program/1/u/job.zip",
            {"cmd": "cat a.txt > b.txt", "out_files": ["b.txt"]},
            program_id=1,
        )
        detail = cloud_emulator.wait_for_job(created["jobId"])
        assert detail["status"] == 2
        assert api.get(f"/brm/v1/job/{created['jobId']}")["status"] == 2
        assert api.get_tasks(created["jobGroupId"])["total"] == 1
        assert api.get_jobs()["total"] >= 1
        saved = api.download("program/1/u/job.zip", str(tmp_path / "back.zip"), None, None)
        out = tmp_path / "out"
        zip_file.unzip_file(saved, str(out))
        assert (out / "a.txt").read_text() == "hello\n"
    finally:
        api.set_default_client(None)


# ------------------------------------------------------------ a job failing for good
def test_a_job_failing_for_good_still_brings_back_the_others(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    """The finished jobs' files come home as each finishes (as 1.1.0 does); the error
    names the failed job, its cloud job id and the URL of its log."""
    work = make_work(tmp_path, 3)
    command = (
        'if [ "$(cat in.txt)" = "input 1" ]; then echo boom >&2; exit 7; fi\ncp in.txt out.txt'
    )
    sub = submission(cloud_machine(tmp_path), 3, command=command, group_size=1)
    with pytest.raises(JobFailedError) as info:
        run(sub)
    assert (work / "t0" / "out.txt").read_text() == "input 0\n"
    assert (work / "t2" / "out.txt").read_text() == "input 2\n"
    assert not (work / "t1" / "out.txt").exists()
    (failed,) = [job for job in sub.belonging_jobs if job.job_task_list[0].task_work_path == "t1"]
    text = str(info.value)
    assert failed.job_hash in text
    last = max(job for job, body in cloud_emulator.service.jobs.items() if "t1/" in str(body.body))
    assert f"cloud job {last} " in text
    assert f"{cloud_emulator.base_url}/logs/{last}" in text
    assert "boom" in text


def test_continue_on_failure_brings_every_other_result_and_lists_the_failed_job(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    work = make_work(tmp_path, 4)
    command = (
        'if [ "$(cat in.txt)" = "input 2" ]; then echo kaputt >&2; exit 5; fi\n'
        "cp in.txt out.txt; mkdir -p d; touch d/x"
    )
    sub = submission(cloud_machine(tmp_path), 4, command=command, group_size=1)
    with pytest.raises(JobFailedError) as info:
        sub.run_submission(check_interval=0.2, continue_on_failure=True)
    for i in (0, 1, 3):
        assert (work / f"t{i}" / "out.txt").read_text() == f"input {i}\n"
    (failed,) = [j for j in sub.belonging_jobs if j.job_task_list[0].task_work_path == "t2"]
    text = str(info.value)
    assert failed.job_hash in text and "kaputt" in text
    assert f"{cloud_emulator.base_url}/logs/{failed.job_id}" in text
    assert len(cloud_emulator.service.jobs) == 5  # 4 jobs, the failing one retried once
