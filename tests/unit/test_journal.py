"""The state journal: a poll that changes only job states appends one line (the changed
jobs, their ids and new states) beside the state file instead of rewriting it; recovery
folds the lines in."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from dpdispatcher import Resources, Submission, Task
from dpdispatcher._journal import journal_file
from dpdispatcher._script import names
from dpdispatcher.contexts.local_context import LocalContext
from dpdispatcher.job import Job
from dpdispatcher.machine import Machine
from dpdispatcher.utils.job_status import JobStatus
from dpdispatcher.utils.record import record


class Reported(Machine):
    """A scheduler that reports, per job, the state the test sets; it runs nothing."""

    _abstract = True
    submits_by_command = False

    def __init__(self, context: LocalContext) -> None:
        super().__init__(context=context)
        self.report: dict[str, JobStatus] = {}
        self.submits = 0

    def submit_prepared(self, job: Job) -> str:
        self.submits += 1
        return str(100 + self.submits)

    def check_status_many(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        return {job.job_hash: self.report.get(job.job_hash, job.job_state) for job in jobs}


def make(tmp_path: Path, n: int = 4) -> tuple[Submission, Reported]:
    for i in range(n):
        (tmp_path / "local" / "work" / f"t{i}").mkdir(parents=True, exist_ok=True)
    ctx = LocalContext(str(tmp_path / "local"), str(tmp_path / "remote"))
    machine = Reported(ctx)
    tasks = [Task(f"echo {i}", f"t{i}") for i in range(n)]
    sub = Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=tasks)
    return sub, machine


def submitted(tmp_path: Path, n: int = 4) -> tuple[Submission, Reported, Path]:
    """A submission whose jobs were all submitted (state file written), and its job root."""
    sub, machine = make(tmp_path, n)
    sub.run_submission(exit_on_submit=True)
    assert machine.submits == n
    return sub, machine, tmp_path / "remote" / sub.submission_hash


def poll(sub: Submission) -> None:
    """One cycle of the run's poll loop."""
    changed = sub.update_submission_state()
    done = sub.handle_unexpected_submission_state()
    if changed or done:
        sub.persist_changes(submitted=done)


def recovered(tmp_path: Path) -> Submission:
    """The same submission built afresh and recovered, as a rerun does."""
    sub, _ = make(tmp_path, len(os.listdir(tmp_path / "local" / "work")))
    sub._prepare()
    assert sub.try_recover_from_json()
    return sub


def test_state_changes_are_appended_not_written_and_recovery_folds_them(tmp_path):
    sub, machine, root = submitted(tmp_path)
    state = root / names.state_file(sub.submission_hash)
    before = (state.stat().st_ino, state.read_bytes())
    jobs = sub.belonging_jobs
    machine.report = {jobs[0].job_hash: JobStatus.running, jobs[2].job_hash: JobStatus.finished}
    poll(sub)
    assert (state.stat().st_ino, state.read_bytes()) == before  # no full write
    lines = (root / journal_file(sub.submission_hash)).read_text().splitlines()
    assert len(lines) == 1
    assert record.read_journal(sub.submission_hash).splitlines() == lines
    machine.report[jobs[0].job_hash] = JobStatus.finished
    poll(sub)
    assert len((root / journal_file(sub.submission_hash)).read_text().splitlines()) == 2
    again = recovered(tmp_path)
    expected = [machine.report.get(job.job_hash, JobStatus.waiting) for job in jobs]
    assert [job.job_state for job in again.belonging_jobs] == expected
    assert [job.job_id for job in again.belonging_jobs] == [job.job_id for job in jobs]


def test_torn_trailing_line_is_ignored(tmp_path):
    sub, machine, root = submitted(tmp_path, 2)
    first, second = sub.belonging_jobs
    machine.report = {first.job_hash: JobStatus.running}
    poll(sub)
    journal = root / journal_file(sub.submission_hash)
    with open(journal, "a", encoding="utf-8") as fh:  # a crash in the middle of a line
        fh.write(f'{{"job": "{second.job_hash}", "job_id": "{second.job_id}", "job_sta')
    again = recovered(tmp_path)
    assert [job.job_state for job in again.belonging_jobs] == [
        JobStatus.running,
        JobStatus.waiting,
    ]


