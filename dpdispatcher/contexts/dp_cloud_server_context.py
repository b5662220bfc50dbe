"""DpCloudServerContext: files of jobs run on the DP Cloud Server (Bohrium / Lebesgue).

There is no remote shell on the cloud. Everything the core writes "in the job root"
(scripts, the submission state, the job id records) goes to a local **staging job
root**: ``remote_root/<submission_hash>`` when ``remote_root`` is given, otherwise
``<local_root>/<work_base>/.dpdispatcher/<submission_hash>``. ``run``, ``write_file``,
``read_file`` and ``check_file_exists`` work there.

Per job, one zip ``<job_hash>.zip`` (the job script, its ``.run`` body, the common
files, the tasks' forward files, and the task tags of tasks that already succeeded
in an earlier attempt) is uploaded to ``program/<program_id>/<uuid>/<job_hash>.zip``
when the job is submitted. When the service reports the job ended, its result zip
is downloaded and extracted safely into ``.dpcloud/results/<job_hash>/`` of the
staging root (results of successive attempts are merged there); the job tag and the
last error found in it are copied to the staging root, so the finish-tag rule and
the give-up message of the core work unchanged. :meth:`download` then moves the
backward files into the work base.

Layout of the staging root (besides the core's files)::

    .dpcloud/<job_hash>.zip           archive being uploaded (removed afterwards)
    .dpcloud/<job_hash>.result.zip    result being downloaded (removed afterwards)
    .dpcloud/results/<job_hash>/      extracted results of the job
    .dpcloud/<job_hash>_result_of     id of the cloud job whose result is extracted
    .dpcloud/job_group_id             the job group shared by the submission's jobs

Examples
--------
>>> from dpdispatcher.base_context import BaseContext
>>> ctx = BaseContext.load_from_dict({"context_type": "Bohrium", "local_root": ".",
...     "remote_profile": {"email": "me@example.com", "password": "secret",
...                        "program_id": 1234, "input_data": {"job_type": "container"}}})
>>> "password" in ctx.public_profile()
False
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher import _files
from dpdispatcher._script import names
from dpdispatcher.contexts._local import LocalShellContext, remove_path
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, RemoteFileNotFoundError

if TYPE_CHECKING:
    from dpdispatcher.dpcloudserver import Client, CloudAPIError
    from dpdispatcher.job import Job
    from dpdispatcher.submission import Submission

__all__ = ["DpCloudServerContext", "JobRecord", "describe_cloud_error"]

#: directory of the staging root holding the cloud's own files
CLOUD_DIR = ".dpcloud"
#: folder of the work base that keeps whole job results with ``keep_backup``
BACKUP_DIR = "backup"
#: namespace of the deterministic upload paths (one per submission, job and attempt)
_OSS_NAMESPACE = uuid.UUID("5d0f4c7e-3a51-4a8e-9d53-0c1f3e9b2a71")


# -- the names of the cloud's own files (each produced here and nowhere else) ----------
def job_zip_file(job_hash: str) -> str:
    """The archive of a job being uploaded, relative to the staging root."""
    return f"{CLOUD_DIR}/{job_hash}.zip"


def result_zip_file(job_hash: str) -> str:
    """A job's result archive being downloaded, relative to the staging root."""
    return f"{CLOUD_DIR}/{job_hash}.result.zip"


def result_dir(job_hash: str) -> str:
    """Where a job's results are extracted, relative to the staging root."""
    return f"{CLOUD_DIR}/results/{job_hash}"


def result_of_file(job_hash: str) -> str:
    """Holds the id of the cloud job whose result is in :func:`result_dir`."""
    return f"{CLOUD_DIR}/{job_hash}_result_of"


def group_id_file() -> str:
    """Holds the job group id shared by the jobs of the submission."""
    return f"{CLOUD_DIR}/job_group_id"


