"""What the cloud backend keeps on disk: its file names and the job id record.

Every name is relative to the local staging job root of the submission (see
:mod:`dpdispatcher.contexts.dp_cloud_server_context`); each is produced here and
nowhere else.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dpdispatcher.job import Job
    from dpdispatcher.submission import Submission

__all__ = [
    "BACKUP_DIR",
    "CLOUD_DIR",
    "OSS_NAMESPACE",
    "CloudStaging",
    "JobRecord",
    "delivered_file",
    "group_id_file",
    "job_zip_file",
    "result_dir",
    "result_of_file",
    "result_zip_file",
]

#: directory of the staging root holding the cloud's own files
CLOUD_DIR = ".dpcloud"
#: folder of the work base that keeps whole job results with ``keep_backup``
BACKUP_DIR = "backup"
#: namespace of the deterministic upload paths (one per submission, job and attempt)
OSS_NAMESPACE = uuid.UUID("5d0f4c7e-3a51-4a8e-9d53-0c1f3e9b2a71")


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


def delivered_file(job_hash: str) -> str:
    """Records which cloud job's backward files went home already (and what was missing)."""
    return f"{CLOUD_DIR}/{job_hash}_delivered"


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
    #: OpenAPI: the id of the job created (``/openapi/v1/job/create``) but maybe not added
    created_id: str | None = None

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

        return cls(
            str(data["job_hash"]),
            str(data["oss_path"]),
            opt("job_group_id"),
            opt("job_id"),
            opt("created_id"),
        )


@runtime_checkable
class CloudStaging(Protocol):
    """What the cloud machines need of their context (the staging root and the service).

    :class:`~dpdispatcher.contexts.dp_cloud_server_context.DpCloudServerContext` and
    the OpenAPI context provide it; the machines check for it instead of importing a
    context module.
    """

    program_id: int | str
    input_data: dict[str, Any]
    ignore_exit_code: bool
    submission: Submission | None
    log_offsets: dict[str, int]

    @property
    def client(self) -> Any:
        """The service's client."""

    def oss_path(self, job: Job) -> str:
        """Object key of ``job``'s archive for this attempt."""

    def read_record(self, job_hash: str) -> JobRecord | None:
        """The job id record of ``job_hash``."""

    def write_record(self, record: JobRecord) -> None:
        """Persist a job id record."""

    def group_id(self) -> str | None:
        """The submission's job group, once known."""

    def set_group_id(self, group_id: str | None) -> None:
        """Remember the submission's job group."""

    def upload_job(self, job: Job, oss_path: str) -> None:
        """Zip and upload ``job``'s files."""

    def forget_outcome(self, job: Job) -> None:
        """Drop the outcome of an earlier attempt."""

    def fetch_result(self, job: Job, result_url: str) -> None:
        """Download and extract ``job``'s result."""

    def deliver(self, job: Job) -> None:
        """Bring ``job``'s backward files into the work base."""

    def note_failure(self, job: Job, text: str) -> None:
        """Add ``text`` to the last error recorded for ``job``."""
