"""What a submission does with jobs that give up: mark, fetch their error output, report.

A mixin of :class:`~dpdispatcher.submission.Submission`, kept apart so that the
lifecycle module stays readable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dpdispatcher import _outcome
from dpdispatcher._script import names
from dpdispatcher._submission_fields import SubmissionFields
from dpdispatcher.contexts._local import atomic_write
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import DPDispatcherError, JobFailedError
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.job import Job

#: job states whose error output is worth bringing back
ENDED_BADLY = (JobStatus.terminated, JobStatus.failed, JobStatus.unknown)


class FailureHandling(SubmissionFields):
    """Failed jobs of a submission (``continue_on_failure``, error files, the report)."""

    def failed_jobs(self) -> list[Job]:
        """The jobs that exhausted their retries and were marked failed."""
        return [job for job in self.belonging_jobs if job.job_state == JobStatus.failed]

    def raise_for_failed_jobs(self, *, continue_on_failure: bool = True) -> None:
        """Raise one :class:`JobFailedError` listing every failed job, if there is any.

        Each failed job is listed with its id, fail count, tasks (directory and command),
        the tail of its last error output and where its logs are.
        """
        failed = self.failed_jobs()
        if failed:
            raise _outcome.failed_jobs_error(
                self._failure_reports(failed), monitored=continue_on_failure
            )

    def try_download_error_info(self, jobs: list[Job] | None = None) -> None:
        """Copy ``<job_hash>_last_err_file`` of each job that ended badly to the work base.

        The file holds the tail of the error log of the job's failing task; the copy
        stays when the job root is cleaned. ``jobs`` limits this to those jobs (the
        submission does it for each job when it terminates, and at the end of a run).
        """
        machine = self.machine
        if machine is None:  # nothing ran: nothing to fetch
            return
        for job in self.belonging_jobs if jobs is None else jobs:
            if job.job_state not in ENDED_BADLY:
                continue
            try:
                text = machine.get_job_error(job)  # one read each: failing jobs are few
            except (OSError, DPDispatcherError) as err:
                dlog.warning("could not fetch the error output of job %s: %s", job.job_hash, err)
                continue
            if text is None:
                continue
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            path = os.path.join(machine.context.local_root, names.last_err_file(job.job_hash))
            atomic_write(path, text)
            dlog.warning(
                "job %s ended with an error; its last error output is in %s:\n%s",
                job.job_hash,
                path,
                _outcome.tail(text),
            )

    def _fetch_error_info_quietly(self, jobs: list[Job] | None = None) -> None:
        try:
            self.try_download_error_info(jobs)
        except Exception as err:  # noqa: BLE001 - diagnostics only; never hide the outcome
            dlog.debug("could not fetch the error output of failed jobs: %s", err)

    def _mark_failed(self, job: Job) -> None:
        job.mark_failed(str(self._give_up_error(job)))
        dlog.warning(
            "job %s (id %s) failed %d times (retry_count=%d); continuing with the other jobs "
            "(continue_on_failure)",
            job.job_hash,
            job.job_id,
            job.fail_count,
            self._bound_machine().retry_count,
        )

    def _last_errors(self, jobs: list[Job]) -> dict[str, str]:
        """The last error output of each job (by hash): the local copy, else the job root's."""
        ctx = self._bound_machine().context
        out: dict[str, str] = {}
        remote: list[str] = []
        for job in jobs:
            local = os.path.join(ctx.local_root, names.last_err_file(job.job_hash))
            try:
                with open(local, encoding="utf-8", errors="replace") as fh:
                    out[job.job_hash] = fh.read()
            except OSError:
                remote.append(names.last_err_file(job.job_hash))
        try:
            found = ctx.read_files(remote) if remote else {}
        except Exception as err:  # noqa: BLE001 - the report goes on without the excerpt
            dlog.debug("could not read the error output of failed jobs: %s", err)
            found = {}
        for job in jobs:
            out.setdefault(job.job_hash, found.get(names.last_err_file(job.job_hash), ""))
        return out

    def _failure_reports(self, jobs: list[Job]) -> list[_outcome.FailedJob]:
        errors = self._last_errors(jobs)
        root = self._bound_machine().context.remote_root
        return [
            _outcome.FailedJob(
                job.job_hash,
                str(job.job_id),
                job.fail_count,
                tuple(f"{t.task_work_path}: {t.command}" for t in job.job_task_list),
                _outcome.tail(errors[job.job_hash]),
                f"task directories under {root}",
            )
            for job in jobs
        ]

    def _give_up_error(self, job: Job) -> JobFailedError:
        last_err = self._last_errors([job])[job.job_hash].strip()
        dirs = ", ".join(sorted({t.task_work_path for t in job.job_task_list}))
        return JobFailedError(
            f"job {job.job_hash} (job id {job.job_id}) failed {job.fail_count} times, more than "
            f"retry_count={self._bound_machine().retry_count}; giving up.\n"
            f"last error: {last_err or '(no error output recorded)'}\n"
            f"logs: task directories {dirs} under {self._bound_machine().context.remote_root}"
        )
