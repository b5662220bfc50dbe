"""HDFSContext: the job root is a directory on HDFS, reached with ``hadoop fs``.

Used with the DistributedShell batch type. The job root is
``<remote_root>/<submission_hash>`` (an HDFS URI or path). Uploading packs every
forward and common file, and every task directory, into one
``<submission_hash>_upload.tgz`` put in the job root; each job's container fetches it.
A job that succeeds puts back ``<submission_hash>_<job_hash>_download.tar.gz``;
downloading fetches those archives, extracts them safely and brings each backward
file into the work base. Commands (the YARN client) run on this machine, in the work
base.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tarfile
import tempfile
from typing import TYPE_CHECKING, Any

from dpdispatcher import _files
from dpdispatcher._archive import safe_extract_tar
from dpdispatcher.base_context import BaseContext, CommandResult, migration_outcome
from dpdispatcher.errors import ContextError, HDFSMissingPathError, RemoteFileNotFoundError
from dpdispatcher.utils.hdfs_cli import HDFS

if TYPE_CHECKING:
    from dpdispatcher.submission import Submission

__all__ = ["HDFS", "HDFSContext", "HDFSMissingPathError", "download_archive", "upload_archive"]


def upload_archive(submission_hash: str) -> str:
    """The name of the archive holding a submission's inputs in its job root."""
    return f"{submission_hash}_upload.tgz"


def download_archive(submission_hash: str, job_hash: str) -> str:
    """The name of the archive a finished job puts back in the job root."""
    return f"{submission_hash}_{job_hash}_download.tar.gz"