# -- the job id record ------------------------------------------------------------------
@dataclass(frozen=True)
class JobRecord:
    """What ``<job_hash>_job_id`` holds for a cloud job (one line of JSON).

    It is written *before* the job is created with ``job_id`` None (the job is then
    "pending": the service may or may not have created it) and again as soon as the
    service answered. ``oss_path`` is unique to one attempt of one job, so a pending
    record can be resolved by looking the job up on the service.
    """

    job_hash: str
    oss_path: str
    job_group_id: str | None = None
    job_id: str | None = None

    def dumps(self) -> str:
        """The record as one line of JSON."""
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> JobRecord | None:
        """Parse a record; None when ``text`` is not one."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or not data.get("job_hash") or not data.get("oss_path"):
            return None

        def opt(key: str) -> str | None:
            value = data.get(key)
            return None if value in (None, "") else str(value)

        return cls(str(data["job_hash"]), str(data["oss_path"]), opt("job_group_id"), opt("job_id"))


# -- what the user must fix -------------------------------------------------------------
_LOGIN_FIELDS = (
    "remote_profile/email (or remote_profile/phone) and remote_profile/password, "
    "or the BOHR_TICKET environment variable"
)
_FIX_BY_CODE = {
    "2100": _LOGIN_FIELDS,
    "2105": _LOGIN_FIELDS,
    "2104": "remote_profile/password",
    "2102": "remote_profile/email or remote_profile/phone",
    "2103": "remote_profile/program_id (a project your account belongs to)",
    "2101": "remote_profile/program_id and remote_profile/input_data",
    "2002": "remote_profile/input_data (job_type, image_name, machine type, ...)",
}
_QUOTA_WORDS = ("quota", "balance", "insufficient", "exceed", "limit")


def describe_cloud_error(err: CloudAPIError, action: str) -> CloudAPIError:
    """The same error with ``action`` and the remote_profile field to fix in its text.

    The client already removed secrets from the service's messages; nothing of the
    remote profile is added here besides field names.
    """
    from dpdispatcher.dpcloudserver import CloudAuthError

    fix = _FIX_BY_CODE.get(err.code or "")
    text = str(err)
    if fix is None and any(word in text.lower() for word in _QUOTA_WORDS):
        fix = "the quota or balance of the program named by remote_profile/program_id"
    if fix is None and isinstance(err, CloudAuthError):
        fix = _LOGIN_FIELDS
    message = f"{action} failed: {text}"
    if fix:
        message += f" -- what to fix: {fix}"
    kind = CloudAuthError if isinstance(err, CloudAuthError) else type(err)
    return kind(message, code=err.code, http_status=err.http_status, explanation=err.explanation)


def is_transient(err: CloudAPIError) -> bool:
    """Whether a cloud error may go away by itself (no answer, 429 or 5xx)."""
    from dpdispatcher.dpcloudserver import CloudAuthError

    if isinstance(err, CloudAuthError):
        return False
    return err.http_status is None or err.http_status == 429 or err.http_status >= 500


class DpCloudServerContext(LocalShellContext):
    """Files of the jobs of the DP Cloud Server (Bohrium): zipped, uploaded, fetched.

    The ``remote_profile`` holds the credentials (``email`` or ``phone`` and
    ``password``; or none of them with the ``BOHR_TICKET`` environment variable), the
    ``program_id`` jobs are billed to, and ``input_data`` (machine, image, job type...)
    passed camel-cased to the service. ``password`` is never persisted, hashed or
    logged. See :meth:`machine_subfields` for every key.
    """

    #: the suffix-less forms follow the rule that contexts are found without "Context"
    alias = ("BohriumContext", "LebesgueContext")
    secret_keys = ("password",)
    #: extra keyword arguments of :class:`~dpdispatcher.dpcloudserver.Client`
    #: (timeouts, retries, backoff); tests lower the backoff here
    client_options: ClassVar[dict[str, Any]] = {}
    #: archives of this many bytes or more are uploaded by OSS multipart upload
    multipart_threshold: ClassVar[int] = 10 * 1024 * 1024
    #: size of each multipart part
    part_size: ClassVar[int] = 8 * 1024 * 1024

    def __init__(
        self,
        local_root: str,
        remote_root: str | None = None,
        remote_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        profile = dict(remote_profile or {})
        if "project_id" in profile and "program_id" not in profile:
            profile["program_id"] = profile.pop("project_id")
        super().__init__(local_root, remote_root, profile, **kwargs)
        program_id = profile.get("program_id")
        if program_id in (None, "") or isinstance(program_id, bool):
            raise ConfigurationError(
                "machine/remote_profile/program_id is required for DpCloudServerContext "
                "(the Bohrium project the jobs are billed to; alias project_id)"
            )
        if not isinstance(profile.get("input_data"), dict):
            raise ConfigurationError(
                "machine/remote_profile/input_data is required for DpCloudServerContext: a "
                "dict of job settings (job_type, image_name, scass_type/machine_type, ...)"
            )
        self.program_id: int | str = program_id
        self.input_data: dict[str, Any] = dict(profile["input_data"])
        self.ignore_exit_code = bool(profile.get("ignore_exit_code", True))
        self.keep_backup = bool(profile.get("keep_backup", False))
        self._client: Client | None = None
        self._client_lock = threading.Lock()

    @classmethod
    def machine_subfields(cls) -> list[Any]:
        """The ``remote_profile`` of the cloud."""
        from dargs import Argument

        doc_input = (
            "Settings of each cloud job, passed to the service with camel-cased keys "
            "(job_type, job_name, log_file, image_name, scass_type or machine_type, "
            "platform, disk_size, ...). cmd, ossPath, projectId, outFiles and logFiles are "
            "set by dpdispatcher."
        )
        fields = [
            Argument("email", str, optional=True, doc="Login email of the cloud account."),
            Argument("phone", str, optional=True, doc="Login phone number (instead of email)."),
            Argument("username", str, optional=True, doc="Login name of older accounts."),
            Argument(
                "password",
                str,
                optional=True,
                doc="Password of the account; never persisted, hashed or logged. Leave "
                "out the credentials to use the BOHR_TICKET environment variable instead.",
            ),
            Argument(
                "program_id",
                [int, str],
                alias=["project_id"],
                doc="The program (project) the jobs are billed to.",
            ),
            Argument(
                "ignore_exit_code",
                bool,
                optional=True,
                default=True,
                doc="Judge an ended job by its finish tag only. False: a non-zero exit code "
                "makes the job failed (and resubmitted) even if all tasks succeeded.",
            ),
            Argument(
                "keep_backup",
                bool,
                optional=True,
                default=False,
                doc="Keep each job's whole extracted result (logs, tags and files not "
                "asked for) in backup/<job_hash>/ of the work base. False: only the "
                "backward files are kept.",
            ),
            Argument("input_data", dict, doc=doc_input),
        ]
        return [
            Argument(
                "remote_profile",
                dict,
                fields,
                doc="Account, program and job settings of the DP Cloud Server (Bohrium).",
            )
        ]

    # -- the service ------------------------------------------------------------------
    @property
    def client(self) -> Client:
        """The HTTP/OSS client (created, not yet logged in, on first use)."""
        with self._client_lock:
            if self._client is None:
                from dpdispatcher.dpcloudserver import Client

                profile = self.remote_profile
                self._client = Client(
                    email=profile.get("email"),
                    phone=profile.get("phone"),
                    username=profile.get("username"),
                    password=profile.get("password"),
                    **self.client_options,
                )
            return self._client

    def check_login(self) -> None:
        """Log in (or check the ticket) now, so a bad password fails before any job."""
        from dpdispatcher.dpcloudserver import CloudAPIError

        try:
            self.client.sts_token()
        except CloudAPIError as err:
            raise describe_cloud_error(err, "logging in to the cloud service") from err

    def close(self) -> None:
        """Close the HTTP session."""
        if self._client is not None:
            self._client.close()

    # -- where things are -------------------------------------------------------------
    def job_root_for(self, submission: Submission) -> str:
        """The local staging job root (see the module documentation)."""
        if self.init_remote_root:
            return os.path.join(self.init_remote_root, submission.submission_hash)
        work_base = os.path.join(self.init_local_root, submission.work_base)
        return os.path.join(work_base, ".dpdispatcher", submission.submission_hash)

    def _submission(self) -> Submission:
        if self.submission is None:
            raise ConfigurationError("DpCloudServerContext: no submission is bound")
        return self.submission

    def oss_path(self, job: Job) -> str:
        """Object key of ``job``'s archive, unique to this submission, job and attempt."""
        seed = f"{self._submission().submission_hash}/{job.job_hash}/{job.fail_count}"
        return f"program/{self.program_id}/{uuid.uuid5(_OSS_NAMESPACE, seed)}/{job.job_hash}.zip"

    # -- records ----------------------------------------------------------------------
    def read_record(self, job_hash: str) -> JobRecord | None:
        """The job id record of ``job_hash``, if any."""
        fname = names.job_id_file(job_hash)
        return JobRecord.loads(self.read_file(fname)) if self.check_file_exists(fname) else None

    def write_record(self, record: JobRecord) -> None:
        """Persist a job id record (atomically)."""
        self.write_file(names.job_id_file(record.job_hash), record.dumps())

    def group_id(self) -> str | None:
        """The job group of this submission's cloud jobs, once the first one exists."""
        fname = group_id_file()
        if not self.check_file_exists(fname):
            return None
        return self.read_file(fname).strip() or None

    def set_group_id(self, group_id: str | None) -> None:
        """Remember the job group of this submission (the first answer wins)."""
        if group_id and self.group_id() is None:
            self.write_file(group_id_file(), f"{group_id}\n")

    # -- upload -----------------------------------------------------------------------
    def upload(self, submission: Submission) -> None:
        """Prepare the staging root and log in; archives are sent when jobs are submitted.

        The archive of a job holds its script, which the core writes after this call,
        and the tags of its tasks that succeeded in earlier attempts, so it is built
        per submission attempt by :meth:`upload_job`.
        """
        os.makedirs(os.path.join(self.remote_root, CLOUD_DIR), exist_ok=True)
        self.check_login()

    def upload_job(self, job: Job, oss_path: str) -> None:
        """Zip ``job``'s files and upload the archive to ``oss_path``.

        Raises :class:`~dpdispatcher.dpcloudserver.CloudAPIError` when the storage fails.
        """
        archive = self._abs(job_zip_file(job.job_hash))
        os.makedirs(os.path.dirname(archive), exist_ok=True)
        count = write_zip(archive, self._job_entries(job))
        try:
            self.client.upload_file(
                archive,
                oss_path,
                multipart_threshold=self.multipart_threshold,
                part_size=self.part_size,
            )
        finally:
            os.unlink(archive)
        dlog.debug("uploaded %d entries of job %s to %s", count, job.job_hash, oss_path)

    def _job_entries(self, job: Job) -> dict[str, str | None]:
        """``{name in the archive: source path, or None for a directory}``."""
        sub = self._submission()
        base = self.local_root
        entries: dict[str, str | None] = {}
        for fname in (names.script_file(job.job_hash), names.run_file(job.job_hash)):
            entries[fname] = self._abs(fname)
        common = _files.expand_local(
            base, sub.forward_common_files, "submission/forward_common_files"
        )
        for rel in common:
            entries[rel] = os.path.join(base, rel)
        done = self._abs(result_dir(job.job_hash))
        for task in job.job_task_list:
            tdir = os.path.normpath(task.task_work_path)
            if tdir != ".":
                entries.setdefault(tdir, None)
            key = f"task {task.task_work_path!r}/forward_files"
            for rel in _files.expand_local(os.path.join(base, tdir), task.forward_files, key):
                arc = os.path.normpath(os.path.join(tdir, rel))
                entries[arc] = os.path.join(base, arc)
            tag = os.path.normpath(os.path.join(tdir, names.task_tag_file(task.task_hash)))
            if os.path.isfile(os.path.join(done, tag)):
                entries[tag] = os.path.join(done, tag)  # succeeded before: the script skips it
        return entries

    # -- results ----------------------------------------------------------------------
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

        An archive with an absolute path, a ``..`` component or a link leading out is
        refused as a whole (:class:`~dpdispatcher.errors.UnsafeArchiveError`) and nothing
        of it is extracted. The job tag and last error found in it are copied to the
        staging root, where the core looks for them. A failed download raises
        :class:`~dpdispatcher.dpcloudserver.CloudAPIError`.
        """
        from dpdispatcher.dpcloudserver.zip_file import unzip_file
        from dpdispatcher.errors import UnsafeArchiveError

        if self.result_fetched(job):
            return
        archive = self._abs(result_zip_file(job.job_hash))
        what = f"the result of job {job.job_hash} (cloud job {job.job_id})"
        self.client.download_result(result_url, archive)
        target = self._abs(result_dir(job.job_hash))
        try:
            unzip_file(archive, target)
        except UnsafeArchiveError as err:
            raise UnsafeArchiveError(f"refused {what}, nothing was extracted: {err}") from err
        except zipfile.BadZipFile as err:
            raise UnsafeArchiveError(f"{what} is not a valid zip archive: {err}") from err
        finally:
            os.unlink(archive)
        for fname in (names.job_tag_file(job.job_hash), names.last_err_file(job.job_hash)):
            src = os.path.join(target, fname)
            if os.path.isfile(src) and not os.path.islink(src):
                shutil.copyfile(src, self._abs(fname))
        self.write_file(result_of_file(job.job_hash), f"{job.job_id}\n")

    def download(
        self,
        submission: Submission,
        check_exists: bool = False,
        mark_failure: bool = True,
        back_error: bool = False,
    ) -> None:
        """Bring the backward files of every job from its extracted result to the work base.

        A job whose result is not extracted yet (e.g. after a restart) is fetched first.
        Missing files raise :class:`~dpdispatcher.errors.RemoteFileNotFoundError` at the
        end, unless ``check_exists`` (with ``mark_failure``, an empty
        ``tag_failure_download_*`` marker is written instead). ``back_error`` also
        brings ``error*`` files. With ``keep_backup`` the whole result of each job is
        then kept in ``backup/<job_hash>/`` of the work base.
        """
        for job in submission.belonging_jobs:
            if job.job_id and not self.result_fetched(job):
                detail = self.client.job_detail(job.job_id)
                if detail.result_url:
                    self.fetch_result(job, detail.result_url)
        missing: list[str] = []
        for req, sources in self._requests(submission, back_error):
            local_dir = os.path.join(self.local_root, req.directory)
            found = [(src, rel) for src in sources for rel in _files.glob_rel(src, req.pattern)]
            if not found:
                report = _files.unmatched(req, local_dir, check_exists, mark_failure)
                missing += [report] if report else []
            for src, rel in found:
                _bring_back(os.path.join(src, rel), os.path.join(local_dir, rel), self.keep_backup)
        if self.keep_backup:
            self._keep_backups(submission)
        if missing:
            raise RemoteFileNotFoundError(
                "backward files not found in the results of the cloud jobs: "
                f"{', '.join(missing)} (set check_exists=True to tolerate missing files; "
                f"keep_backup=True keeps every job's whole result in {BACKUP_DIR}/)"
            )

    def _requests(
        self, submission: Submission, back_error: bool
    ) -> Iterator[tuple[_files.BackwardRequest, list[str]]]:
        """Each backward request with the result directories to look in."""
        roots = {
            job.job_hash: self._abs(result_dir(job.job_hash)) for job in submission.belonging_jobs
        }
        for job in submission.belonging_jobs:
            for task in job.job_task_list:
                directory = os.path.normpath(task.task_work_path)
                src = [os.path.join(roots[job.job_hash], directory)]
                for pattern in task.backward_files:
                    yield _files.BackwardRequest(directory, pattern), src
                if back_error:
                    yield _files.BackwardRequest(directory, "error*", optional=True), src
        for pattern in submission.backward_common_files:
            yield _files.BackwardRequest(".", pattern), list(roots.values())

    def _keep_backups(self, submission: Submission) -> None:
        for job in submission.belonging_jobs:
            src = self._abs(result_dir(job.job_hash))
            if os.path.isdir(src):
                dst = os.path.join(self.local_root, BACKUP_DIR, job.job_hash)
                remove_path(dst)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.move(src, dst)

    def clean(self) -> None:
        """Remove the staging root (and ``.dpdispatcher`` of the work base if left empty)."""
        root = self.remote_root

        def remove() -> None:
            shutil.rmtree(root, ignore_errors=True)
            parent = os.path.dirname(root)
            if not self.init_remote_root and os.path.basename(parent) == ".dpdispatcher":
                with contextlib.suppress(OSError):  # other submissions still use it
                    os.rmdir(parent)

        if self.clean_asynchronously:
            threading.Thread(target=remove, daemon=True).start()
        else:
            remove()


def _bring_back(src: str, dst: str, copy: bool) -> None:
    """Move (or copy, keeping the source for the backup) a result; keep a local file."""
    if os.path.lexists(dst):
        dlog.debug("%s already present locally; keeping it", dst)
        return
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    if not copy:
        shutil.move(src, dst)
    elif os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def write_zip(archive: str, entries: dict[str, str | None]) -> int:
    """Write ``{name: source path or None (a directory)}`` into a zip; return the count.

    Directories are recursed and symbolic links in the sources followed (the archive
    holds their content; a link loop is not descended twice).
    """
    written: set[str] = set()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, src in sorted(entries.items()):
            if src is None or os.path.isdir(src):
                _add_dir(zf, arcname, src, written)
            elif arcname not in written:
                zf.write(src, arcname)
                written.add(arcname)
    return len(written)


def _add_dir(zf: zipfile.ZipFile, arcname: str, src: str | None, written: set[str]) -> None:
    if arcname + "/" not in written:
        zf.writestr(_dir_info(arcname), b"")
        written.add(arcname + "/")
    if src is None:
        return
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        rel = os.path.relpath(dirpath, src)
        here = arcname if rel == "." else f"{arcname}/{rel}"
        if here + "/" not in written:
            zf.writestr(_dir_info(here), b"")
            written.add(here + "/")
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if f"{here}/{name}" not in written and os.path.exists(full):
                zf.write(full, f"{here}/{name}")
                written.add(f"{here}/{name}")


def _dir_info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname + "/")
    info.external_attr = (0o40755 << 16) | 0x10  # a directory, rwxr-xr-x (MS-DOS dir bit)
    return info
