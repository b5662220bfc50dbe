"""OpenAPI: jobs run on Bohrium through its OpenAPI (``bohrium-sdk``, extra ``bohrium``).

Use it with :class:`~dpdispatcher.contexts.openapi_context.OpenAPIContext`. Everything
but the service calls is the :class:`~dpdispatcher.machines.dp_cloud_server.DpCloudServer`
machinery (script, finish tag, results, give-up note).

Submitting a job
    ``POST /openapi/v1/job/create`` gives the job id before anything runs; it is
    recorded at once as *created* (``created_id`` of the ``<job_hash>_job_id``
    record), then the archive goes to ``<storePath><job_hash>.zip`` and
    ``POST /openapi/v2/job/add`` starts the job; the record then holds the job id. A
    dispatcher that died in between finds the record on restart: if the service
    knows the created job as a job, it is adopted; otherwise it never started (a
    created job runs only once added) and a new one is created, so a rerun never runs
    a job twice.
Status
    ``GET /openapi/v1/job/{id}`` per job, the status codes of DpCloudServer, except
    that -1 counts as ended (judged by the finish tag) whenever ``ignore_exit_code``
    is true, as in dpdispatcher 1.1.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher._script import quoting
from dpdispatcher.dpcloudserver._records import JobRecord
from dpdispatcher.errors import ConfigurationError
from dpdispatcher.machines.dp_cloud_server import DpCloudServer
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.contexts.openapi_context import OpenAPIContext
    from dpdispatcher.dpcloudserver import CloudAPIError, JobDetail
    from dpdispatcher.job import Job

__all__ = ["OpenAPI", "openapi_add_body"]


def openapi_add_body(
    *,
    job_id: int,
    project_id: int,
    object_key: str,
    cmd: str,
    out_files: list[str],
    log_files: list[str],
    input_data: dict[str, Any],
) -> dict[str, Any]:
    """The body of ``POST /openapi/v2/job/add`` (keys and order of 1.1.0's request)."""
    return {
        "ossPath": [object_key],
        "inputFileType": 3,
        "inputFileMethod": 1,
        "jobType": input_data.get("job_type", "container"),
        "jobName": input_data.get("job_name", "DP-GEN"),
        "projectId": project_id,
        "scassType": input_data.get("scass_type", ""),
        "cmd": cmd,
        "outFiles": out_files,
        "platform": input_data.get("platform", "ali"),
        "imageName": input_data.get("image_name", ""),
        "logFiles": log_files,
        "jobId": job_id,
    }


class OpenAPI(DpCloudServer):
    """Bohrium through the OpenAPI (see the module documentation)."""

    alias: ClassVar[tuple[str, ...]] = ()
    context_name = "OpenAPIContext"

    @property
    def openapi(self) -> OpenAPIContext:
        """The bound OpenAPIContext."""
        from dpdispatcher.contexts.openapi_context import OpenAPIContext

        ctx = self.cloud
        if not isinstance(ctx, OpenAPIContext):
            raise ConfigurationError(
                f"batch_type OpenAPI needs context_type OpenAPIContext, not {type(ctx).__name__}"
            )
        return ctx

    def submit_prepared(self, job: Job) -> str:
        """Create the job, upload its archive, add it; record each step (see above)."""
        ctx = self.openapi
        attempt = ctx.oss_path(job)
        adopted = self._adopt_or_forget(job, attempt, "added")
        if adopted is not None:
            return adopted
        group = ctx.group_id() if ctx.grouped else None
        created = self._call(
            f"creating the cloud job of job {job.job_hash}",
            lambda: ctx.client.create_job(
                str(ctx.input_data.get("job_name", "DP-GEN")), int(group) if group else None
            ),
        )
        job_id = quoting.job_id(str(created["jobId"]))
        group_id = str(created.get("jobGroupId") or "") or None
        ctx.write_record(JobRecord(job.job_hash, attempt, group, None, job_id))
        if ctx.grouped:
            ctx.set_group_id(group_id)
        key = f"{created['storePath']}{job.job_hash}.zip"
        store_host = created.get("storeHost") or None
        self._call(
            f"uploading the files of job {job.job_hash}",
            lambda: ctx.upload_to(job, key, str(created.get("token", "")), store_host),
        )
        body = openapi_add_body(
            job_id=int(job_id),
            project_id=int(ctx.program_id),
            object_key=key,
            cmd=self.job_command(job),
            out_files=self.out_files(job),
            log_files=self.log_files(job),
            input_data=ctx.input_data,
        )
        self._call(
            f"adding the cloud job of job {job.job_hash}", lambda: ctx.client.insert_job(body)
        )
        ctx.write_record(JobRecord(job.job_hash, attempt, group_id, job_id))
        return job_id

    def recorded_job_id(self, raw_output: str) -> str | None:
        """The job id of a record; a *created* record is checked on the service."""
        record = JobRecord.loads(raw_output)
        if record is None or record.job_id is not None:
            return super().recorded_job_id(raw_output)
        return self._resolve(record)

    def _resolve(self, record: JobRecord) -> str | None:
        """The created job of a record if the service runs it (it was added), else None."""
        from dpdispatcher.dpcloudserver import CloudAPIError

        if record.created_id is None:
            return None
        try:
            self.openapi.client.job_detail(record.created_id)
        except CloudAPIError as err:
            if self._transient(err):
                raise self._error(err, f"looking up cloud job {record.created_id}") from err
            return None  # created but never added: it will not run
        self.openapi.write_record(
            JobRecord(record.job_hash, record.oss_path, record.job_group_id, record.created_id)
        )
        return record.created_id

    @staticmethod
    def _transient(err: CloudAPIError) -> bool:
        from dpdispatcher.dpcloudserver._models import is_transient

        return is_transient(err)

    def listed_group(self) -> str | None:
        """No listing: the OpenAPI is polled with one detail call per job."""
        return None

    def status_of(self, detail: JobDetail) -> JobStatus:
        """As DpCloudServer, but -1 is "ended, judge by the tag" under ``ignore_exit_code``."""
        if detail.status == -1 and self.cloud.ignore_exit_code:
            return JobStatus.finished
        return super().status_of(detail)