class HDFSContext(BaseContext):
    """Job roots on HDFS: ``remote_root/<submission_hash>``, through ``hadoop fs``.

    Examples
    --------
    >>> ctx = HDFSContext(local_root=".", remote_root="hdfs://nn:8020/user/me/runs")
    >>> ctx.init_remote_root
    'hdfs://nn:8020/user/me/runs'
    """

    #: results come back per job (one archive each), not file by file
    downloads_by_job = True
    supports_partial_job_download = False

    def __init__(
        self,
        local_root: str,
        remote_root: str | None = None,
        remote_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(local_root, remote_root, remote_profile, **kwargs)
        self.remote_root = remote_root or ""

    def job_root_for(self, submission: Submission) -> str:
        """``remote_root/<submission_hash>`` (joined with ``/``: it is an HDFS path)."""
        if not self.init_remote_root:
            raise ContextError("machine/remote_root is required for HDFSContext (an HDFS path)")
        return f"{self.init_remote_root.rstrip('/')}/{submission.submission_hash}"

    def migrate_recovery_root(self, old_root: str, new_root: str) -> bool:
        """Rename a job root with ``hadoop fs -mv`` (see
        :meth:`BaseContext.migrate_recovery_root`)."""
        if HDFS.exists(new_root):
            return migration_outcome(11 if HDFS.exists(old_root) else 10, old_root, new_root)
        if not HDFS.exists(old_root):
            return migration_outcome(12, old_root, new_root)
        HDFS.move(old_root, new_root)
        return True

    def _remote_file(self, fname: str) -> str:
        return _hdfs_join(self.remote_root, fname)

    # -- primitives ---------------------------------------------------------------
    def run(
        self, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run ``cmd`` with bash on this machine, in the work base (HDFS runs nothing)."""
        cwd = self.local_root if os.path.isdir(self.local_root) else None
        try:
            proc = subprocess.run(
                ["bash", "-c", cmd], cwd=cwd, capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ContextError(f"could not run {cmd!r}: {err}") from err
        return CommandResult(proc.returncode, proc.stdout, proc.stderr, cmd)

    def write_file(self, fname: str, write_str: str) -> str:
        """Write ``fname`` in the job root (through a local temporary file, then removed)."""
        with tempfile.TemporaryDirectory(prefix="dpdisp-hdfs-") as tmp:
            local = os.path.join(tmp, os.path.basename(fname))
            with open(local, "w", encoding="utf-8") as fh:
                fh.write(write_str)
            HDFS.copy_from_local(local, self._remote_file(fname))
        return self._remote_file(fname)

    def read_file(self, fname: str) -> str:
        """The text of ``fname`` in the job root."""
        return HDFS.read_hdfs_file(self._remote_file(fname)).decode("utf-8")

    def check_file_exists(self, fname: str) -> bool:
        """Whether ``fname`` exists in the job root."""
        return HDFS.exists(self._remote_file(fname))

    def files_exist(self, fnames: list[str]) -> set[str]:
        """The subset of ``fnames`` that exist in the job root (see :meth:`files_exist_in`)."""
        return self.files_exist_in(self.remote_root, fnames)

    def files_exist_in(self, directory: str, fnames: list[str]) -> set[str]:
        """The subset of ``fnames`` that exist in the HDFS ``directory``: one ``-ls`` of it
        for the files directly in it (each hadoop command starts a JVM), one ``-test``
        for the others."""
        top = [f for f in fnames if "/" not in f]
        found: set[str] = set()
        if top:
            try:
                listed = {p.rstrip("/").rsplit("/", 1)[-1] for p in HDFS.list_dir(directory)}
            except HDFSMissingPathError:
                listed = set()
            found = {f for f in top if f in listed}
        return found | {f for f in fnames if "/" in f and HDFS.exists(_hdfs_join(directory, f))}

    def read_files(self, fnames: list[str]) -> dict[str, str]:
        """Read the files of ``fnames`` that exist in the job root."""
        return self.read_files_in(self.remote_root, fnames)

    def read_files_in(self, directory: str, fnames: list[str]) -> dict[str, str]:
        """Read the files of ``fnames`` that exist in the HDFS ``directory``."""
        found = self.files_exist_in(directory, fnames)
        return {
            f: HDFS.read_hdfs_file(_hdfs_join(directory, f)).decode("utf-8")
            for f in fnames
            if f in found
        }

    def clean(self) -> None:
        """Remove the job root from HDFS."""
        if self.remote_root and HDFS.exists(self.remote_root):
            HDFS.remove(self.remote_root)

    # -- upload ---------------------------------------------------------------------
    def upload(self, submission: Submission, dereference: bool = True) -> None:
        """Pack the forward and common files (refusing missing ones) and put them on HDFS."""
        self._put_files(_files.forward_files(submission, self.local_root), dereference=dereference)

    def _put_files(self, files: list[str], dereference: bool = True) -> None:
        """Put ``files`` (relative to the work base) and every task directory, as one
        ``<submission_hash>_upload.tgz``, into a fresh job root."""
        assert self.submission is not None, "bind_submission() first"
        name = upload_archive(self.submission.submission_hash)
        with tempfile.TemporaryDirectory(prefix="dpdisp-hdfs-") as tmp:
            archive = os.path.join(tmp, name)
            with tarfile.open(archive, "w:gz", dereference=dereference) as tar:
                for directory in _files.task_dirs(self.submission):
                    if directory != ".":
                        tar.add(
                            os.path.join(self.local_root, directory), directory, recursive=False
                        )
                for rel in files:
                    tar.add(os.path.join(self.local_root, rel), rel)
            HDFS.mkdir(self.remote_root)
            HDFS.copy_from_local(archive, self.remote_root)

    # -- download -------------------------------------------------------------------
    def download(
        self,
        submission: Submission,
        check_exists: bool = False,
        mark_failure: bool = True,
        back_error: bool = False,
    ) -> None:
        """Fetch every job's result archive, then bring each backward file into the work base.

        A missing archive or file is an error (:class:`HDFSMissingPathError`,
        :class:`~dpdispatcher.errors.RemoteFileNotFoundError`) unless ``check_exists``.
        """
        tmp = tempfile.mkdtemp(prefix=".dpdisp-hdfs-", dir=self.local_root)
        try:
            extracted = self._fetch_results(submission, tmp, check_exists)
            missing = _files.bring_back_results(
                submission, extracted, self.local_root, check_exists, mark_failure, back_error
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if missing:
            raise RemoteFileNotFoundError(
                f"backward files not found in the result archives of {self.remote_root}: "
                f"{', '.join(missing)}"
            )

    def _fetch_results(self, submission: Submission, tmp: str, check_exists: bool) -> str:
        pattern = self._remote_file(f"{submission.submission_hash}_*_download.tar.gz")
        try:
            HDFS.copy_to_local(pattern, tmp)
        except HDFSMissingPathError:
            if not check_exists:
                raise
        extracted = os.path.join(tmp, "extracted")
        for archive in sorted(glob.glob(os.path.join(tmp, "*_download.tar.gz"))):
            with open(archive, "rb") as fh:
                safe_extract_tar(fh, extracted)
        return extracted


def _hdfs_join(directory: str, fname: str) -> str:
    """``fname`` in the HDFS ``directory`` (joined with ``/``)."""
    return f"{directory.rstrip('/')}/{fname}"
