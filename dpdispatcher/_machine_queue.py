"""Submitting, polling and killing, written once for every batch type.

:class:`SchedulerQueue` is the half of :class:`~dpdispatcher.machine.Machine` that speaks
to the scheduler: the pure hooks a batch type supplies (``submit_command``,
``parse_submit_output``, ``status_command``, ``parse_status_output``, ``kill_command``,
``find_command`` ...) and the steps built on them (one shell command submitting many
jobs, one status command for all jobs with a fall-back to the next output format, the
finish-tag rule, searching the queue for a job by its submit tag, killing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, cast

from dpdispatcher._script import names, quoting
from dpdispatcher._submit_shell import (
    STOPPED_MARK,
    batch_submit_command,
    split_batch_output,
    submit_lock_command,
    wrap_submit,
)
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import (
    AmbiguousSubmitError,
    ContextError,
    SchedulerError,
    StatusFormatError,
    TransientSchedulerError,
)
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.base_context import BaseContext, CommandResult
    from dpdispatcher.submission import Job

__all__ = ["ENDED", "KILLED_EXIT_CODES", "NOT_REPORTED", "SchedulerQueue"]

#: scheduler answers meaning "the job has ended: judge it by its finish tag"
ENDED = (JobStatus.finished, JobStatus.terminated)
#: exit codes of a submit command cut short (``timeout``, SIGKILL, SIGTERM): it may
#: have queued the job before it was stopped
KILLED_EXIT_CODES = (124, 137, 143)
#: raw state a parser reports for a job the answer says nothing certain about
NOT_REPORTED = "@not-reported"


class SchedulerQueue:
    """The scheduler hooks of a batch type and the steps written once on top of them
    (a base of :class:`~dpdispatcher.machine.Machine`)."""

    # what a batch type declares (values and their documentation: in Machine)
    state_map: ClassVar[dict[str, JobStatus]]
    transient_patterns: ClassVar[tuple[str, ...]]
    status_formats: ClassVar[tuple[str, ...]]
    submits_by_command: ClassVar[bool]
    # set by Machine.__init__
    context: BaseContext
    _format_index: int

    # -- hooks of the scheduler ---------------------------------------------------
    def submit_command(self, job: Job, script: str) -> str:
        """Shell command that submits ``script`` (run in the job root)."""
        raise NotImplementedError

    def parse_submit_output(self, stdout: str) -> str:
        """The job id in the submit command's output."""
        raise NotImplementedError

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One shell command reporting the state of all ``jobs``."""
        raise NotImplementedError

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """Raw state per job id; a job id absent from the answer has left the scheduler."""
        raise NotImplementedError

    def kill_command(self, job_id: str) -> str:
        """Shell command that cancels a job."""
        raise NotImplementedError

    def find_command(self, tags: Sequence[str]) -> str | None:
        """One shell command listing the queued or recent jobs carrying one of ``tags``
        (hook; None: this batch type cannot search its queue)."""
        return None

    def parse_find_output(self, result: CommandResult, tags: Sequence[str]) -> dict[str, str]:
        """The job id of each tag found in the output of :meth:`find_command` (hook)."""
        return {}

    def prepare_submit(self, jobs: Sequence[Job]) -> None:
        """Gather, in one batched query, what :meth:`submit_command` needs (hook).

        The only place before a submission where a batch type may do I/O, so that
        :meth:`submit_command` stays pure.
        """

    def settle_terminated(self, jobs: Sequence[Job]) -> None:
        """An explicit step for jobs just judged terminated (hook): e.g. remove a job that
        still sits in the queue, or log why the scheduler ended it."""

    # -- written once for every scheduler -----------------------------------------
    def find_submitted(self, jobs: Sequence[Job]) -> dict[str, str]:
        """The job id, by job hash, of each job found in the queue by its submit tag.

        Raises :class:`SchedulerError` (transient or not) when the queue cannot be
        searched now; the caller tries again later.
        """
        tagged = [job for job in jobs if job.submit_tag]
        cmd = self.find_command([job.submit_tag for job in tagged]) if tagged else None
        if cmd is None:
            return {}
        result = self.context.run(cmd, idempotent=True)
        if not result.ok and self.is_transient(result):
            raise TransientSchedulerError(
                f"{type(self).__name__} queue search deferred: {result.stderr.strip()}"
            )
        found = self.parse_find_output(result, [job.submit_tag for job in tagged])
        return {
            job.job_hash: quoting.job_id(found[job.submit_tag])
            for job in tagged
            if job.submit_tag in found
        }

    def is_transient(self, result: CommandResult) -> bool:
        """Whether a failed command's output says the scheduler is only briefly away."""
        text = result.stdout + result.stderr
        return any(pattern in text for pattern in self.transient_patterns)

    def submit_prepared(self, job: Job) -> str:
        """Submit a job whose files are already in the job root; return the job id."""
        outcome = self.submit_many([job])[job.job_hash]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def submit_many(self, jobs: Sequence[Job]) -> dict[str, str | SchedulerError]:
        """Submit jobs whose files are in the job root, all in one shell command.

        Returns the job id, or the error, of each job by job hash. A batch type that does
        not submit through a shell command (``submits_by_command = False``) overrides
        :meth:`submit_prepared` instead, and its jobs are then submitted one by one.
        """
        if not self.submits_by_command:
            return {job.job_hash: self._one_by_one(job) for job in jobs}
        if not jobs:
            return {}
        self.prepare_submit(jobs)
        parts = [
            (
                job.job_hash,
                wrap_submit(
                    self.submit_command(job, names.script_file(job.job_hash)),
                    names.job_id_file(job.job_hash),
                ),
            )
            for job in jobs
        ]
        try:
            stdout = self.context.run(batch_submit_command(parts)).stdout
        except ContextError as err:
            return {
                job.job_hash: AmbiguousSubmitError(
                    f"submit of job {job.job_hash}: the connection failed while submitting "
                    f"({err}); the queue will be searched for it before a resubmission"
                )
                for job in jobs
            }
        blocks = split_batch_output(stdout)
        return {job.job_hash: self._batch_outcome(job, blocks, stdout) for job in jobs}

    def _batch_outcome(
        self, job: Job, blocks: dict[str, CommandResult], stdout: str
    ) -> str | SchedulerError:
        """The outcome of ``job`` in the output of one batch submit command."""
        if job.job_hash in blocks:
            return self._submit_outcome(job, blocks[job.job_hash])
        if STOPPED_MARK in stdout:
            return TransientSchedulerError(
                f"submit of job {job.job_hash} deferred: an earlier submission was refused"
            )
        return AmbiguousSubmitError(
            f"submit of job {job.job_hash} got no answer; the queue will be searched "
            "for it before a resubmission"
        )

    def _one_by_one(self, job: Job) -> str | SchedulerError:
        try:
            return self.submit_prepared(job)
        except SchedulerError as err:
            return err

    def _submit_outcome(self, job: Job, result: CommandResult) -> str | SchedulerError:
        if not result.ok:
            message = (result.stderr + "\n" + result.stdout).strip()
            if self.is_transient(result) or result.exit_code in KILLED_EXIT_CODES:
                # timed out, killed or briefly unreachable: the job may have been queued
                return AmbiguousSubmitError(
                    f"submit of job {job.job_hash} failed ambiguously (exit code "
                    f"{result.exit_code}): {message}; the queue will be searched for it "
                    "before a resubmission"
                )
            return SchedulerError(
                f"{type(self).__name__} refused job {job.job_hash} "
                f"(exit code {result.exit_code}): {message}"
            )
        try:
            return quoting.job_id(self.parse_submit_output(result.stdout))
        except SchedulerError as err:
            return err

    def recorded_job_id(self, raw_output: str) -> str | None:
        """The job id in a ``<job_hash>_job_id`` record, or None if it cannot be parsed."""
        try:
            return quoting.job_id(self.parse_submit_output(raw_output))
        except (SchedulerError, ValueError, IndexError):
            return None

    def recorded_job_ids(self, jobs: Sequence[Job]) -> dict[str, str]:
        """The job id each submit command recorded in the bound job root, by job hash
        (jobs without a readable record are left out).

        A submitting shell left by a killed predecessor may still be recording ids: its
        lock is waited for first.
        """
        self.context.run(submit_lock_command() + "; true", idempotent=True)
        wanted = {names.job_id_file(job.job_hash): job.job_hash for job in jobs}
        records = self.context.read_files(list(wanted))
        found = {wanted[name]: self.recorded_job_id(text) for name, text in records.items()}
        return {job_hash: job_id for job_hash, job_id in found.items() if job_id}

    def map_state(self, raw: str) -> JobStatus:
        """Map a raw scheduler state; an unmapped one is logged and reported unknown."""
        if raw == NOT_REPORTED:
            return JobStatus.unknown
        status = self.state_map.get(raw)
        if status is None:
            dlog.warning(
                "%s: unmapped scheduler state %r; will poll again", type(self).__name__, raw
            )
            return JobStatus.unknown
        return status

    @property
    def status_format(self) -> str:
        """The status output format in use (see :attr:`status_formats`)."""
        return self.status_formats[min(self._format_index, len(self.status_formats) - 1)]

    def _fall_back(self, err: StatusFormatError) -> bool:
        """Use the next status format, if any; True when there was one."""
        if self._format_index + 1 >= len(self.status_formats):
            return False
        self._format_index += 1
        dlog.info(
            "%s: %s; asking for the %s format from now on",
            type(self).__name__,
            err,
            self.status_format,
        )
        return True

    def query_states(self, jobs: Sequence[Job]) -> dict[str, str]:
        """Raw state per job id from one status command (the next format if needed).

        Raises :class:`TransientSchedulerError` when the scheduler is briefly away and
        :class:`SchedulerError` when the answer cannot be understood.
        """
        while True:
            result = self.context.run(self.status_command(jobs), idempotent=True)
            if not result.ok and self.is_transient(result):
                raise TransientSchedulerError(
                    f"{type(self).__name__} status query deferred: {result.stderr.strip()}"
                )
            try:
                return self.parse_status_output(result, jobs)
            except StatusFormatError as err:
                if not self._fall_back(err):
                    raise

    def check_status_many(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """The state of every submitted job, by job hash, with one status command.

        Raises :class:`TransientSchedulerError` when the scheduler is briefly unreachable.
        A status answer that cannot be understood leaves every job *unknown* (logged):
        they are polled again, and only a state unknown for too long stops the run.
        """
        submitted = [job for job in jobs if job.job_id]
        if not submitted:
            return {}
        try:
            raw = self.query_states(submitted)
        except TransientSchedulerError:
            raise
        except SchedulerError as err:
            dlog.warning("%s; job states unknown, will poll again", err)
            return {job.job_hash: JobStatus.unknown for job in submitted}
        # a job not reported has ended, like one in a state that means so
        mapped = {code: self.map_state(code) for code in set(raw.values())}
        ended_codes = {code for code, status in mapped.items() if status in ENDED}
        states: dict[str, JobStatus] = {}
        ended = []
        for job in submitted:
            code = raw.get(job.job_id)
            if code is None or code in ended_codes:
                ended.append(job)
            else:
                states[job.job_hash] = mapped[code]
        if not ended:
            return states
        finished, terminated = JobStatus.finished, JobStatus.terminated
        for job, done in zip(ended, self.tagged(ended)):
            states[job.job_hash] = finished if done else terminated
        return states

    def check_status(self, job: Job) -> JobStatus:
        """The state of one job (unsubmitted if it has no job id)."""
        if not job.job_id:
            return JobStatus.unsubmitted
        return self.check_status_many([job])[job.job_hash]

    def finish_tags(self, jobs: Sequence[Job]) -> list[str] | list[tuple[str, ...]]:
        """The files (relative to the job root) whose existence means each job finished
        (hook; default: the job tag): one file per job as a string, or, when some job
        needs several, every job's files as a tuple (thousands of lists alive during a
        poll would be walked by the garbage collector, and push it to a full collection)."""
        return names.job_tag_files(jobs)

    def finish_tag_files(self, job: Job) -> list[str]:
        """:meth:`finish_tags` of one job, as a list."""
        (files,) = self.finish_tags([job])
        return [files] if isinstance(files, str) else list(files)

    def tagged(self, jobs: Sequence[Job]) -> list[bool]:
        """Whether all finish tags of each job exist, with one batched file check."""
        wanted = self.finish_tags(jobs)
        if not wanted or type(wanted[0]) is str:  # one file per job
            tags = cast("list[str]", wanted)
            present = self.context.files_exist(tags)
            return [f in present for f in tags]
        groups = [(f,) if isinstance(f, str) else f for f in wanted]
        present = self.context.files_exist([f for files in groups for f in files])
        return [present.issuperset(files) for files in groups]

    def check_finish_tag(self, job: Job) -> bool:
        """Whether the job's finish tag(s) exist (one tag: ``context.check_file_exists``,
        as in 1.1.0)."""
        wanted = self.finish_tag_files(job)
        if len(wanted) == 1:
            return bool(self.context.check_file_exists(wanted[0]))
        return self.tagged([job])[0]

    def get_job_error(self, job: Job) -> str | None:
        """The error output ``job`` left (``<job_hash>_last_err_file``), or None."""
        try:
            text: str | bytes = self.context.read_file(names.last_err_file(job.job_hash))
        except FileNotFoundError:
            return None
        # the HDFS context of 1.x answered bytes
        return text.decode("utf-8", "replace") if isinstance(text, bytes) else text

    def kill(self, job: Job) -> None:
        """Cancel a job; a job already gone is not an error."""
        if not job.job_id:
            return
        result = self.context.run(self.kill_command(quoting.job_id(job.job_id)), idempotent=True)
        if not result.ok:
            dlog.info("kill of job %s: %s", job.job_id, (result.stderr + result.stdout).strip())
