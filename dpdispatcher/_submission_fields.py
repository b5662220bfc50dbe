"""The attributes a :class:`~dpdispatcher.submission.Submission` gives its mixins.

:class:`SubmissionFields` only declares them (for type checking); the mixins
(:mod:`dpdispatcher._submission_state`, :mod:`dpdispatcher._submission_files`,
:mod:`dpdispatcher._failures`, :mod:`dpdispatcher._submission_poll`) keep the submission
module readable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from dpdispatcher.job import Job
    from dpdispatcher.machine import Machine
    from dpdispatcher.resources import Resources
    from dpdispatcher.submission import Submission, Timing
    from dpdispatcher.task import Task

#: called with the count of jobs in each state whenever they change
ProgressCallback = Callable[[dict[str, int]], None]


class SubmissionFields:
    """What :class:`~dpdispatcher.submission.Submission` sets in its constructor."""

    work_base: str
    machine: Machine | None
    resources: Resources | None
    forward_common_files: list[str]
    backward_common_files: list[str]
    belonging_tasks: list[Task]
    belonging_jobs: list[Job]
    dropped_jobs: list[Job]
    _generated_jobs: list[Job]
    settled_tasks: frozenset[str]
    submission_hash: str
    timing: Timing
    progress: ProgressCallback | None
    download_options: dict[str, bool]
    _state_changes: list[Job]
    _journal_lines: int | None
    _job_files: dict[str, dict[str, str]]
    previous_submission_hash: str | None
    continue_on_failure: bool

    def _bound_machine(self) -> Machine:  # provided by Submission
        raise NotImplementedError

    def _resources(self) -> Resources:  # provided by Submission
        raise NotImplementedError

    @property
    def _submission(self) -> Submission:
        """This object as the :class:`~dpdispatcher.submission.Submission` it is, for the
        calls that take one (contexts, the state record, previous-root adoption)."""
        return cast("Submission", self)
