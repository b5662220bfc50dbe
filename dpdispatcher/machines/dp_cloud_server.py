"""DpCloudServer (Bohrium, Lebesgue): jobs run on the Bohrium cloud through its HTTP API.

There is no scheduler command to run: this batch type overrides the core's submit,
status and kill with API calls, and keeps everything else (script rendering, the
finish-tag rule, recovery through ``<job_hash>_job_id``). The request shapes are
those of :mod:`dpdispatcher.dpcloudserver._wire`.

Submitting a job
    zip and upload its files (``upload_job`` of the context), write a *pending*
    record in ``<job_hash>_job_id``, create the cloud job (``POST /brm/v2/job/add``),
    write the job id in the record at once. The upload path is unique to the
    submission, job and attempt; a pending record whose job the service did create
    (the dispatcher died, or the answer was lost) is found again by that path in the
    job listing (``inputData`` of each entry, a JSON string), so a rerun never creates
    a second job.
Status
    with ``input_data.grouped`` true, one listing of the submission's job group per
    poll (``GET /brm/v1/job/list``); ``GET /brm/v1/job/{id}`` for each job otherwise
    (as dpdispatcher 1.1.0) and for a job the listing misses. Codes (SPEC §7): 0, 3, 9
    waiting; 1, 4, 6 running; 2 ended; 5 terminated; -1 failed, which counts as ended
    when the exit code is non-zero and ``ignore_exit_code`` is true.
Finish tag
    the job tag is written by the job script on the cloud and comes back inside the
    result zip. When the service says a job ended, its result is downloaded and
    extracted at once, and the job is ``finished`` only if the tag is in it, else
    ``terminated`` (and resubmitted; tasks whose task tag came back are skipped). A
    finished job's backward files go to the work base right away, so they are there
    even if another job later fails for good. A failed job's last error names its
    cloud job id and the URL of its log.

Examples
--------
>>> from dpdispatcher import Machine
>>> m = Machine.load_from_dict({"batch_type": "Bohrium", "context_type": "BohriumContext",
...     "local_root": ".", "remote_profile": {"email": "me@example.com", "password": "pw",
...     "program_id": 1, "input_data": {"job_type": "container"}}})
>>> type(m).__name__, m.serialize()["remote_profile"].get("password")
('DpCloudServer', None)
>>> m.input_data is m.context.input_data
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dpdispatcher._script import names, quoting, render
from dpdispatcher.dlog import dlog
from dpdispatcher.dpcloudserver._jobs import (
    CLOUD_STATUS,
    cloud_job_status,
    failure_note,
    find_by_oss_path,
    job_details,
    new_log_text,
    wire_id,
)
from dpdispatcher.dpcloudserver._models import describe_cloud_error, is_transient
from dpdispatcher.dpcloudserver._records import CloudStaging, JobRecord
from dpdispatcher.dpcloudserver._wire import wants_group
from dpdispatcher.errors import ConfigurationError, SchedulerError, TransientSchedulerError
from dpdispatcher.machine import Machine
from dpdispatcher.task import task_tag_path
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.dpcloudserver import CloudAPIError, CreatedJob, JobDetail
    from dpdispatcher.job import Job

__all__ = ["CLOUD_STATUS", "Bohrium", "DpCloudServer", "Lebesgue", "cloud_job_status"]

#: the job script runs where the service unpacked the archive
CLOUD_JOB_ROOT = "."
T = TypeVar("T")


class DpCloudServer(Machine):
    """The DP Cloud Server (Bohrium / Lebesgue): jobs created and watched over HTTP.

    Use it with :class:`~dpdispatcher.contexts.dp_cloud_server_context.DpCloudServerContext`
    (``"context_type": "BohriumContext"``); see that class for the ``remote_profile``.
    """

    alias: ClassVar[tuple[str, ...]] = ("Bohrium", "Lebesgue")
    state_map = {str(code): status for code, status in CLOUD_STATUS.items()}
    #: jobs are created over HTTP (:meth:`submit_prepared`), one by one
    submits_by_command = False

    #: the context type this batch type needs (named in the error otherwise)
    context_name = "DpCloudServerContext (alias BohriumContext)"

    @property
    def cloud(self) -> CloudStaging:
        """The bound context, which must be the cloud's.

        Checked on use rather than at construction, so that the pure hooks (script
        rendering) can be exercised on any context.
        """
        ctx = self.context
        if not isinstance(ctx, CloudStaging):
            raise ConfigurationError(
                f"batch_type {type(self).__name__} needs context_type {self.context_name}, "
                f"not {type(ctx).__name__}"
            )
        return ctx

    @property
    def input_data(self) -> dict[str, Any]:
        """The job settings every cloud job is created with: the live dict, so a change
        (e.g. dflow attaching datasets) applies to the jobs submitted afterwards."""
        return self.cloud.input_data

    @input_data.setter
    def input_data(self, value: dict[str, Any]) -> None:
        self.cloud.input_data = value

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
            out += [task_tag_path(task), under("error*")]
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
        """``input_data`` as the job is created with it (read at each submission)."""
        return self.cloud.input_data

    # -- submit ------------------------------------------------------------------------
    def submit_prepared(self, job: Job) -> str:
        """Upload the job's archive and create its cloud job; return the cloud job id.

        The job id is recorded in ``<job_hash>_job_id`` as soon as the service answers;
        before the request a *pending* record is written, resolved on the next attempt
        or restart by looking the job up on the service.
        """
        ctx = self.cloud
        oss_path = ctx.oss_path(job)
        adopted = self._adopt_or_forget(job, oss_path, "created")
        if adopted is not None:
            return adopted
        self._upload(job, oss_path)
        group = ctx.group_id() if wants_group(ctx.input_data) else None
        ctx.write_record(JobRecord(job.job_hash, oss_path, group))
        created = self._create(job, oss_path, group)
        job_id = quoting.job_id(str(created.job_id))
        group_id = None if created.job_group_id in (None, "") else str(created.job_group_id)
        ctx.write_record(JobRecord(job.job_hash, oss_path, group_id or group, job_id))
        ctx.set_group_id(group_id)
        return job_id

    def _adopt_or_forget(self, job: Job, oss_path: str, done: str) -> str | None:
        """The cloud job an interrupted attempt at ``oss_path`` left (found by
        :meth:`_resolve`), or None once the job's earlier outcome is forgotten."""
        ctx = self.cloud
        previous = ctx.read_record(job.job_hash)
        if previous is not None and previous.job_id is None and previous.oss_path == oss_path:
            adopted = self._resolve(previous)
            if adopted is not None:
                dlog.info("job %s was already %s as cloud job %s", job.job_hash, done, adopted)
                return adopted
        ctx.forget_outcome(job)
        return None

    def _upload(self, job: Job, oss_path: str) -> None:
        action = f"uploading the files of job {job.job_hash}"
        self._call(action, lambda: self.cloud.upload_job(job, oss_path))

    def _create(self, job: Job, oss_path: str, group: str | None) -> CreatedJob:
        created: CreatedJob = self._call(
            f"creating the cloud job of job {job.job_hash}",
            lambda: self.cloud.client.create_job(
                project_id=self.cloud.program_id,
                oss_path=oss_path,
                cmd=self.job_command(job),
                out_files=self.out_files(job),
                log_files=self.log_files(job),
                input_data=self.job_input_data(job),
                job_group_id=None if group is None else wire_id(group),
            ),
        )
        return created

    def _call(self, action: str, call: Callable[[], T]) -> T:
        """``call()``; a service error becomes a (transient) scheduler error naming ``action``."""
        from dpdispatcher.dpcloudserver import CloudAPIError

        try:
            return call()
        except CloudAPIError as err:
            raise self._error(err, action) from err

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
            found = find_by_oss_path(self.cloud.client, record.oss_path, record.job_group_id)
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
            states = {j.job_hash: self._judge(j, details.get(j.job_hash)) for j in submitted}
        except CloudAPIError as err:
            raise self._error(err, "querying the cloud jobs") from err
        if self.cloud.input_data.get("output_log"):
            for job in submitted:
                self._show_log(job)
        return states

    def _show_log(self, job: Job) -> None:
        """Log (INFO) what ``job``'s console log gained since the last poll."""
        text = new_log_text(self.cloud.client, job.job_id, self.cloud.log_offsets)
        if text:
            dlog.info("cloud job %s log:\n%s", job.job_id, text.rstrip("\n"))

    def _details(self, jobs: Sequence[Job]) -> dict[str, JobDetail | None]:
        """Job details by job hash: one group listing, then one call per job it missed."""
        group = self.listed_group()
        ids = [(job.job_hash, job.job_id) for job in jobs]
        return job_details(self.cloud.client, ids, group if len(jobs) > 1 else None)

    def listed_group(self) -> str | None:
        """The job group polled with one listing (None: one detail call per job)."""
        return self.cloud.group_id() if wants_group(self.cloud.input_data) else None

    def status_of(self, detail: JobDetail) -> JobStatus:
        """The state of a cloud job from its status and exit code (see :func:`cloud_job_status`)."""
        return cloud_job_status(detail.status, detail.exit_code, self.cloud.ignore_exit_code)

    def _judge(self, job: Job, detail: JobDetail | None) -> JobStatus:
        """The state of one job from its detail; fetch the result of an ended job."""
        if detail is None:  # gone from the service: judge by what was fetched before
            return JobStatus.finished if self.check_finish_tag(job) else JobStatus.terminated
        status = self.status_of(detail)
        if status == JobStatus.unknown:
            return self.map_state(str(detail.status))
        if status not in (JobStatus.finished, JobStatus.terminated):
            return status
        if detail.result_url:
            self.cloud.fetch_result(job, detail.result_url)
        elif status == JobStatus.finished:
            return JobStatus.completing  # ended, but its result is not published yet
        if status == JobStatus.finished and self.check_finish_tag(job):
            self.cloud.deliver(job)
            return JobStatus.finished
        self.cloud.note_failure(job, failure_note(self.cloud.client, job.job_id, detail))
        return JobStatus.terminated

    def get_exit_code(self, job: Job) -> int | None:
        """The exit code the service reports for ``job``'s cloud job (None before it ends)."""
        from dpdispatcher.dpcloudserver import CloudAPIError

        try:
            return self.cloud.client.job_detail(job.job_id).exit_code  # type: ignore[no-any-return]
        except CloudAPIError as err:
            raise self._error(err, f"asking the exit code of job {job.job_hash}") from err

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


#: the names dpdispatcher 1.1.0 gives this batch type
Bohrium = Lebesgue = DpCloudServer
