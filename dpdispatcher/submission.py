"""Submission: a set of tasks, grouped into jobs, run to completion on a machine.

``Task``, ``Resources`` and ``Job`` are defined in their own modules and re-exported
here, where the reference manual places them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dpdispatcher import _files, _outcome
from dpdispatcher._loaders import check_path_list, load_json
from dpdispatcher._shuffle import seeded_shuffle
from dpdispatcher._submission_fields import ProgressCallback
from dpdispatcher._submission_files import FileStaging
from dpdispatcher._submission_poll import Polling
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, ContextError
from dpdispatcher.job import Job
from dpdispatcher.machine import Machine
from dpdispatcher.resources import Resources
from dpdispatcher.task import Task
from dpdispatcher.utils.job_status import JobStatus

__all__ = ["Job", "Resources", "Submission", "Task", "Timing"]


_SHA1 = re.compile(r"[0-9a-f]{40}")


@dataclass
class Timing:
    """Polling and retry timing; tests inject a fake clock and sleep."""

    first_interval: float = 0.1
    growth: float = 1.3
    resubmit_delay: float = 1.0
    resubmit_delay_max: float = 300.0
    unknown_timeout: float = 1800.0
    #: how long a download is retried while the connection keeps failing
    download_retry_budget: float = 3600.0
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def resubmit_after(self, fail_count: int) -> float:
        """Delay before resubmitting a job that has failed ``fail_count`` times."""
        return float(
            min(self.resubmit_delay * 2 ** max(fail_count - 1, 0), self.resubmit_delay_max)
        )


class Submission(Polling, FileStaging):
    """Tasks to run on a machine with given resources, and the jobs they become.

    Parameters
    ----------
    work_base : str
        Directory of the tasks, relative to the machine's ``local_root``.
    machine : Machine
        Where the jobs run.
    resources : Resources
        What each job asks for (also how tasks are grouped: ``group_size``).
    forward_common_files, backward_common_files : list of str
        Files of the work base sent before / fetched after all jobs (sorted).
    task_list : list of Task
        The tasks.
    previous_submission_hash : str, optional
        Adopt the job root of an earlier submission of the same tasks (e.g. before its
        resources were changed): tasks that finished there are not run again.
    continue_on_failure : bool
        A job that exhausts its retries no longer stops the others; the run ends with
        one error listing every failed job (see :meth:`run_submission`).

    Examples
    --------
    >>> import os, tempfile
    >>> from dpdispatcher import Machine, Resources, Task, Submission
    >>> base = tempfile.mkdtemp()
    >>> machine = Machine(batch_type="Shell", context_type="LazyLocalContext", local_root=base)
    >>> tasks = [Task(command="echo hello", task_work_path=".", outlog="out.txt")]
    >>> sub = Submission(".", machine, Resources(1, 1, 0, "", 1), task_list=tasks)
    >>> _ = sub.run_submission()
    >>> open(os.path.join(base, "out.txt")).read()
    'hello\\n'
    """

    def __init__(
        self,
        work_base: str,
        machine: Machine | None = None,
        resources: Resources | None = None,
        forward_common_files: list[str] | None = None,
        backward_common_files: list[str] | None = None,
        *,
        task_list: list[Task] | None = None,
        previous_submission_hash: str | None = None,
        continue_on_failure: bool = False,
    ) -> None:
        if not isinstance(work_base, str) or not work_base:
            raise ConfigurationError(f"submission/work_base: expected a path, got {work_base!r}")
        self.work_base = work_base
        self.resources = resources
        self.forward_common_files = sorted(
            check_path_list(list(forward_common_files or []), "submission/forward_common_files")
        )
        self.backward_common_files = sorted(
            check_path_list(list(backward_common_files or []), "submission/backward_common_files")
        )
        self.belonging_tasks: list[Task] = []
        self.belonging_jobs: list[Job] = []
        self.dropped_jobs: list[Job] = []
        self._generated_jobs: list[Job] = []  # every job, kept once some are dropped
        #: hashes of tasks whose results are already in the job root (a resumed run):
        #: their forward files are not sent again
        self.settled_tasks: frozenset[str] = frozenset()
        self.submission_hash = ""
        self.timing = Timing()
        self.progress: ProgressCallback | None = None
        self.download_options: dict[str, bool] = {
            "check_exists": False,
            "mark_failure": True,
            "back_error": False,
        }
        self.machine: Machine | None = None
        #: jobs whose state a poll changed since the last state write
        self._state_changes: list[Job] = []
        #: lines in the journal since the last full state write; None: no full write by
        #: this process yet (or the last one failed), so nothing may be appended
        self._journal_lines: int | None = None
        self.previous_submission_hash = checked_previous_hash(previous_submission_hash)
        self.continue_on_failure = bool(continue_on_failure)
        self.register_task_list(list(task_list or []))
        if machine is not None:
            self.bind_machine(machine)

    def __repr__(self) -> str:
        return json.dumps(self.serialize(), indent=4)

    # -- building -----------------------------------------------------------------
    def register_task(self, task: Task) -> None:
        """Add one task (only before jobs are generated)."""
        if self.belonging_jobs:
            raise ConfigurationError("cannot add tasks after the jobs were generated")
        if not isinstance(task, Task):
            raise ConfigurationError(f"task_list: expected Task objects, got {type(task).__name__}")
        self.belonging_tasks.append(task)

    def register_task_list(self, task_list: list[Task]) -> None:
        """Add tasks (only before jobs are generated)."""
        tasks = list(task_list)
        if self.belonging_jobs or not all(isinstance(task, Task) for task in tasks):
            for task in tasks:
                self.register_task(task)  # says which is wrong
            return
        self.belonging_tasks.extend(tasks)

    def bind_machine(self, machine: Machine) -> Submission:
        """Run this submission on ``machine``."""
        if not isinstance(machine, Machine):
            raise ConfigurationError(f"machine: expected a Machine, got {type(machine).__name__}")
        self.machine = machine
        for job in self.belonging_jobs:
            job.machine = machine
        if not self.belonging_jobs:  # as in 1.1.0: the hash of the tasks, until grouped
            self.submission_hash = self.get_hash()
        self._bind_context()
        return self

    def _bind_context(self) -> None:
        """Point the machine's context at this submission's job root, as 1.1.0 does; a
        context that would need a connection to know it binds when the run starts."""
        ctx = self.machine.context if self.machine is not None else None
        if ctx is not None and ctx.binds_offline():
            ctx.bind_submission(self)

    def generate_jobs(self) -> None:
        """Group the tasks into jobs of ``group_size`` after a seeded (42) shuffle.

        The shuffle balances load between jobs and is the same on every run, so a rerun
        produces the same jobs (and hashes).
        """
        if self.belonging_jobs:
            raise ConfigurationError("the jobs of this submission were already generated")
        resources = self._resources()
        if not self.belonging_tasks:
            raise ConfigurationError("submission has no tasks (task_list is empty)")
        self._warn_duplicate_tasks()
        tasks = seeded_shuffle(self.belonging_tasks, 42)
        size = resources.group_size or len(tasks)
        for start in range(0, len(tasks), size):
            self.belonging_jobs.append(
                Job.with_copy_of(tasks[start : start + size], resources, self.machine)
            )
        self.submission_hash = self.get_hash()
        self._bind_context()

    def _warn_duplicate_tasks(self) -> None:
        """Warn once about tasks listed more than once (same hash), which 1.1.0 accepts:
        they share one finish tag, so a copy grouped after a finished one is skipped."""
        seen: set[str] = set()
        repeated = []
        for task in self.belonging_tasks:
            if task.task_hash in seen:
                repeated.append(task)
            seen.add(task.task_hash)
        if repeated:
            dlog.warning(
                "task_list: %d task(s) are listed more than once, e.g. %r; identical tasks "
                "share one finish tag: a copy that starts after another finished is skipped, "
                "copies in jobs running at the same time run concurrently",
                len(repeated),
                repeated[0],
            )

    def _resources(self) -> Resources:
        if self.resources is None:
            raise ConfigurationError("submission has no resources")
        return self.resources

    def _bound_machine(self) -> Machine:
        if self.machine is None:
            raise ConfigurationError("submission has no machine")
        return self.machine

    @classmethod
    def deserialize(
        cls,
        submission_dict: dict[str, Any],
        machine: Machine | None = None,
        *,
        bind_context: bool = True,
    ) -> Submission:
        """Inverse of :meth:`serialize` (the machine is rebuilt unless given).

        With ``bind_context`` the machine's context is pointed at the submission's work
        base and job root; ``False`` leaves the context untouched (no remote access).
        """
        if machine is None and submission_dict.get("machine"):
            machine = Machine.deserialize(submission_dict["machine"])
        sub = cls(
            submission_dict["work_base"],
            resources=Resources.deserialize(submission_dict["resources"]),
            forward_common_files=submission_dict.get("forward_common_files", []),
            backward_common_files=submission_dict.get("backward_common_files", []),
            continue_on_failure=bool(submission_dict.get("continue_on_failure", False)),
            previous_submission_hash=submission_dict.get("previous_submission_hash"),
        )
        sub.belonging_jobs = [
            Job.deserialize(j, machine) for j in submission_dict["belonging_jobs"]
        ]
        if sub.belonging_jobs:
            sub.belonging_tasks = [t for job in sub.belonging_jobs for t in job.job_task_list]
        else:  # not grouped yet (1.1.0 kept the tasks then)
            sub.register_task_list(
                [Task.deserialize(t) for t in submission_dict.get("belonging_tasks", [])]
            )
        if machine is not None:
            if not isinstance(machine, Machine):
                raise ConfigurationError(
                    f"machine: expected a Machine, got {type(machine).__name__}"
                )
            sub.machine = machine
        sub.submission_hash = sub.get_hash()
        if bind_context and machine is not None:
            machine.context.bind_submission(sub)
        return sub

    @classmethod
    def submission_from_json(cls, json_file_name: str = "submission.json") -> Submission:
        """Load a submission from a state file."""
        return cls.deserialize(load_json(json_file_name))

    # -- lifecycle ------------------------------------------------------------------
    def run_submission(
        self,
        *,
        dry_run: bool = False,
        exit_on_submit: bool = False,
        clean: bool | str = True,
        check_interval: float = 30,
        continue_on_failure: bool | None = None,
    ) -> dict[str, Any]:
        """Run every job to completion and bring the results back.

        Generate jobs, recover state left by an earlier run, upload, submit, poll until
        every job finished (resubmitting failed ones), download, clean. With ``dry_run``
        it stops after uploading; with ``exit_on_submit`` it returns once the jobs are
        submitted (run it again later to wait and download).

        Parameters
        ----------
        clean : bool or str
            ``True``/``"always"``: remove the job root after downloading; ``False``/
            ``"never"``: keep it; ``"on_success"``: only when every task finished. A
            job root where a job gave up is always kept.
        check_interval : float
            Longest pause (s) between two polls; 0 polls as fast as the back-off allows.
        continue_on_failure : bool, optional
            Overrides the submission's setting: a job exhausting its retries is marked
            failed and the others go on; every finished task is downloaded; then one
            :class:`JobFailedError` lists each failed job, its tasks and error tail.

        Returns
        -------
        dict
            :meth:`serialize` of the final state.
        """
        strategy = _outcome.clean_strategy(clean)
        if not isinstance(check_interval, (int, float)) or check_interval < 0:
            raise ConfigurationError(f"check_interval: expected >= 0, got {check_interval!r}")
        if continue_on_failure is not None:
            self.continue_on_failure = bool(continue_on_failure)
        self._prepare()
        self.try_recover_from_json()
        self._raise_if_given_up()
        try:
            self.update_submission_state()
            if not self.check_all_finished():
                self.upload_jobs()
            if dry_run:
                return self.serialize()
            self.submission_to_json()
            if self.handle_unexpected_submission_state():
                self.submission_to_json()
            if exit_on_submit:
                return self.serialize()
            self._poll_until_done(check_interval)
        except BaseException:
            self._save_state_quietly()
            self._fetch_error_info_quietly()
            raise
        if not self.try_download_result():
            self._save_state_quietly()
            raise ContextError(
                f"the results could not be downloaded from {self._job_root()} (the connection "
                "kept failing); the job root is kept: run the submission again to download"
            )
        self._fetch_error_info_quietly()
        self.submission_to_json()
        failed = bool(self.failed_jobs())
        if _outcome.should_clean(strategy, failed=failed, complete=not self.dropped_jobs):
            self.clean_jobs()
        elif failed:
            dlog.info("keeping the job root of the failed jobs: %s", self._job_root())
        if failed:
            self.raise_for_failed_jobs(continue_on_failure=self.continue_on_failure)
        return self.serialize()

    async def async_run_submission(self, **kwargs: Any) -> dict[str, Any]:
        """:meth:`run_submission` in a worker thread, leaving the event loop free.

        ``clean`` defaults to False here, as in 1.1.0: submissions run concurrently
        often share files, and cleaning is better done once they all finished.
        """
        import asyncio

        kwargs.setdefault("clean", False)
        if _outcome.clean_strategy(kwargs["clean"]) != "never":
            dlog.warning(
                "async_run_submission with clean=%r: the job root is removed as soon as "
                "this submission finishes",
                kwargs["clean"],
            )
        return await asyncio.to_thread(self.run_submission, **kwargs)

    def _prepare(self) -> None:
        machine = self._bound_machine()
        if not self.belonging_jobs:
            self.generate_jobs()
        for job in self.belonging_jobs:
            job.machine = machine
        machine.check_resources(self._resources())
        machine.context.bind_submission(self)
        if not os.path.isdir(machine.context.local_root):
            raise ConfigurationError(
                f"work base {machine.context.local_root} (local_root + work_base) does not exist"
            )
        _files.forward_files(self, machine.context.local_root)
        dlog.info("submission %s: job root %s", self.submission_hash, machine.context.remote_root)
        self._job_files = {job.job_hash: machine.job_files(job) for job in self.belonging_jobs}

    def _raise_if_given_up(self) -> None:
        if self.continue_on_failure:
            return
        for job in self.belonging_jobs:
            if job.job_state == JobStatus.failed or job.exhausted(
                self._bound_machine().retry_count
            ):
                self._fetch_error_info_quietly()
                raise self._give_up_error(job)


def checked_previous_hash(value: object) -> str | None:
    """``previous_submission_hash`` as given, refused (before any path is built from it)
    unless it is None or a 40-character lowercase SHA-1, as in 1.1.0."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA1.fullmatch(value):
        raise ConfigurationError(
            f"previous_submission_hash must be a 40-character SHA-1 (lowercase hex), got {value!r}"
        )
    return value
