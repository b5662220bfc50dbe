"""DpCloudServerContext: files of jobs run on the DP Cloud Server (Bohrium / Lebesgue).

There is no remote shell on the cloud. Everything the core writes "in the job root"
(scripts, the submission state, the job id records) goes to a local **staging job
root**, ``<local_root>/<work_base>/.dpdispatcher/<submission_hash>``. A ``remote_root``
is ignored, as dpdispatcher 1.1.0 ignores it for the cloud (dflow passes its cluster's
``remote_root`` to Bohrium steps too). ``run``, ``write_file``, ``read_file`` and
``check_file_exists`` work there.

Per job, one zip ``<job_hash>.zip`` (the job script, its ``.run`` body, the common
files, the tasks' forward files, and the task tags of tasks that already succeeded
in an earlier attempt) is uploaded to ``program/<program_id>/<uuid>/<job_hash>.zip``
when the job is submitted. When the service reports the job ended, its result zip
is downloaded and extracted safely into ``.dpcloud/results/<job_hash>/`` of the
staging root (results of successive attempts are merged there); the job tag and the
last error found in it are copied to the staging root, so the finish-tag rule and
the give-up message of the core work unchanged. A finished job's backward files are
moved into the work base at once (:meth:`~._cloud_results.CloudResults.deliver`);
:meth:`download` brings the rest (common files, anything not yet home).

Layout of the staging root (besides the core's files)::

    .dpcloud/<job_hash>.zip           archive being uploaded (removed afterwards)
    .dpcloud/<job_hash>.result.zip    result being downloaded (removed afterwards)
    .dpcloud/results/<job_hash>/      extracted results of the job
    .dpcloud/<job_hash>_result_of     id of the cloud job whose result is extracted
    .dpcloud/<job_hash>_delivered     the cloud job whose backward files went home
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
import os
import shutil
import threading
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher import _files
from dpdispatcher._archive_write import write_zip
from dpdispatcher._script import names
from dpdispatcher.contexts._cloud_results import CloudResults
from dpdispatcher.contexts._local import LocalShellContext
from dpdispatcher.dlog import dlog
from dpdispatcher.dpcloudserver._models import describe_cloud_error
from dpdispatcher.dpcloudserver._records import (
    CLOUD_DIR,
    OSS_NAMESPACE,
    JobRecord,
    group_id_file,
    job_zip_file,
    result_dir,
)
from dpdispatcher.errors import ConfigurationError

if TYPE_CHECKING:
    from dpdispatcher.dpcloudserver import Client
    from dpdispatcher.job import Job
    from dpdispatcher.submission import Submission

__all__ = ["BohriumContext", "DpCloudServerContext", "JobRecord", "LebesgueContext"]


class DpCloudServerContext(CloudResults, LocalShellContext):
    """Files of the jobs of the DP Cloud Server (Bohrium): zipped, uploaded, fetched.

    The ``remote_profile`` holds the credentials (``email`` or ``phone`` and
    ``password``; or none of them with the ``BOHR_TICKET`` environment variable), the
    ``program_id`` jobs are billed to, and ``input_data`` (machine, image, job type...)
    passed camel-cased to the service. ``password`` is never persisted, hashed or
    logged. See :meth:`machine_subfields` for every key.
    """

    #: the suffix-less forms follow the rule that contexts are found without "Context"
    alias: ClassVar[tuple[str, ...]] = ("BohriumContext", "LebesgueContext")
    secret_keys: ClassVar[tuple[str, ...]] = ("password",)
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
        super().__init__(local_root, remote_root, profile, **kwargs)
        program_id, input_data = self.job_settings(profile)
        self.program_id: int | str = program_id
        self.input_data: dict[str, Any] = input_data
        self.ignore_exit_code = bool(profile.get("ignore_exit_code", True))
        self.keep_backup = bool(profile.get("keep_backup", False))
        self._client: Client | None = None
        self._client_lock = threading.Lock()
        #: bytes of each cloud job's log already shown (``input_data.output_log``)
        self.log_offsets: dict[str, int] = {}

    def job_settings(self, profile: dict[str, Any]) -> tuple[int | str, dict[str, Any]]:
        """The project the jobs are billed to and the job settings, from the profile."""
        program_id = profile.get("program_id", profile.get("project_id"))
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
        return program_id, dict(profile["input_data"])

    @classmethod
    def machine_subfields(cls) -> list[Any]:
        """The ``remote_profile`` of the cloud."""
        from dargs import Argument

        return [
            Argument(
                "remote_profile",
                dict,
                _profile_fields(),
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
    def append_file(self, fname: str, text: str) -> bool:
        """Not used here (False): every state change is a full state write, as for the
        other remote backends (see :mod:`dpdispatcher._journal`)."""
        return False

    def job_root_for(self, submission: Submission) -> str:
        """The local staging job root in the work base (``remote_root`` is ignored)."""
        work_base = os.path.join(self.init_local_root, submission.work_base)
        return os.path.join(work_base, ".dpdispatcher", submission.submission_hash)

    def _submission(self) -> Submission:
        if self.submission is None:
            raise ConfigurationError("DpCloudServerContext: no submission is bound")
        return self.submission

    def oss_path(self, job: Job) -> str:
        """Object key of ``job``'s archive, unique to this submission, job and attempt."""
        seed = f"{self._submission().submission_hash}/{job.job_hash}/{job.fail_count}"
        return f"program/{self.program_id}/{uuid.uuid5(OSS_NAMESPACE, seed)}/{job.job_hash}.zip"

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
            tag = names.task_tag_path(task.task_work_path, task.task_hash)
            if os.path.isfile(os.path.join(done, tag)):
                entries[tag] = os.path.join(done, tag)  # succeeded before: the script skips it
        return entries

    def clean(self) -> None:
        """Remove the staging root (and ``.dpdispatcher`` of the work base if left empty)."""
        root = self.remote_root

        def remove() -> None:
            shutil.rmtree(root, ignore_errors=True)
            parent = os.path.dirname(root)
            if os.path.basename(parent) == ".dpdispatcher":
                with contextlib.suppress(OSError):  # other submissions still use it
                    os.rmdir(parent)

        if self.clean_asynchronously:
            threading.Thread(target=remove, daemon=True).start()
        else:
            remove()


#: the names dpdispatcher 1.1.0 gives this context
BohriumContext = LebesgueContext = DpCloudServerContext


def _profile_fields() -> list[Any]:
    """The fields of the cloud's ``remote_profile``: account, program, job settings."""
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
    return fields