def test_full_write_removes_the_journals_first(tmp_path):
    sub, machine, root = submitted(tmp_path, 2)
    machine.report = {sub.belonging_jobs[0].job_hash: JobStatus.running}
    poll(sub)
    journal = root / journal_file(sub.submission_hash)
    assert journal.exists() and record.journal(sub.submission_hash).exists()
    sub.submission_to_json()
    assert not journal.exists() and not record.journal(sub.submission_hash).exists()
    assert recovered(tmp_path).belonging_jobs[0].job_state == JobStatus.running


def test_a_counted_failure_is_a_full_write(tmp_path):
    """terminated adds to fail_count, which decides resubmission: never only journaled."""
    sub, machine, root = submitted(tmp_path, 2)
    state = root / names.state_file(sub.submission_hash)
    inode = state.stat().st_ino
    machine.report = {sub.belonging_jobs[0].job_hash: JobStatus.terminated}
    sub.update_submission_state()
    sub.persist_changes(submitted=False)
    assert state.stat().st_ino != inode
    assert not (root / journal_file(sub.submission_hash)).exists()
    assert recovered(tmp_path).belonging_jobs[0].fail_count == 1


def test_a_poll_appends_one_line_for_all_it_changed(tmp_path):
    sub, machine, root = submitted(tmp_path, 3)
    first, _second, third = sub.belonging_jobs
    machine.report = {first.job_hash: JobStatus.running, third.job_hash: JobStatus.finished}
    poll(sub)
    (line,) = (root / journal_file(sub.submission_hash)).read_text().splitlines()
    assert json.loads(line) == {
        "jobs": [first.job_hash, third.job_hash],
        "job_ids": [first.job_id, third.job_id],
        "job_states": [int(JobStatus.running), int(JobStatus.finished)],
    }
    assert [job.job_state for job in recovered(tmp_path).belonging_jobs] == [
        JobStatus.running,
        JobStatus.waiting,
        JobStatus.finished,
    ]


def one_job_line(job_hash: str, job_id: str, state: JobStatus) -> str:
    """A line of the first journals (stop 14), one per job."""
    return f'{{"job": "{job_hash}", "job_id": "{job_id}", "job_state": {int(state)}}}\n'


def one_poll_line(job_hash: str, job_id: str, state: JobStatus) -> str:
    """A line of the journal as written now, one per poll."""
    line = {"jobs": [job_hash], "job_ids": [job_id], "job_states": [int(state)]}
    return json.dumps(line) + "\n"


@pytest.mark.parametrize("line", [one_job_line, one_poll_line])
def test_either_line_form_is_folded(tmp_path, line):
    sub, _machine, root = submitted(tmp_path, 1)
    (job,) = sub.belonging_jobs
    journal = root / journal_file(sub.submission_hash)
    journal.write_text(line(job.job_hash, job.job_id, JobStatus.finished))
    assert recovered(tmp_path).belonging_jobs[0].job_state == JobStatus.finished


@pytest.mark.parametrize("line", [one_job_line, one_poll_line])
def test_stale_line_of_another_job_id_is_not_applied(tmp_path, line):
    sub, _machine, root = submitted(tmp_path, 1)
    (job,) = sub.belonging_jobs
    journal = root / journal_file(sub.submission_hash)
    journal.write_text(line(job.job_hash, "999", JobStatus.finished))
    assert recovered(tmp_path).belonging_jobs[0].job_state == JobStatus.waiting


def test_the_run_ends_with_a_full_state_and_no_journal(tmp_path):
    sub, machine, root = submitted(tmp_path, 3)
    machine.report = {job.job_hash: JobStatus.finished for job in sub.belonging_jobs}
    for job in sub.belonging_jobs:
        for task in job.job_task_list:
            tag = root / task.task_work_path / names.task_tag_file(task.task_hash)
            tag.parent.mkdir(parents=True, exist_ok=True)
            tag.touch()
    sub.run_submission(clean=False)
    assert not (root / journal_file(sub.submission_hash)).exists()
    state = (root / names.state_file(sub.submission_hash)).read_text()
    assert state.count(f'"job_state": {int(JobStatus.finished)}') == 3


def test_a_line_whose_lists_differ_in_length_is_not_applied(tmp_path):
    sub, _machine, root = submitted(tmp_path, 1)
    (job,) = sub.belonging_jobs
    line = {"jobs": [job.job_hash], "job_ids": [job.job_id], "job_states": []}
    (root / journal_file(sub.submission_hash)).write_text(json.dumps(line) + "\n")
    assert recovered(tmp_path).belonging_jobs[0].job_state == JobStatus.waiting
