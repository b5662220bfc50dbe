"""Results of cloud jobs: fetched, extracted safely, brought into the work base.

:class:`CloudResults` is mixed into the cloud contexts (Bohrium and OpenAPI); it needs
of them the staging-root file operations of a local context and ``client`` (to ask a
job's ``resultUrl`` and download it).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dpdispatcher import _files
from dpdispatcher._replace import bring_back
from dpdispatcher._script import names
from dpdispatcher.dpcloudserver._records import (
    BACKUP_DIR,
    delivered_file,
    result_dir,
    result_of_file,
    result_zip_file,
)
from dpdispatcher.errors import RemoteFileNotFoundError
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.job import Job
    from dpdispatcher.submission import Submission

__all__ = ["CloudResults"]


class CloudResults:
    """Fetching, extracting and delivering the results of cloud jobs (a mixin)."""

    keep_backup: bool
    local_root: str

    if TYPE_CHECKING:

        @property
        def client(self) -> Any: ...

        def _abs(self, path: str) -> str: ...

        def check_file_exists(self, fname: str) -> bool: ...

        def read_file(self, fname: str) -> str: ...

        def write_file(self, fname: str, write_str: str) -> str: ...

    def forget_outcome(self, job: Job) -> None:
        """Drop the job tag and last error of an earlier attempt before resubmitting."""
        for fname in (names.job_tag_file(job.job_hash), names.last_err_file(job.job_hash)):
            for path in (
                self._abs(fname),
                os.path.join(self._abs(result_dir(job.job_hash)), fname),
            ):
                if os.path.lexists(path):
                    os.unlink(path)

    def result_fetched(self, job: Job) -> bool:
        """Whether the result of ``job``'s current cloud job is already extracted."""
        fname = result_of_file(job.job_hash)
        return (
            bool(job.job_id)
            and self.check_file_exists(fname)
            and (self.read_file(fname).strip() == job.job_id)
        )

    def fetch_result(self, job: Job, result_url: str) -> None:
        """Download ``job``'s result archive and extract it safely into its result dir.

        Extraction follows :func:`dpdispatcher._archive.safe_extract_zip`: a member with
        an absolute path, a ``..`` component or a link leading out is skipped with a
        WARNING naming it, the rest is extracted, each member replacing what an earlier
        attempt left. The job tag and last error found in it are copied to the staging
        root, where the core looks for them. A failed download raises
        :class:`~dpdispatcher.dpcloudserver.CloudAPIError`; an archive that is not a zip
        raises :class:`~dpdispatcher.errors.UnsafeArchiveError`.
        """
        from dpdispatcher._archive import safe_extract_zip
        from dpdispatcher.errors import UnsafeArchiveError

        if self.result_fetched(job):
            return
        archive = self._abs(result_zip_file(job.job_hash))
        what = f"the result of job {job.job_hash} (cloud job {job.job_id})"
        self.client.download_result(result_url, archive)
        target = self._abs(result_dir(job.job_hash))
        try:
            safe_extract_zip(archive, target)
        except zipfile.BadZipFile as err:
            raise UnsafeArchiveError(f"{what} is not a valid zip archive: {err}") from err
        finally:
            os.unlink(archive)
        for fname in (names.job_tag_file(job.job_hash), names.last_err_file(job.job_hash)):
            src = os.path.join(target, fname)
            if os.path.isfile(src) and not os.path.islink(src):
                shutil.copyfile(src, self._abs(fname))
        self.write_file(result_of_file(job.job_hash), f"{job.job_id}\n")

    def deliver(self, job: Job) -> None:
        """Bring ``job``'s backward files from its extracted result into the work base.

        Called as soon as the job is judged finished (once per cloud job), so a
        finished job's files are home even if another job fails for good later.
        Requests that matched nothing are remembered for :meth:`download` to report.
        """
        marker = delivered_file(job.job_hash)
        if self.check_file_exists(marker) and self._delivered(job) is not None:
            return
        missing = [
            [req.directory, req.pattern]
            for req, sources in self._job_requests(job, back_error=False)
            if not self._place(req, sources)
        ]
        self.write_file(marker, json.dumps({"job_id": job.job_id, "missing": missing}) + "\n")

    def _delivered(self, job: Job) -> list[_files.BackwardRequest] | None:
        """The unmatched requests of a delivered job; None when it was not delivered."""
        marker = delivered_file(job.job_hash)
        if not self.check_file_exists(marker):
            return None
        try:
            data = json.loads(self.read_file(marker))
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("job_id") != job.job_id:
            return None
        return [_files.BackwardRequest(d, p) for d, p in data.get("missing", [])]

    def _place(self, req: _files.BackwardRequest, sources: list[str]) -> bool:
        """Move the matches of ``req`` into the work base; False when nothing matched."""
        local_dir = os.path.join(self.local_root, req.directory)
        found = [(src, rel) for src in sources for rel in _files.glob_rel(src, req.pattern)]
        for src, rel in found:
            dst = os.path.join(local_dir, rel)
            bring_back(os.path.join(src, rel), dst, keep_source=self.keep_backup)
        return bool(found)

    def download(
        self,
        submission: Submission,
        check_exists: bool = False,
        mark_failure: bool = True,
        back_error: bool = False,
    ) -> None:
        """Bring the backward files of every finished job from its result to the work base.

        A job whose result is not extracted yet (e.g. after a restart) is fetched first;
        the files of jobs :meth:`deliver` already handled are not looked for again. Jobs
        that did not finish are left out. Missing files raise
        :class:`~dpdispatcher.errors.RemoteFileNotFoundError` at the end, unless
        ``check_exists`` (with ``mark_failure``, an empty ``tag_failure_download_*``
        marker is written instead). ``back_error`` also brings ``error*`` files. With
        ``keep_backup`` the whole result of each job is then kept in
        ``backup/<job_hash>/`` of the work base.
        """
        jobs = [job for job in submission.belonging_jobs if job.job_state != JobStatus.terminated]
        for job in jobs:
            if job.job_id and not self.result_fetched(job):
                detail = self.client.job_detail(job.job_id)
                if detail.result_url:
                    self.fetch_result(job, detail.result_url)
        missing: list[str] = []
        for req, sources in self._requests(submission, jobs, back_error):
            if not self._place(req, sources):
                local_dir = os.path.join(self.local_root, req.directory)
                report = _files.unmatched(req, local_dir, check_exists, mark_failure)
                missing += [report] if report else []
        if self.keep_backup:
            self._keep_backups(submission)
        if missing:
            raise RemoteFileNotFoundError(
                "backward files not found in the results of the cloud jobs: "
                f"{', '.join(missing)} (set check_exists=True to tolerate missing files; "
                f"keep_backup=True keeps every job's whole result in {BACKUP_DIR}/)"
            )

    def _job_requests(
        self, job: Job, back_error: bool
    ) -> Iterator[tuple[_files.BackwardRequest, list[str]]]:
        """The backward requests of one job's tasks, with the result directory to look in."""
        root = self._abs(result_dir(job.job_hash))
        for task in job.job_task_list:
            directory = os.path.normpath(task.task_work_path)
            src = [os.path.join(root, directory)]
            for pattern in task.backward_files:
                yield _files.BackwardRequest(directory, pattern), src
            if back_error:
                yield _files.BackwardRequest(directory, "error*", optional=True), src

    def _requests(
        self, submission: Submission, jobs: list[Job], back_error: bool
    ) -> Iterator[tuple[_files.BackwardRequest, list[str]]]:
        """Each backward request still to place, with the result directories to look in."""
        for job in jobs:
            done = self._delivered(job)
            if done is None:
                yield from self._job_requests(job, back_error)
                continue
            root = self._abs(result_dir(job.job_hash))
            for req in done:  # reported missing at delivery: looked for again
                yield req, [os.path.join(root, req.directory)]
            if back_error:
                for task in job.job_task_list:
                    directory = os.path.normpath(task.task_work_path)
                    req = _files.BackwardRequest(directory, "error*", optional=True)
                    yield req, [os.path.join(root, directory)]
        roots = [self._abs(result_dir(job.job_hash)) for job in jobs]
        for pattern in submission.backward_common_files:
            yield _files.BackwardRequest(".", pattern), roots

    def note_failure(self, job: Job, text: str) -> None:
        """Append ``text`` to ``job``'s last error record (once), where the give-up
        message of the core reads it."""
        fname = names.last_err_file(job.job_hash)
        old = self.read_file(fname) if self.check_file_exists(fname) else ""
        if text not in old:
            self.write_file(fname, (old.rstrip("\n") + "\n" if old.strip() else "") + text + "\n")

    def _keep_backups(self, submission: Submission) -> None:
        for job in submission.belonging_jobs:
            src = self._abs(result_dir(job.job_hash))
            if os.path.isdir(src):
                bring_back(src, os.path.join(self.local_root, BACKUP_DIR, job.job_hash))
