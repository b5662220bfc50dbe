"""The lifecycle's decisions, driven by a scripted in-memory scheduler and a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from dpdispatcher import Resources, Submission, Task
from dpdispatcher._script import names
from dpdispatcher.base_context import CommandResult
from dpdispatcher.contexts.local_context import LocalContext
from dpdispatcher.errors import JobFailedError, SchedulerError
from dpdispatcher.job import Job
from dpdispatcher.machine import Machine
from dpdispatcher.utils.job_status import JobStatus


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted(Machine):
    """A scheduler whose answers come from a list; it never runs anything."""

    _abstract = True
    state_map = {
        "PD": JobStatus.waiting,
        "R": JobStatus.running,
        "CD": JobStatus.finished,
        "WEIRD?": JobStatus.unknown,
    }
    transient_patterns = ("controller down",)
    submits_by_command = False

    def __init__(self, context, answers, tag_after=None):
        super().__init__(context=context)
        self.answers = list(answers)
        self.submits: list[str] = []
        self.status_calls = 0
        self.tag_after = tag_after

    def submit_prepared(self, job: Job) -> str:
        self.submits.append(job.job_hash)
        return str(len(self.submits))

    def check_status_many(self, jobs: Sequence[Job]):
        if not jobs:
            return {}
        self.status_calls += 1
        answer = self.answers.pop(0) if self.answers else "CD"
        if answer == "TRANSIENT":
            result = CommandResult(1, "", "error: controller down", "status")
            assert self.is_transient(result)
            from dpdispatcher.errors import TransientSchedulerError

            raise TransientSchedulerError("controller down")
        out = {}
        for job in jobs:
            status = self.map_state(answer)
            if status == JobStatus.finished:
                tagged = self.tag_after is None or len(self.submits) > self.tag_after
                status = JobStatus.finished if tagged else JobStatus.terminated
            out[job.job_hash] = status
        return out


def make(tmp_path: Path, answers, retry_count=3, tag_after=None):
    (tmp_path / "local" / "work" / "t").mkdir(parents=True, exist_ok=True)
    ctx = LocalContext(str(tmp_path / "local"), str(tmp_path / "remote"))
    machine = Scripted(ctx, answers, tag_after)
    machine.retry_count = retry_count
    sub = Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=[Task("true", "t")])
    clock = FakeClock()
    sub.timing.clock, sub.timing.sleep = clock.clock, clock.sleep
    return sub, machine, clock


def test_polling_starts_fast_and_backs_off_to_check_interval(tmp_path):
    sub, machine, clock = make(tmp_path, ["PD"] * 15 + ["R"] * 10 + ["CD"])
    sub.run_submission(check_interval=10)
    assert clock.sleeps[0] <= 0.2 and sum(clock.sleeps[:3]) < 1.0
    assert clock.sleeps == sorted(clock.sleeps)
    assert max(clock.sleeps) == 10
    assert machine.status_calls == 26


def test_transient_status_errors_never_fail_a_job(tmp_path):
    sub, machine, _ = make(tmp_path, ["PD", "TRANSIENT", "TRANSIENT", "R", "TRANSIENT", "CD"])
    sub.run_submission(check_interval=1)
    assert machine.submits and len(machine.submits) == 1
    assert sub.belonging_jobs[0].fail_count == 0


def test_terminated_job_is_resubmitted_with_growing_delay(tmp_path):
    sub, machine, clock = make(tmp_path, ["CD", "CD", "CD", "CD"], tag_after=2)
    sub.timing.resubmit_delay = 5
    sub.run_submission(check_interval=1)
    assert len(machine.submits) == 3
    assert sub.belonging_jobs[0].fail_count == 2
    assert clock.now >= 5 + 10  # delays 5 then 10


def test_give_up_after_retry_count_plus_one_runs(tmp_path):
    sub, machine, _ = make(tmp_path, ["CD"] * 20, retry_count=2, tag_after=99)
    sub.timing.resubmit_delay = 0
    with pytest.raises(JobFailedError, match="failed 3 times"):
        sub.run_submission(check_interval=1)
    assert len(machine.submits) == 3


def test_recovered_fail_count_keeps_its_budget(tmp_path):
    """The original reset the budget on recovery (modulo); a rerun must not retry forever."""
    sub, _, _ = make(tmp_path, ["CD"] * 20, retry_count=1, tag_after=99)
    sub.timing.resubmit_delay = 0
    with pytest.raises(JobFailedError):
        sub.run_submission(check_interval=1)
    again, machine2, _ = make(tmp_path, ["CD"] * 20, retry_count=1, tag_after=99)
    with pytest.raises(JobFailedError):
        again.run_submission(check_interval=1)
    assert machine2.submits == []  # gave up at once, nothing resubmitted


def test_persistent_unknown_state_becomes_an_error(tmp_path):
    sub, _, _ = make(tmp_path, ["WEIRD?"] * 200)
    sub.timing.unknown_timeout = 60
    with pytest.raises(SchedulerError, match="unknown scheduler state"):
        sub.run_submission(check_interval=5)


def test_unmapped_state_is_polled_again_not_fatal(tmp_path):
    sub, machine, _ = make(tmp_path, ["OOM-ish"] * 3 + ["CD"])
    machine.state_map = dict(Scripted.state_map)
    sub.run_submission(check_interval=1)
    assert sub.belonging_jobs[0].job_state == JobStatus.finished


def test_state_written_atomically_and_kept_locally(tmp_path, monkeypatch):
    sub, _, _ = make(tmp_path, ["CD"])
    sub.run_submission(check_interval=1, clean=False)
    state = tmp_path / "remote" / sub.submission_hash / names.state_file(sub.submission_hash)
    assert state.exists()
    assert not list(state.parent.glob(".tmp.*"))
    import os

    local = Path(os.environ["DPDISPATCHER_HOME"]) / "submission" / state.name
    assert local.read_text() == state.read_text()


def test_progress_callback_sees_counts(tmp_path):
    sub, _, _ = make(tmp_path, ["PD", "R", "CD"])
    seen = []
    sub.progress = seen.append
    sub.run_submission(check_interval=1)
    assert seen[0] == {"waiting": 1} and seen[-1] == {"finished": 1}
