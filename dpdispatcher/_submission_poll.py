"""How a submission follows its jobs: poll their states, (re)submit, wait until done.

A mixin of :class:`~dpdispatcher.submission.Submission`, kept apart so that the
lifecycle module stays readable.
"""

from __future__ import annotations

from collections import Counter

from dpdispatcher._failures import FailureHandling
from dpdispatcher._reconcile import reconcile
from dpdispatcher._script import names
from dpdispatcher._submission_state import StateFile
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import AmbiguousSubmitError, SchedulerError, TransientSchedulerError
from dpdispatcher.job import Job
from dpdispatcher.utils.job_status import JobStatus

#: more jobs than this finishing in one poll are logged in one line, not one line each
FINISHED_LINES = 10


def _log_finished(jobs: list[Job]) -> None:
    """Log the jobs that finished in this poll: one line each, or one line for many."""
    if len(jobs) <= FINISHED_LINES:
        for job in jobs:
            dlog.info("job %s (id %s) finished", job.job_hash, job.job_id)
    else:
        dlog.info(
            "%d jobs finished: %s, ... (ids %s, ...)",
            len(jobs),
            ", ".join(job.job_hash for job in jobs[:3]),
            ", ".join(job.job_id for job in jobs[:3]),
        )


#: states a poll no longer asks about (sets: a job's state is looked up, not compared
#: with each, in the passes over thousands of jobs)
_SETTLED = frozenset((JobStatus.finished, JobStatus.failed))
_FINISHED = frozenset((JobStatus.finished,))
#: states of jobs to submit, resubmit, or search the queue for (submission ambiguous)
_TO_SUBMIT_OR_FIND = frozenset((JobStatus.unsubmitted, JobStatus.terminated, JobStatus.unknown))


