"""DistributedShell + HDFSContext end to end through the fake ``hadoop``/``yarn`` of
``tests/fakes/hadoop`` (a local directory stands in for HDFS; Hadoop is not installed).

Jobs really run: the fake distributed-shell client runs each job script in a container
directory, which fetches its inputs with ``hadoop fs -get`` and puts its results back.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.errors import JobFailedError
from dpdispatcher.utils.job_status import JobStatus
from tests.integration.test_fake_schedulers import make_work

FAKES = Path(__file__).resolve().parent.parent / "fakes"
YARN_PATH = FAKES / "hadoop" / "share" / "hadoop" / "yarn"
REMOTE = "hdfs://namenode:8020/user/tester/runs"


@pytest.fixture
def hdfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake HDFS root (``/`` of the file system), with the fakes first on PATH."""
    root = tmp_path / "hdfs"
    monkeypatch.setenv("PATH", f"{FAKES / 'hadoop' / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKEHADOOP_ROOT", str(root))
    yield root
    subprocess.run(["pkill", "-f", f"FAKEHADOOP_ROOT={root}"], check=False)  # none expected


def machine(tmp_path: Path, retry_count: int = 3) -> Machine:
    return Machine.load_from_dict({
        "batch_type": "DistributedShell", "context_type": "HDFSContext",
        "local_root": str(tmp_path / "local"), "remote_root": REMOTE,
        "retry_count": retry_count,
    })  # fmt: skip


def resources(n: int, **kw: object) -> Resources:
    return Resources(1, 2, 0, "default", n, kwargs={"yarn_path": str(YARN_PATH)}, **kw)


def tasks(n: int, command: Callable[[int], str] = lambda i: "cat in.txt > out.txt") -> list[Task]:
    return [Task(command(i), f"task{i}/", forward_files=["in.txt"], backward_files=["out.txt"])
            for i in range(n)]  # fmt: skip


def fast(sub: Submission, limit: float = 60.0) -> Submission:
    deadline = time.monotonic() + limit
    sub.timing.first_interval = 0.05
    sub.timing.growth = 1.3
    sub.timing.resubmit_delay = 0.05

    def sleep(seconds: float) -> None:
        assert time.monotonic() < deadline, f"submission still running after {limit} s"
        time.sleep(seconds)

    sub.timing.sleep = sleep
    return sub


def test_tasks_run_in_containers_and_results_come_back_through_hdfs(
    hdfs: Path, tmp_path: Path
) -> None:
    work = make_work(tmp_path, 4)
    m = machine(tmp_path)
    sub = fast(Submission("work", m, resources(2), task_list=tasks(4)))
    sub.run_submission(check_interval=0.2, clean=False)
    for i in range(4):
        assert (work / f"task{i}" / "out.txt").read_text() == f"input {i}\n"
    job_root = hdfs / "user" / "tester" / "runs" / sub.submission_hash
    assert (job_root / f"{sub.submission_hash}_upload.tgz").is_file()
    for job in sub.belonging_jobs:
        assert job.job_state == JobStatus.finished and job.fail_count == 0
        assert (job_root / f"{job.job_hash}_job_tag_finished").is_file()
        archive = job_root / f"{sub.submission_hash}_{job.job_hash}_download.tar.gz"
        with tarfile.open(archive) as tar:
            names = tar.getnames()
        assert {f"{t.task_work_path.rstrip('/')}/out.txt" for t in job.job_task_list} <= set(names)
    assert (job_root / f"{sub.submission_hash}.json").is_file()  # state persisted on HDFS


def test_failing_task_is_resubmitted_then_reported_with_its_error(
    hdfs: Path, tmp_path: Path
) -> None:
    make_work(tmp_path, 2)

    def command(i: int) -> str:
        return "cat in.txt > out.txt" if i == 0 else "echo yarn-boom-$((6*7)) >&2; exit 3"

    sub = fast(Submission("work", machine(tmp_path, retry_count=1), resources(1),
                          task_list=tasks(2, command)))  # fmt: skip
    with pytest.raises(JobFailedError) as failure:
        sub.run_submission(check_interval=0.2)
    assert "yarn-boom-42" in str(failure.value) and "failed 2 times" in str(failure.value)


