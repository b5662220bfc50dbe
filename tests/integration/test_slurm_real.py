"""End to end on the real single-node Slurm cluster of ``tests/infra/up.sh``.

Bring it up with ``bash tests/infra/up.sh slurm`` (as root); the script writes the
``DPDISP_SLURM*`` variables that ``tests/conftest.py`` loads. Jobs run through a
LocalContext whose remote root is under the test's tmp dir (Slurm runs them as root).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.errors import JobFailedError
from dpdispatcher.submission import Timing
from dpdispatcher.utils.job_status import JobStatus
from tests.conftest import require

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def _slurm() -> None:
    require("DPDISP_SLURM", what="real Slurm")


# ------------------------------------------------------------------ helpers
def machine(tmp_path: Path, batch_type: str = "Slurm", retry_count: int = 3) -> Machine:
    return Machine.load_from_dict(
        {
            "batch_type": batch_type,
            "context_type": "LocalContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(tmp_path / "remote"),
            "retry_count": retry_count,
        }
    )


def submission(
    tmp_path: Path,
    tasks: list[Task],
    resources: Resources,
    batch_type: str = "Slurm",
    retry_count: int = 3,
) -> Submission:
    work = tmp_path / "local" / "work"
    for task in tasks:
        (work / task.task_work_path).mkdir(parents=True, exist_ok=True)
    sub = Submission("work", machine(tmp_path, batch_type, retry_count), resources, task_list=tasks)
    sub.timing = Timing(
        first_interval=0.2,
        growth=1.5,
        resubmit_delay=0.3,
        resubmit_delay_max=1.0,
        unknown_timeout=120.0,
    )
    return sub


def task(i: int, command: str, **kw: Any) -> Task:
    return Task(command=command, task_work_path=f"task{i:02d}/", **kw)


class Background:
    """``run_submission`` in a thread; the test acts on the cluster meanwhile."""

    def __init__(self, sub: Submission, **kwargs: Any) -> None:
        self.sub = sub
        self.error: BaseException | None = None
        self.result: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, **kwargs: Any) -> None:
        try:
            self.result = self.sub.run_submission(**kwargs)
        except BaseException as err:  # noqa: BLE001 - re-raised in join()
            self.error = err

    def join(self, timeout: float) -> dict[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"submission still running after {timeout} s"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def squeue_state(job_id: str) -> str:
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%t", f"--jobs={job_id}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


def job_running(sub: Submission, index: int = 0) -> bool:
    job = sub.belonging_jobs[index] if sub.belonging_jobs else None
    return bool(job and job.job_id and squeue_state(job.job_id) == "R")


def read_pid(pidfile: str) -> int:
    return int(Path(pidfile).read_text().split()[0])


def controller_up() -> bool:
    return (
        subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, check=False
        ).stdout.count("UP")
        > 0
    )


class Controller:
    """Stops and starts the cluster's slurmctld (by the pid file up.sh names)."""

    def __init__(self) -> None:
        self.pidfile = os.environ.get("DPDISP_SLURM_CTLD_PIDFILE", "/run/slurmctld.pid")
        self.start_cmd = shlex.split(
            os.environ.get("DPDISP_SLURMCTLD_START", "/usr/sbin/slurmctld")
        )

    def running(self) -> bool:
        try:
            pid = read_pid(self.pidfile)
            return Path(f"/proc/{pid}/stat").read_text().split()[2] not in ("Z", "X")
        except (OSError, ValueError, IndexError):
            return False

    def stop(self) -> None:
        pid = read_pid(self.pidfile)
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not self.running(), 30, "slurmctld to stop")

    def start(self) -> None:
        subprocess.run(self.start_cmd, check=True)
        wait_for(controller_up, 60, "slurmctld to answer again")

    def outage(self, seconds: float) -> None:
        self.stop()
        time.sleep(seconds)
        self.start()