class Polling(StateFile, FailureHandling):
    """The poll loop of a submission: job states, (re)submission, waiting, stragglers."""

    # -- state --------------------------------------------------------------------
    def update_submission_state(self) -> bool:
        """Query the state of every submitted, unfinished job; return True on a change."""
        machine = self._bound_machine()
        active = [j for j in self.belonging_jobs if j.job_id and j.job_state not in _SETTLED]
        try:
            states = machine.check_status_many(active)
        except TransientSchedulerError as err:
            dlog.warning("%s", err)
            return False
        now = self.timing.clock()
        changed = False
        newly_terminated = []
        newly_finished: list[Job] = []
        terminated, finished, unknown = JobStatus.terminated, JobStatus.finished, JobStatus.unknown
        for job in active:
            old = job.job_state
            new = states.get(job.job_hash, old)
            if new is old and job.unknown_since is None:
                continue  # the usual case in a poll: nothing to do
            if new == unknown or job.unknown_since is not None:
                self._track_unknown(job, new, now)
            if new == old:
                continue
            changed = True
            self._state_changes.append(job)
            if new == terminated:
                newly_terminated.append(job)
                job.fail_count += 1
                job.not_before = now + self.timing.resubmit_after(job.fail_count)
                dlog.info(
                    "job %s (id %s) terminated without its finish tag (failure %d)",
                    job.job_hash,
                    job.job_id,
                    job.fail_count,
                )
            elif new == finished:
                newly_finished.append(job)
            job.job_state = new
        _log_finished(newly_finished)
        if newly_terminated:
            machine.settle_terminated(newly_terminated)
            self._fetch_error_info_quietly(newly_terminated)
        return changed

    def _track_unknown(self, job: Job, state: JobStatus, now: float) -> None:
        if state != JobStatus.unknown:
            job.unknown_since = None
            return
        if job.unknown_since is None:
            job.unknown_since = now
        elif now - job.unknown_since > self.timing.unknown_timeout:
            raise SchedulerError(
                f"job {job.job_hash} (id {job.job_id}) has been in an unknown scheduler state "
                f"for {now - job.unknown_since:.0f} s"
            )

    def get_submission_state(self) -> bool:
        """Compatibility name of :meth:`update_submission_state`."""
        return self.update_submission_state()

    def check_all_finished(self) -> bool:
        """Whether every job finished (or, under ``continue_on_failure``, gave up)."""
        done = _SETTLED if self.continue_on_failure else _FINISHED
        # a loop: all() over a generator costs twice as much per job
        for job in self.belonging_jobs:  # noqa: SIM110
            if job.job_state not in done:
                return False
        return True

    def handle_unexpected_submission_state(self) -> bool:
        """Submit unsubmitted jobs and resubmit terminated ones whose delay has passed.

        Raises :class:`JobFailedError` for a job that failed more than ``retry_count`` times.
        """
        machine = self._bound_machine()
        now = self.timing.clock()
        # one pass over the jobs: those to (re)submit, and the ambiguous ones (unknown)
        # which the search of the queue may turn into jobs to submit
        candidates = [job for job in self.belonging_jobs if job.job_state in _TO_SUBMIT_OR_FIND]
        to_go = (JobStatus.unsubmitted, JobStatus.terminated)
        changed = self._reconcile_ambiguous(candidates, now)
        due = []
        marked = False
        for job in candidates:
            if job.job_state not in to_go:
                continue  # still unknown, or found queued or finished
            if job.exhausted(machine.retry_count):
                if self.continue_on_failure:
                    self._mark_failed(job)
                    marked = True
                    continue
                self._save_state_quietly()
                raise self._give_up_error(job)
            if job.not_before <= now:
                due.append(job)
        if not due:
            return changed or marked
        if any(job.resources.wait_time for job in due):
            # the user asked for a pause after each submission: submit one by one
            return any([self._submit([job]) for job in due]) or changed or marked
        return self._submit(due) or changed or marked

    def _reconcile_ambiguous(self, jobs: list[Job], now: float) -> bool:
        """Search the queue for those of ``jobs`` whose submission was ambiguous (see
        _reconcile)."""
        unknown = JobStatus.unknown
        pending = [
            job
            for job in jobs
            if job.job_state == unknown and not job.job_id and job.not_before <= now
        ]
        if not pending:
            return False
        for job in pending:
            job.submit_tag = names.submit_tag(self.submission_hash, job.job_hash, job.fail_count)
        settled = reconcile(self._bound_machine(), pending)
        if settled is None:
            for job in pending:
                job.not_before = now + self.timing.resubmit_after(job.fail_count + 1)
                self._track_unknown(job, JobStatus.unknown, now)
            return False
        for job in pending:
            job.unknown_since = None
        return settled

    def _submit(self, jobs: list[Job]) -> bool:
        """Submit ``jobs`` (in one command where the batch type allows); True if any went
        or became ambiguous."""
        for job in jobs:
            job.submit_tag = names.submit_tag(self.submission_hash, job.job_hash, job.fail_count)
        outcomes = self._bound_machine().submit_many(jobs)
        refused: list[SchedulerError] = []
        submitted = False
        for job in jobs:
            outcome = outcomes[job.job_hash]
            if isinstance(outcome, AmbiguousSubmitError):
                job.job_state, job.job_id = JobStatus.unknown, ""
                job.not_before = self.timing.clock() + self.timing.resubmit_after(
                    job.fail_count + 1
                )
                submitted = True  # a state change worth saving
                dlog.warning("%s", outcome)
            elif isinstance(outcome, TransientSchedulerError):
                job.not_before = self.timing.clock() + self.timing.resubmit_after(
                    job.fail_count + 1
                )
                dlog.warning("%s; will retry", outcome)
            elif isinstance(outcome, SchedulerError):
                refused.append(outcome)
            else:
                job.register_job_id(outcome)
                job.job_state = JobStatus.waiting
                submitted = True
                dlog.info("job %s was submitted; job_id is %s", job.job_hash, outcome)
                if job.resources.wait_time:
                    self.timing.sleep(job.resources.wait_time)
        if refused:
            raise refused[0]
        return submitted

    # -- waiting ------------------------------------------------------------------
    def _poll_until_done(self, check_interval: float) -> None:
        # 0 (accepted as in 1.1.0) means "no added wait": poll at the first back-off step
        check_interval = check_interval or self.timing.first_interval
        interval = min(self.timing.first_interval, check_interval)
        last_counts: dict[str, int] = {}
        while True:
            changed = self.update_submission_state()
            submitted = self.handle_unexpected_submission_state()
            if changed or submitted:
                self.persist_changes(submitted=submitted)
            last_counts = self._report_progress(last_counts)
            if self.check_all_finished():
                return
            if self._ratio_reached():
                self._drop_unfinished()
                return
            self.timing.sleep(interval)
            interval = min(interval * self.timing.growth, check_interval)

    def _report_progress(self, last: dict[str, int]) -> dict[str, int]:
        by_state = Counter([job.job_state for job in self.belonging_jobs])
        counts = {JobStatus(state).name: count for state, count in by_state.items()}
        if counts != last:
            if self.progress is not None:
                self.progress(counts)
            dlog.info("jobs: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return counts

    def _ratio_reached(self) -> bool:
        ratio = self._resources().strategy.get("ratio_unfinished", 0.0)
        if not ratio:
            return False
        total = sum(len(job.job_task_list) for job in self.belonging_jobs)
        done = sum(
            len(job.job_task_list)
            for job in self.belonging_jobs
            if job.job_state == JobStatus.finished
        )
        return bool(done >= (1.0 - ratio) * total)

    def _drop_unfinished(self) -> None:
        """Kill the stragglers and leave them out of the download."""
        machine = self._bound_machine()
        if not self.dropped_jobs:
            self._generated_jobs = list(self.belonging_jobs)
        for job in [j for j in self.belonging_jobs if j.job_state != JobStatus.finished]:
            if job.job_state != JobStatus.terminated:
                machine.kill(job)
            self.belonging_jobs.remove(job)
            self.dropped_jobs.append(job)
            dlog.info("ratio_unfinished: killed job %s and dropped its tasks", job.job_hash)

    def remove_unfinished_tasks(self) -> None:
        """Compatibility name: kill and drop unfinished jobs."""
        self._drop_unfinished()

    def clean_all_jobs(self) -> None:
        """Kill every job that has been submitted and is not finished."""
        machine = self._bound_machine()
        for job in self.belonging_jobs:
            if job.job_id and job.job_state != JobStatus.finished:
                machine.kill(job)