def test_clean_removes_the_hdfs_job_root(hdfs: Path, tmp_path: Path) -> None:
    make_work(tmp_path, 1)
    sub = fast(Submission("work", machine(tmp_path), resources(1), task_list=tasks(1)))
    sub.run_submission(check_interval=0.2, clean=True)
    assert not (hdfs / "user" / "tester" / "runs" / sub.submission_hash).exists()


def _apps(hdfs: Path) -> list[Path]:
    return sorted((hdfs / ".yarn").glob("application_*.json"))


def test_a_restarted_run_adopts_its_applications_and_submits_nothing_twice(
    hdfs: Path, tmp_path: Path
) -> None:
    work = make_work(tmp_path, 2)
    slow = tasks(2, lambda i: "sleep 1; cat in.txt > out.txt")
    first = fast(Submission("work", machine(tmp_path), resources(1), task_list=slow))
    first.run_submission(check_interval=0.2, exit_on_submit=True)
    assert len(_apps(hdfs)) == 2
    again = fast(Submission("work", machine(tmp_path), resources(1), task_list=tasks(
        2, lambda i: "sleep 1; cat in.txt > out.txt")))  # fmt: skip
    again.run_submission(check_interval=0.2)
    assert len(_apps(hdfs)) == 2, "a job was submitted twice"
    assert [j.job_id for j in again.belonging_jobs] == [j.job_id for j in first.belonging_jobs]
    for i in range(2):
        assert (work / f"task{i}" / "out.txt").read_text() == f"input {i}\n"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_ratio_unfinished_kills_the_straggler_application(hdfs: Path, tmp_path: Path) -> None:
    work = make_work(tmp_path, 4)

    def command(i: int) -> str:
        return "exec sleep 120" if i == 3 else "cat in.txt > out.txt"

    sub = Submission("work", machine(tmp_path), resources(1, strategy={"ratio_unfinished": 0.25}),
                     task_list=tasks(4, command))  # fmt: skip
    fast(sub).run_submission(check_interval=0.2)
    assert all((work / f"task{i}" / "out.txt").exists() for i in range(3))
    assert len(sub.dropped_jobs) == 1
    straggler = sub.dropped_jobs[0]
    deadline = time.monotonic() + 20
    while _alive(int(straggler.job_id)):
        assert time.monotonic() < deadline, "the straggler's YARN client survived the kill"
        time.sleep(0.2)
    killed = [json.loads(p.read_text()) for p in _apps(hdfs)]
    assert [a["state"] for a in killed].count("FINISHED") == 3


def test_previous_submission_hash_moves_the_hdfs_job_root(hdfs: Path, tmp_path: Path) -> None:
    """``hadoop fs -mv`` of the job root to the new hash, as in 1.1.0."""
    work = make_work(tmp_path, 2)
    first = fast(Submission("work", machine(tmp_path), resources(1), task_list=tasks(2)))
    first.run_submission(check_interval=0.2, clean=False)
    second = fast(Submission("work", machine(tmp_path), resources(2), task_list=tasks(2),
                             previous_submission_hash=first.submission_hash))  # fmt: skip
    second.run_submission(check_interval=0.2, clean=False)
    runs = hdfs / "user" / "tester" / "runs"
    assert not (runs / first.submission_hash).exists()
    assert (runs / second.submission_hash / f"{second.submission_hash}.json").is_file()
    # the finish tags of DistributedShell tasks stay in their job's result archive, named
    # after the old hashes: the job runs again (its results are not lost)
    for i in range(2):
        assert (work / f"task{i}" / "out.txt").read_text() == f"input {i}\n"
