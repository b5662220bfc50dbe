"""Every file name the dispatcher creates, each produced by exactly one function.

Job-level files live in the job root; the task tag lives in the task directory.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable
from typing import Protocol

_UNSAFE_PATTERN_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class _HasJobHash(Protocol):
    @property
    def job_hash(self) -> str: ...


def script_file(job_hash: str) -> str:
    """The job script submitted to the scheduler."""
    return f".{job_hash}.sub"


def script_marker(job_hash: str) -> str:
    """What the command line of a running job script contains: ours, and the script of
    the original 1.0.x (``<hash>.sub``) and 1.1.0 (``.<hash>.sub``), whose jobs we adopt."""
    return f"{job_hash}.sub"


def run_file(job_hash: str) -> str:
    """The per-task body ``source``-d by the job script."""
    return f".{job_hash}.sub.run"


def job_id_file(job_hash: str) -> str:
    """Raw output of the last submit command, written by the submit command itself."""
    return f"{job_hash}_job_id"


def fail_flag_file(job_hash: str) -> str:
    """Holds 0 while every task of the job succeeded, 1 once one failed."""
    return f"{job_hash}_flag_if_job_task_fail"


#: what follows the job hash in the name of the job's finish tag
_JOB_TAG = "_job_tag_finished"


def job_tag_file(job_hash: str) -> str:
    """Touched by the job script when all its tasks succeeded."""
    return f"{job_hash}{_JOB_TAG}"


def job_tag_files(jobs: Iterable[_HasJobHash]) -> list[str]:
    """:func:`job_tag_file` of each job (one call for the thousands of jobs of a poll)."""
    tag = _JOB_TAG
    return [job.job_hash + tag for job in jobs]


def last_err_file(job_hash: str) -> str:
    """Exit code and tail of the error log of the last failing task."""
    return f"{job_hash}_last_err_file"


def task_tag_file(task_hash: str) -> str:
    """Touched in the task directory when the task's command succeeded."""
    return f"{task_hash}_task_tag_finished"


def task_tag_path(task_work_path: str, task_hash: str) -> str:
    """The task tag relative to the job root (no ``./`` for a task in the job root).

    >>> task_tag_path("task.000/", "ab"), task_tag_path(".", "ab")
    ('task.000/ab_task_tag_finished', 'ab_task_tag_finished')
    """
    tdir = posixpath.normpath(task_work_path)
    name = task_tag_file(task_hash)
    return name if tdir == "." else f"{tdir}/{name}"


def submit_tag(submission_hash: str, job_hash: str, attempt: int) -> str:
    """The name (or comment) a job carries in the scheduler, to be found again by it.

    ``dpd`` + the first 8 hex digits of the job hash + 4 hex digits telling this
    submission and attempt apart: 15 characters from ``[a-z0-9]`` starting with a
    letter, accepted as a job name by every scheduler (Torque's limit is 15).

    >>> submit_tag("s" * 40, "0123456789abcdef" + "0" * 24, 0)
    'dpd0123456704e4'
    """
    salt = hashlib.sha1(f"{submission_hash}:{job_hash}:{attempt}".encode()).hexdigest()
    return f"dpd{job_hash[:8]}{salt[:4]}"


def submit_lock_file() -> str:
    """Held (``flock``) by a shell while it submits jobs, so that a restarted dispatcher
    waits for a submitting shell its killed predecessor left behind."""
    return ".dpdispatcher_submit.lock"


def state_file(submission_hash: str) -> str:
    """The persisted submission state in the job root."""
    return f"{submission_hash}.json"


def removing_dir(job_root_name: str) -> str:
    """Beside a job root: the name it is renamed to (atomically) before being deleted."""
    return f".{job_root_name}.removing"


def download_failure_marker(pattern: str) -> str:
    """Empty marker written locally when a backward file is missing and marked as failed."""
    return "tag_failure_download_" + _UNSAFE_PATTERN_CHARS.sub("_", pattern)
