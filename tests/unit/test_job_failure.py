"""Job-level failure handling of 1.1.0: handle_unexpected_job_state(continue_on_failure),
mark_failed / failure_reason, get_last_error_message (Machine.get_job_error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.errors import JobFailedError
from dpdispatcher.utils.job_status import JobStatus


def job(tmp_path: Path, state: JobStatus, retry_count: int = 0) -> Job:
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LazyLocalContext",
            "local_root": str(tmp_path),
            "retry_count": retry_count,
        }
    )
    out = Job([Task("false", "t1/"), Task("true", "t2/")], resources=Resources(1, 1, 0, "", 2))
    out.machine = machine
    out.job_state = state
    (tmp_path / names.last_err_file(out.job_hash)).write_text("task t1/ failed: boom\n")
    return out


def test_exhausted_job_raises_by_default_with_the_remote_error(tmp_path):
    j = job(tmp_path, JobStatus.terminated)
    with pytest.raises(JobFailedError, match=r"failed 1 times(.|\n)*boom"):
        j.handle_unexpected_job_state()
    assert j.job_state == JobStatus.terminated and j.failure_reason is None


def test_exhausted_job_is_marked_failed_under_continue_on_failure(tmp_path):
    j = job(tmp_path, JobStatus.terminated)
    j.job_task_list[1].task_state = JobStatus.finished
    j.handle_unexpected_job_state(continue_on_failure=True)
    assert j.job_state == JobStatus.failed
    assert "boom" in (j.failure_reason or "")
    assert [t.task_state for t in j.job_task_list] == [JobStatus.failed, JobStatus.finished]
    assert Job.deserialize(j.serialize()).job_state == JobStatus.failed


def test_a_failed_job_raises_unless_continuing(tmp_path):
    j = job(tmp_path, JobStatus.failed)
    with pytest.raises(JobFailedError, match="is in failed state"):
        j.handle_unexpected_job_state()
    j.handle_unexpected_job_state(continue_on_failure=True)  # left alone
    assert j.job_state == JobStatus.failed


def test_get_last_error_message(tmp_path):
    j = job(tmp_path, JobStatus.terminated)
    assert j.get_last_error_message() == "task t1/ failed: boom\n"
    (tmp_path / names.last_err_file(j.job_hash)).unlink()
    assert j.get_last_error_message() is None