@pytest.fixture
def slurmctld() -> Iterator[Controller]:
    """The controller; it is running again when the test ends, whatever happened."""
    ctl = Controller()
    yield ctl
    if not ctl.running():
        ctl.start()


# ------------------------------------------------------------------ tests
def test_twenty_tasks_group_size_and_para_deg(tmp_path: Path) -> None:
    tasks = [
        task(i, f"echo task {i} on $SLURM_JOB_ID; sleep 0.5", outlog="out", backward_files=["out"])
        for i in range(20)
    ]
    sub = submission(tmp_path, tasks, Resources(1, 1, 0, "", 5, para_deg=2))
    t0 = time.monotonic()
    result = sub.run_submission(check_interval=1)
    assert time.monotonic() - t0 < 60
    assert len(result["belonging_jobs"]) == 4
    jobs_of_task = {}
    for i in range(20):
        text = (tmp_path / "local" / "work" / f"task{i:02d}" / "out").read_text()
        assert text.startswith(f"task {i} on ")
        assert text.count("\n") == 1  # ran exactly once
        jobs_of_task[i] = text.split()[-1]
    assert sorted(Counter(jobs_of_task.values()).values()) == [5, 5, 5, 5]
    assert all(j.fail_count == 0 for j in sub.belonging_jobs)


