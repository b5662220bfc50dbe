"""Moving a submission's files: upload, download (retried) and clean.

A mixin of :class:`~dpdispatcher.submission.Submission`; the contexts do the transfers.
"""

from __future__ import annotations

from dpdispatcher._submission_fields import SubmissionFields
from dpdispatcher.contexts._ssh_errors import SSHConnectionError
from dpdispatcher.dlog import dlog
from dpdispatcher.task import task_tag_path
from dpdispatcher.utils.job_status import JobStatus
from dpdispatcher.utils.record import record


class FileStaging(SubmissionFields):
    """Upload, download and clean of a submission's job root."""

    def upload_jobs(self) -> None:
        """Send the files, then write the scripts of every job not yet finished.

        In a resumed run, the inputs of tasks that already ran are not sent again: a
        forward file such a task edited in place is its result, not to be overwritten.
        """
        ctx = self._bound_machine().context
        self.settled_tasks = self._tasks_already_run()
        ctx.upload(self._submission)
        files: dict[str, str] = {}
        for job in self.belonging_jobs:
            if job.job_state != JobStatus.finished:
                files.update(self._job_files[job.job_hash])
        ctx.write_files(files)

    def _tasks_already_run(self) -> frozenset[str]:
        """Tasks of finished jobs, tasks found finished (``previous_submission_hash``), and
        tasks with their tag in jobs that were submitted."""
        settled = {
            task.task_hash
            for job in self.belonging_jobs
            for task in job.job_task_list
            if job.job_state == JobStatus.finished or task.task_state == JobStatus.finished
        }
        tags = {
            task_tag_path(task): task.task_hash
            for job in self.belonging_jobs
            if job.job_state != JobStatus.finished and (job.job_id or job.fail_count)
            for task in job.job_task_list
        }
        if tags:
            present = self._bound_machine().context.files_exist(sorted(tags))
            settled.update(tags[path] for path in present)
        return frozenset(settled)

    def try_download_result(self) -> bool:
        """:meth:`download_jobs`, retried while the connection fails; False if it never
        succeeded within ``timing.download_retry_budget`` seconds.

        A missing backward file is not retried (it raises at once).
        """
        deadline = self.timing.clock() + self.timing.download_retry_budget
        delay = self.timing.resubmit_delay
        while True:
            try:
                self.download_jobs()
                return True
            except (ConnectionError, TimeoutError, SSHConnectionError) as err:
                if self.timing.clock() + delay > deadline:
                    dlog.error("giving up downloading the results: %s", err)
                    return False
                dlog.warning("downloading the results failed (%s); retrying in %.0f s", err, delay)
                self.timing.sleep(delay)
                delay = min(delay * 2, self.timing.resubmit_delay_max)

    def download_jobs(self, include_failed: bool = False) -> None:
        """Bring back the results of every job (not of jobs dropped by ratio_unfinished).

        Jobs that gave up are left out unless ``include_failed``, which fetches what
        exists of theirs too (missing files are then tolerated).
        """
        options = dict(self.download_options)
        jobs, tasks = self.belonging_jobs, self.belonging_tasks
        if include_failed:
            options.update(check_exists=True, mark_failure=False)
        else:
            self.belonging_jobs = [j for j in jobs if j.job_state != JobStatus.failed]
        # contexts download the backward files of belonging_tasks, as in 1.1.0
        self.belonging_tasks = [t for job in self.belonging_jobs for t in job.job_task_list]
        try:
            self._bound_machine().context.download(self._submission, **options)
        finally:
            self.belonging_jobs, self.belonging_tasks = jobs, tasks

    def _job_root(self) -> str:
        return self._bound_machine().context.remote_root

    def clean_jobs(self) -> None:
        """Remove the job root on the execution side, then the local copy of the state.

        The local copy goes last: a run killed in between recovers from it and does not
        run finished tasks again.
        """
        self._bound_machine().context.clean()
        record.remove(self.submission_hash)
