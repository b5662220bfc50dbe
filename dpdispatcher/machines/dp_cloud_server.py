"""DpCloudServer: jobs run on the DP Cloud Server (Bohrium / Lebesgue) through its HTTP API.

There is no scheduler command to run: this batch type overrides the core's submit,
status and kill with API calls, and keeps everything else (script rendering, the
finish-tag rule, recovery through ``<job_hash>_job_id``).

Submitting a job
    zip and upload its files (:meth:`DpCloudServerContext.upload_job`), write a
    *pending* record in ``<job_hash>_job_id``, create the cloud job
    (``POST /brm/v2/job/add``), write the job id in the record at once. The upload
    path is unique to the submission, job and attempt; a pending record whose job
    the service did create (the dispatcher died, or the answer was lost) is found
    again by that path in the job listing, so a rerun never creates a second job.
Status
    one listing of the submission's job group per poll (``GET /brm/v1/job/list``),
    ``GET /brm/v1/job/{id}`` for a job the listing misses. Codes (SPEC §7): 0, 3, 9
    waiting; 1, 4, 6 running; 2 ended; 5 terminated; -1 failed, which counts as
    ended when the exit code is non-zero and ``ignore_exit_code`` is true.
Finish tag
    the job tag is written by the job script on the cloud and comes back inside the
    result zip. When the service says a job ended, its result is downloaded and
    extracted at once, and the job is ``finished`` only if the tag is in it, else
    ``terminated`` (and resubmitted; tasks whose task tag came back are skipped).
    With ``ignore_exit_code`` false a non-zero exit code fails the job whatever the
    tag says.

Examples
--------
>>> from dpdispatcher import Machine
>>> m = Machine.load_from_dict({"batch_type": "Bohrium", "context_type": "BohriumContext",
...     "local_root": ".", "remote_profile": {"email": "me@example.com", "password": "pw",
...     "program_id": 1, "input_data": {"job_type": "container"}}})
>>> type(m).__name__, m.serialize()["remote_profile"].get("password")
('DpCloudServer', None)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dpdispatcher._script import names, quoting, render
from dpdispatcher.contexts.dp_cloud_server_context import (
    DpCloudServerContext,
    JobRecord,
    describe_cloud_error,
    is_transient,
)
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, SchedulerError, TransientSchedulerError
from dpdispatcher.machine import Machine
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.dpcloudserver import CloudAPIError, JobDetail
    from dpdispatcher.job import Job

__all__ = ["CLOUD_STATUS", "DpCloudServer", "cloud_job_status"]

#: the job script runs where the service unpacked the archive
CLOUD_JOB_ROOT = "."
#: the service's status codes (finished/terminated here mean "ended": see the tag)
CLOUD_STATUS: dict[int, JobStatus] = {
    -1: JobStatus.terminated,
    0: JobStatus.waiting,
    1: JobStatus.running,
    2: JobStatus.finished,
    3: JobStatus.waiting,
    4: JobStatus.running,
    5: JobStatus.terminated,
    6: JobStatus.running,
    9: JobStatus.waiting,
}
_NODATA = "2300"
_PAGE = 100
_MAX_PAGES = 20


def cloud_job_status(status: int, exit_code: int | None, ignore_exit_code: bool) -> JobStatus:
    """Map a status code and exit code of the service (pure).

    ``finished`` means "ended: judge by the finish tag"; ``terminated`` means failed
    whatever the tag says; an unknown code gives ``unknown``.
    """
    failed_exit = exit_code not in (None, 0)
    if status == -1:
        return JobStatus.finished if failed_exit and ignore_exit_code else JobStatus.terminated
    mapped = CLOUD_STATUS.get(status, JobStatus.unknown)
    if mapped == JobStatus.finished and failed_exit and not ignore_exit_code:
        return JobStatus.terminated
    return mapped


def detail_from_item(item: Mapping[str, Any]) -> JobDetail | None:
    """A :class:`JobDetail` from one entry of the job listing (None if it lacks fields)."""
    from dpdispatcher.dpcloudserver import JobDetail

    job_id = item.get("jobId", item.get("id"))
    status = item.get("status")
    if job_id in (None, "") or status in (None, ""):
        return None
    exit_code = item.get("exitCode")
    try:
        return JobDetail(
            job_id=job_id,
            status=int(status),
            exit_code=None if exit_code in (None, "") else int(exit_code),
            result_url=str(item.get("resultUrl") or ""),
            raw=dict(item),
        )
    except (TypeError, ValueError):
        return None


def _wire_id(value: str) -> int | str:
    """An id as the service sent it: numeric ids go back as numbers."""
    return int(value) if value.isdigit() else value


def _items(page: Any) -> list[Mapping[str, Any]]:
    if isinstance(page, Mapping):
        page = page.get("items", page.get("list", []))
    return [item for item in page if isinstance(item, Mapping)] if isinstance(page, list) else []


def _oss_path_of(item: Mapping[str, Any]) -> str:
    for holder in (item, item.get("inputData"), item.get("input_data")):
        if isinstance(holder, Mapping) and holder.get("ossPath"):
            return str(holder["ossPath"])
    return ""


class DpCloudServer(Machine):
    """The DP Cloud Server (Bohrium / Lebesgue): jobs created and watched over HTTP.

    Use it with :class:`~dpdispatcher.contexts.dp_cloud_server_context.DpCloudServerContext`
    (``"context_type": "BohriumContext"``); see that class for the ``remote_profile``.
    """

    alias = ("Bohrium", "Lebesgue")
    state_map = {str(code): status for code, status in CLOUD_STATUS.items()}

    @property
    def cloud(self) -> DpCloudServerContext:
        """The bound context, which must be the cloud's.

        Checked on use rather than at construction, so that the pure hooks (script
        rendering) can be exercised on any context.
        """
        ctx = self.context
        if not isinstance(ctx, DpCloudServerContext):
            raise ConfigurationError(
                f"batch_type {type(self).__name__} needs context_type DpCloudServerContext "
                f"(alias BohriumContext), not {type(ctx).__name__}"
            )
        return ctx

    def _no_shell(self, what: str) -> SchedulerError:
        return SchedulerError(
            f"{type(self).__name__} has no {what} command: jobs are created, watched and "
            "killed through the service's HTTP API"
        )

    def submit_command(self, job: Job, script: str) -> str:
        """Refused: there is no shell command (see :meth:`submit_prepared`)."""
        raise self._no_shell("submit")

    def status_command(self, jobs: Sequence[Job]) -> str:
        """Refused: there is no shell command (see :meth:`check_status_many`)."""
        raise self._no_shell("status")

    def kill_command(self, job_id: str) -> str:
        """Refused: there is no shell command (see :meth:`kill`)."""
        raise self._no_shell("kill")

    # -- rendering: the job root on the cloud is the unpacked archive ----------------
    def gen_script(self, job: Job) -> str:
        """The job script, run from the directory where the service unpacked the archive."""
        return render.render_script(
            self.gen_script_header(job),
            job.job_hash,
            CLOUD_JOB_ROOT,
            job.resources,
            end=self.gen_script_end(job),
        )

    def gen_script_env(self, job: Job) -> str:
        """The env section of the script."""
        return render.render_env(job.job_hash, CLOUD_JOB_ROOT, job.resources)

    # -- what the cloud job is asked to do ---------------------------------------------
    def job_command(self, job: Job) -> str:
        """The ``cmd`` of the cloud job."""
        return f"bash {quoting.sh(names.script_file(job.job_hash))}"

    def out_files(self, job: Job) -> list[str]:
        """Patterns the service zips into the result: backward files, tags and logs."""
        out: list[str] = []
        for task in job.job_task_list:
            tdir = os.path.normpath(task.task_work_path)

            def under(name: str, tdir: str = tdir) -> str:
                return name if tdir == "." else f"{tdir}/{name}"

            out += [under(p) for p in task.backward_files]
            out += [under(names.task_tag_file(task.task_hash)), under("error*")]
            out += [under(log) for log in (task.outlog, task.errlog) if log is not None]
        sub = self.cloud.submission
        out += list(sub.backward_common_files) if sub is not None else []
        out += [names.job_tag_file(job.job_hash), names.last_err_file(job.job_hash)]
        return list(dict.fromkeys(out))

    def log_files(self, job: Job) -> list[str]:
        """The files shown as the job's log: ``input_data.log_file``, else the task logs."""
        custom = self.cloud.input_data.get("log_file")
        if custom:
            return [str(custom)]
        logs: list[str] = []
        for task in job.job_task_list:
            tdir = os.path.normpath(task.task_work_path)
            for log in (task.outlog, task.errlog):
                if log is not None:
                    logs.append(log if tdir == "." else f"{tdir}/{log}")
        return list(dict.fromkeys(logs))

    def job_input_data(self, job: Job) -> dict[str, Any]:
        """``input_data`` of the remote profile, with a job name when it gives none."""
        data = dict(self.cloud.input_data)
        if not data.get("job_name") and not data.get("jobName"):
            data["job_name"] = f"dpdispatcher-{job.job_hash[:12]}"
        return data

    # -- submit ------------------------------------------------------------------------
    def submit_prepared(self, job: Job) -> str:
        """Upload the job's archive and create its cloud job; return the cloud job id.

        The job id is recorded in ``<job_hash>_job_id`` as soon as the service answers;
        before the request a *pending* record is written, resolved on the next attempt
        or restart by looking the job up on the service.
        """
        ctx = self.cloud
        oss_path = ctx.oss_path(job)
        previous = ctx.read_record(job.job_hash)
        if previous is not None and previous.job_id is None and previous.oss_path == oss_path:
            adopted = self._resolve(previous)
            if adopted is not None:
                dlog.info("job %s was already created as cloud job %s", job.job_hash, adopted)
                return adopted
        ctx.forget_outcome(job)
        self._upload(job, oss_path)
        group = ctx.group_id()
        ctx.write_record(JobRecord(job.job_hash, oss_path, group))
        created = self._create(job, oss_path, group)
        job_id = quoting.job_id(str(created.job_id))
        group_id = None if created.job_group_id in (None, "") else str(created.job_group_id)
        ctx.write_record(JobRecord(job.job_hash, oss_path, group_id or group, job_id))
        ctx.set_group_id(group_id)
        return job_id

    def _upload(self, job: Job, oss_path: str) -> None:
        from dpdispatcher.dpcloudserver import CloudAPIError

        try:
            self.cloud.upload_job(job, oss_path)
        except CloudAPIError as err:
            raise self._error(err, f"uploading the files of job {job.job_hash}") from err

    def _create(self, job: Job, oss_path: str, group: str | None) -> Any:
        from dpdispatcher.dpcloudserver import CloudAPIError

        try:
            return self.cloud.client.create_job(
                project_id=self.cloud.program_id,
                oss_path=oss_path,
                cmd=self.job_command(job),
                out_files=self.out_files(job),
                log_files=self.log_files(job),
                input_data=self.job_input_data(job),
                job_group_id=None if group is None else _wire_id(group),
            )
        except CloudAPIError as err:
            raise self._error(err, f"creating the cloud job of job {job.job_hash}") from err

    def _error(self, err: CloudAPIError, action: str) -> Exception:
        if is_transient(err):
            return TransientSchedulerError(f"{action} deferred: {err}")
        return describe_cloud_error(err, action)

    def parse_submit_output(self, stdout: str) -> str:
        """The cloud job id in a ``<job_hash>_job_id`` record."""
        record = JobRecord.loads(stdout)
        if record is None or record.job_id is None:
            raise SchedulerError(f"{type(self).__name__}: no cloud job id in {stdout.strip()!r}")
        return record.job_id

    def recorded_job_id(self, raw_output: str) -> str | None:
        """The job id of a record; a pending record is looked up on the service."""
        record = JobRecord.loads(raw_output)
        if record is None:
            return None
        if record.job_id is not None:
            return super().recorded_job_id(raw_output)
        return self._resolve(record)

    def _resolve(self, record: JobRecord) -> str | None:
        """Find the cloud job a pending record may have created; record it if found."""
        from dpdispatcher.dpcloudserver import CloudAPIError

        try:
            found = self._find_by_oss_path(record.oss_path, record.job_group_id)
        except CloudAPIError as err:
            raise self._error(err, f"looking up the cloud job of job {record.job_hash}") from err
        if found is None:
            return None
        job_id, group_id = found
        self.cloud.write_record(
            JobRecord(record.job_hash, record.oss_path, group_id or record.job_group_id, job_id)
        )
        self.cloud.set_group_id(group_id)
        return job_id

    def _find_by_oss_path(self, oss_path: str, group: str | None) -> tuple[str, str | None] | None:
        for item in self._listing(group):
            if _oss_path_of(item) == oss_path:
                job_id = quoting.job_id(str(item.get("jobId", item.get("id"))))
                group_id = item.get("jobGroupId")
                return job_id, None if group_id in (None, "") else str(group_id)
        return None

    def _listing(self, group: str | None) -> list[Mapping[str, Any]]:
        """Every job of ``group`` (or, without one, the user's recent jobs), page by page."""
        client = self.cloud.client
        items: list[Mapping[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            data = client.list_jobs(page, _PAGE, job_group_id=group)
            batch = _items(data)
            items += batch
            total = data.get("total") if isinstance(data, Mapping) else None
            if len(batch) < _PAGE or (isinstance(total, int) and len(items) >= total):
                break
        return items

    # -- status --------------------------------------------------------------------------
    def check_status_many(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """The state of every submitted job, by job hash (see the module documentation).

        Raises :class:`TransientSchedulerError` when the service is briefly unreachable.
        """
        from dpdispatcher.dpcloudserver import CloudAPIError

        submitted = [job for job in jobs if job.job_id]
        if not submitted:
            return {}
        try:
            details = self._details(submitted)
            return {job.job_hash: self._judge(job, details.get(job.job_hash)) for job in submitted}
        except CloudAPIError as err:
            raise self._error(err, "querying the cloud jobs") from err

    def _details(self, jobs: Sequence[Job]) -> dict[str, JobDetail | None]:
        """Job details by job hash: one group listing, then one call per job it missed."""
        from dpdispatcher.dpcloudserver import CloudAPIError

        by_id: dict[str, JobDetail] = {}
        group = self.cloud.group_id()
        if group is not None and len(jobs) > 1:
            for item in self._listing(group):
                detail = detail_from_item(item)
                if detail is not None:
                    by_id[str(detail.job_id)] = detail
        out: dict[str, JobDetail | None] = {}
        for job in jobs:
            detail = by_id.get(job.job_id)
            if detail is None:
                try:
                    detail = self.cloud.client.job_detail(job.job_id)
                except CloudAPIError as err:
                    if err.code != _NODATA:
                        raise
                    dlog.warning("cloud job %s of job %s is gone", job.job_id, job.job_hash)
            out[job.job_hash] = detail
        return out

    def _judge(self, job: Job, detail: JobDetail | None) -> JobStatus:
        """The state of one job from its detail; fetch the result of an ended job."""
        if detail is None:  # gone from the service: judge by what was fetched before
            return JobStatus.finished if self.check_finish_tag(job) else JobStatus.terminated
        status = cloud_job_status(detail.status, detail.exit_code, self.cloud.ignore_exit_code)
        if status == JobStatus.unknown:
            return self.map_state(str(detail.status))
        if status not in (JobStatus.finished, JobStatus.terminated):
            return status
        if detail.result_url:
            self.cloud.fetch_result(job, detail.result_url)
        elif status == JobStatus.finished:
            return JobStatus.completing  # ended, but its result is not published yet
        if status == JobStatus.terminated:
            return status
        return JobStatus.finished if self.check_finish_tag(job) else JobStatus.terminated

    # -- kill ----------------------------------------------------------------------------
    def kill(self, job: Job) -> None:
        """Kill the cloud job; a job already gone is not an error."""
        from dpdispatcher.dpcloudserver import CloudAPIError

        if not job.job_id:
            return
        try:
            self.cloud.client.kill_job(job.job_id)
        except CloudAPIError as err:
            dlog.info("kill of cloud job %s: %s", job.job_id, err)
