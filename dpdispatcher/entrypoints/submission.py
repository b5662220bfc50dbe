"""``dpdisp submission HASH``: act on a submission recorded earlier."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from dpdispatcher import _journal
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError
from dpdispatcher.job import Job
from dpdispatcher.submission import Submission
from dpdispatcher.task import Task
from dpdispatcher.utils.job_status import JobStatus
from dpdispatcher.utils.record import record

if TYPE_CHECKING:
    from dpdispatcher.machine import Machine


def load_recorded(submission_hash: str, machine: Machine | None = None) -> Submission:
    """The submission recorded under ``submission_hash``, bound to its job root."""
    path = record.get_submission(submission_hash)
    if machine is None:
        submission = Submission.submission_from_json(str(path))
    else:
        from dpdispatcher._loaders import load_json

        submission = Submission.deserialize(load_json(path), machine=machine)
    submission.submission_hash = submission_hash
    _journal.apply(submission.belonging_jobs, record.read_journal(submission_hash), str(path))
    bound = submission.machine
    if bound is not None:
        bound.context.bind_submission(submission)
    return submission


def handle_submission(
    *,
    submission_hash: str,
    download_terminated_log: bool = False,
    download_finished_task: bool = False,
    clean: bool = False,
    reset_fail_count: bool = False,
    machine: Machine | None = None,
) -> None:
    """Act on a recorded submission (at least one action is required).

    Parameters
    ----------
    submission_hash : str
        The submission's hash (the name of its record).
    download_terminated_log : bool
        Download the outlog/errlog of the tasks of terminated jobs.
    download_finished_task : bool
        Download the backward files of finished jobs.
    clean : bool
        Kill unfinished jobs and remove the job root.
    reset_fail_count : bool
        Set every job's fail count to 0 (failed jobs become terminated) so a rerun
        retries them.
    machine : Machine, optional
        Use this machine instead of the recorded one (which holds no secrets).
    """
    if not (download_terminated_log or download_finished_task or clean or reset_fail_count):
        raise ConfigurationError(
            "dpdisp submission: give at least one action (--download-terminated-log, "
            "--download-finished-task, --clean, --reset-fail-count)"
        )
    submission = load_recorded(submission_hash, machine)
    if reset_fail_count:
        reset_failures(submission)
        submission.submission_to_json()
        record.write(submission)
    if download_terminated_log or download_finished_task or clean:
        submission.update_submission_state()
    if download_terminated_log:
        download_subset(submission, JobStatus.terminated, logs_only=True)
    if download_finished_task:
        download_subset(submission, JobStatus.finished, logs_only=False)
    if clean:
        submission.clean_all_jobs()
        submission.clean_jobs()


def reset_failures(submission: Submission) -> None:
    """Fail counts to 0; jobs (and their tasks) that failed for good become terminated."""
    for job in submission.belonging_jobs:
        job.fail_count = 0
        if job.job_state == JobStatus.failed:
            job.job_state = JobStatus.terminated
            if hasattr(job, "failure_reason"):
                job.failure_reason = None
            for task in job.job_task_list:
                task.task_state = JobStatus.terminated


def download_subset(submission: Submission, state: JobStatus, logs_only: bool) -> list[Job]:
    """Download the results (or only the logs) of the jobs in ``state``; return them."""
    view = copy.copy(submission)
    jobs = [j for j in submission.belonging_jobs if j.job_state == state]
    if logs_only:
        jobs = [Job([_logs_task(t) for t in j.job_task_list], resources=j.resources) for j in jobs]
    view.belonging_jobs = jobs
    view.belonging_tasks = [t for job in jobs for t in job.job_task_list]
    view.backward_common_files = []
    machine = submission.machine
    if machine is None:
        raise ConfigurationError("the recorded submission has no machine")
    machine.context.download(view, check_exists=True, mark_failure=False)
    dlog.info(
        "downloaded %s %d %s job(s)",
        "logs of" if logs_only else "results of",
        len(jobs),
        state.name,
    )
    return jobs


def _logs_task(task: Task) -> Task:
    logs = [log for log in (task.outlog, task.errlog) if log is not None]
    return Task(
        task.command,
        task.task_work_path,
        backward_files=logs,
        outlog=task.outlog,
        errlog=task.errlog,
    )