def test_failing_task_is_resubmitted_then_reported(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    tasks = [
        task(0, "echo fine", outlog="out"),
        task(1, f"echo run >> {runs}; echo 'boom: input deck broken' >&2; exit 3"),
    ]
    sub = submission(tmp_path, tasks, Resources(1, 1, 0, "", 2), retry_count=1)
    with pytest.raises(JobFailedError) as info:
        sub.run_submission(check_interval=1)
    message = str(info.value)
    assert "boom: input deck broken" in message and "exit code 3" in message
    assert "failed 2 times" in message
    assert runs.read_text().count("run") == 2  # first run + one resubmission


def test_job_cancelled_from_outside_is_resubmitted(tmp_path: Path) -> None:
    marker = tmp_path / "first-run"
    cmd = f"if [ -e {marker} ]; then echo second; else touch {marker}; sleep 120; fi"
    sub = submission(
        tmp_path, [task(0, cmd, outlog="out", backward_files=["out"])], Resources(1, 1, 0, "", 1)
    )
    bg = Background(sub, check_interval=1)
    wait_for(lambda: job_running(sub) and marker.exists(), 30, "the job to run")
    first_id = sub.belonging_jobs[0].job_id
    subprocess.run(["scancel", first_id], check=True)
    bg.join(60)
    job = sub.belonging_jobs[0]
    assert job.fail_count == 1 and job.job_id != first_id
    assert (tmp_path / "local" / "work" / "task00" / "out").read_text() == "second\n"


def test_controller_restart_mid_run_misjudges_nothing(
    tmp_path: Path, slurmctld: Controller, caplog: pytest.LogCaptureFixture
) -> None:
    """The jobs end while slurmctld is down; squeue fails (after its own ~18 s of retries)
    with "Unable to contact slurm controller": that is retried, never a verdict."""
    caplog.set_level(logging.INFO, logger="dpdispatcher")
    tasks = [task(i, "sleep 4; echo ok", outlog="out", backward_files=["out"]) for i in range(4)]
    sub = submission(tmp_path, tasks, Resources(1, 1, 0, "", 1))
    bg = Background(sub, check_interval=1)
    wait_for(
        lambda: len(sub.belonging_jobs) == 4 and all(job_running(sub, i) for i in range(4)),
        30,
        "all jobs to run",
    )
    slurmctld.outage(22.0)
    bg.join(90)
    assert "status query deferred" in caplog.text
    assert all(j.fail_count == 0 for j in sub.belonging_jobs)
    assert all(j.job_state == JobStatus.finished for j in sub.belonging_jobs)
    for i in range(4):
        assert (tmp_path / "local" / "work" / f"task{i:02d}" / "out").read_text() == "ok\n"


def test_submission_while_the_controller_is_down_is_deferred(
    tmp_path: Path, slurmctld: Controller, caplog: pytest.LogCaptureFixture
) -> None:
    """sbatch fails with "Unable to contact slurm controller" (after ~9 s): the job is
    submitted later, and that failed attempt does not count as a failure of the job."""
    caplog.set_level(logging.INFO, logger="dpdispatcher")
    sub = submission(
        tmp_path,
        [task(0, "echo ok", outlog="out", backward_files=["out"])],
        Resources(1, 1, 0, "", 1),
    )
    slurmctld.stop()
    bg = Background(sub, check_interval=1)
    wait_for(lambda: "deferred" in caplog.text, 40, "the submission to be deferred")
    slurmctld.start()
    bg.join(60)
    (job,) = sub.belonging_jobs
    assert job.fail_count == 0 and job.job_state == JobStatus.finished
    assert (tmp_path / "local" / "work" / "task00" / "out").read_text() == "ok\n"


def test_job_array_resubmits_only_the_failing_element(tmp_path: Path) -> None:
    elements = tmp_path / "elements.log"
    marker = tmp_path / "task2-failed-once"
    tasks = [task(i, "echo ok", outlog="out", backward_files=["out"]) for i in range(4)]
    tasks[2] = task(
        2,
        f"if [ -e {marker} ]; then echo ok; else touch {marker}; exit 1; fi",
        outlog="out",
        backward_files=["out"],
    )
    res = Resources(
        1,
        1,
        0,
        "",
        4,
        kwargs={"slurm_job_size": 1},
        prepend_script=[f"echo $SLURM_ARRAY_TASK_ID >> {elements}"],
    )
    sub = submission(tmp_path, tasks, res, batch_type="SlurmJobArray")
    sub.run_submission(check_interval=1)
    (job,) = sub.belonging_jobs
    assert job.fail_count == 1
    started = Counter(elements.read_text().split())
    # one task per element: the element of a task is its position in the (shuffled) job
    position = [t.task_work_path for t in job.job_task_list].index(tasks[2].task_work_path)
    assert started == Counter({str(i): 2 if i == position else 1 for i in range(4)})
    for i in range(4):
        assert (tmp_path / "local" / "work" / f"task{i:02d}" / "out").read_text() == "ok\n"


def test_ratio_unfinished_kills_the_stragglers(tmp_path: Path) -> None:
    tasks = [task(i, "echo quick", outlog="out", backward_files=["out"]) for i in range(3)]
    tasks.append(task(3, "sleep 120; echo slow", outlog="out", backward_files=["out"]))
    res = Resources(1, 1, 0, "", 1, strategy={"ratio_unfinished": 0.3})
    sub = submission(tmp_path, tasks, res)
    t0 = time.monotonic()
    sub.run_submission(check_interval=1)
    assert time.monotonic() - t0 < 60
    assert len(sub.belonging_jobs) == 3 and len(sub.dropped_jobs) == 1
    straggler = sub.dropped_jobs[0]
    wait_for(lambda: squeue_state(straggler.job_id) in ("", "CA"), 30, "the straggler to end")
    work = tmp_path / "local" / "work"
    assert not (work / "task03" / "out").exists()
    assert all((work / f"task{i:02d}" / "out").read_text() == "quick\n" for i in range(3))


def test_queue_name_selects_the_partition_and_task_name_the_job_name(tmp_path: Path) -> None:
    cmd = 'echo "$SLURM_JOB_PARTITION $SLURM_JOB_NAME"'
    tasks = [task(0, cmd, outlog="out", backward_files=["out"], task_name="dpd relax#1")]
    sub = submission(tmp_path, tasks, Resources(1, 1, 0, "gpu", 1))
    sub.run_submission(check_interval=1)
    out = (tmp_path / "local" / "work" / "task00" / "out").read_text()
    assert out == "gpu dpd-relax-1\n"  # as the original 1.1.0 names it
