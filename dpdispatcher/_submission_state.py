"""The state file of a submission: its JSON, hash, writes, journal and recovery.

A mixin of :class:`~dpdispatcher.submission.Submission`. The state file
``<submission_hash>.json`` in the job root (and its copy in ``~/.dpdispatcher``) is
written in full, streamed, or, after a poll that changed only job states, extended by
the journal beside it (:mod:`dpdispatcher._journal`); recovery reads it back, or the
state the original left (:mod:`dpdispatcher._legacy`), or the local copy.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dpdispatcher import _journal, _legacy, _previous
from dpdispatcher._script import names
from dpdispatcher._state import parse_state
from dpdispatcher._submission_fields import SubmissionFields
from dpdispatcher.dlog import dlog
from dpdispatcher.job import changed_only_in_state
from dpdispatcher.utils.job_status import JobStatus
from dpdispatcher.utils.record import record

if TYPE_CHECKING:
    from dpdispatcher.job import Job

#: the journal is folded into a full state write once it holds this many lines per job
#: (plus JOURNAL_LINES_MIN): a job's waiting, running and finished fit with room to spare
JOURNAL_LINES_PER_JOB = 4
JOURNAL_LINES_MIN = 1000
#: jobs joined into one piece of :meth:`Submission.json_chunks` (a few hundred kB)
JOBS_PER_PIECE = 1000
#: tasks joined into one piece of :meth:`Submission.json_chunks` before they are grouped
TASKS_PER_PIECE = 2000


class StateFile(SubmissionFields):
    """Serialisation, hashing, state writes and recovery of a submission."""

    def serialize(
        self, if_static: bool = False, if_none_local_root: bool = False
    ) -> dict[str, Any]:
        """The submission as a dictionary (runtime job fields unless ``if_static``)."""
        machine = self.machine.state_dict() if self.machine is not None else {}
        if if_none_local_root and machine:
            machine["local_root"] = None
        out: dict[str, Any] = {
            "work_base": self.work_base,
            "machine": machine,
            "resources": self.resources.serialize() if self.resources else {},
            "forward_common_files": list(self.forward_common_files),
            "backward_common_files": list(self.backward_common_files),
        }
        if not self._persisted_jobs():  # as in 1.1.0: the tasks, until they are grouped
            out["belonging_tasks"] = [task.serialize() for task in self.belonging_tasks]
        if not if_static:  # a policy of the run, not part of the hash (as in 1.1.0)
            out["continue_on_failure"] = self.continue_on_failure
        out["belonging_jobs"] = [job.serialize(if_static=if_static) for job in self.belonging_jobs]
        return out

    def json_chunks(self, if_static: bool = False) -> Iterator[str]:
        """``json.dumps(self.serialize(if_static))`` in pieces.

        Each job's JSON is assembled from the cached JSON of its tasks and resources, and
        kept (:meth:`Job.state_json`) until the job changes, so hashing and state writes
        serialise nothing twice and never hold the whole text.
        """
        return self._json_chunks(if_static, written=False)

    def _json_chunks(self, if_static: bool, *, written: bool) -> Iterator[str]:
        """:meth:`json_chunks`; ``written``: for a full state write (each job notes what
        it wrote: :meth:`Job.written_json`)."""
        machine = self.machine.state_dict() if self.machine is not None else {}
        resources = self.resources.to_json() if self.resources is not None else "{}"
        yield (
            f'{{"work_base": {json.dumps(self.work_base)}, "machine": {json.dumps(machine)}, '
            f'"resources": {resources}, '
            f'"forward_common_files": {json.dumps(list(self.forward_common_files))}, '
            f'"backward_common_files": {json.dumps(list(self.backward_common_files))}, '
        )
        jobs = self._persisted_jobs()
        if not jobs:
            yield from self._tasks_pieces()
        yield (
            "" if if_static else f'"continue_on_failure": {json.dumps(self.continue_on_failure)}, '
        ) + '"belonging_jobs": ['
        if if_static:
            sep = ""
            for job in jobs:
                yield sep
                yield from job.json_pieces(if_static=True)
                sep = ", "
        else:
            yield from self._state_pieces(jobs, written)
        yield "]}"

    def _tasks_pieces(self) -> Iterator[str]:
        """The ``belonging_tasks`` member (with its separator) of a submission whose
        tasks are not grouped into jobs yet, from the cached JSON of each task, in pieces
        of :data:`TASKS_PER_PIECE` tasks (a million tasks are never one string)."""
        tasks = self.belonging_tasks
        yield '"belonging_tasks": ['
        for start in range(0, len(tasks), TASKS_PER_PIECE):
            piece = ", ".join([task.to_json() for task in tasks[start : start + TASKS_PER_PIECE]])
            yield piece if start == 0 else ", " + piece
        yield "], "

    def _state_pieces(self, jobs: list[Job], written: bool) -> Iterator[str]:
        """The jobs' state JSON in pieces of :data:`JOBS_PER_PIECE` jobs; a job's JSON is
        re-rendered only when it changed (:meth:`Job.state_json`). Each piece is made when
        the writer asks for it: the whole text is never held."""
        for start in range(0, len(jobs), JOBS_PER_PIECE):
            group = jobs[start : start + JOBS_PER_PIECE]
            if written:
                piece = ", ".join([job.written_json() for job in group])
            else:
                piece = ", ".join([job.state_json() for job in group])
            yield piece if start == 0 else ", " + piece

    def _persisted_jobs(self) -> list[Job]:
        """Every job, including those dropped by ``ratio_unfinished``, in their order.

        The state file keeps the dropped jobs, so it still describes this submission (its
        hash) and a rerun recovers from it.
        """
        return self._generated_jobs if self.dropped_jobs else self.belonging_jobs

    def get_hash(self) -> str:
        """sha1 of the JSON of the static form."""
        sha = hashlib.sha1()
        for chunk in self.json_chunks(if_static=True):
            sha.update(chunk.encode("utf-8"))
        return sha.hexdigest()

    def submission_to_json(self) -> None:
        """Persist the state atomically in the job root (and a copy in ~/.dpdispatcher).

        The journals beside both are removed first (why: :mod:`dpdispatcher._journal`).
        """
        fname = names.state_file(self.submission_hash)
        ctx = self._bound_machine().context
        self._journal_lines = None
        ctx.remove_appended(_journal.journal_file(self.submission_hash))
        ctx.write_file_chunks(fname, self._json_chunks(False, written=True))  # streamed
        self._state_changes = []
        try:
            record.remove_journal(self.submission_hash)
            # mostly a hard link to that file; else the pieces again (all cached by now)
            record.write(
                self._submission, text=self.json_chunks(), same_as=ctx.file_on_this_host(fname)
            )
        except OSError as err:
            dlog.debug("could not keep a local copy of the state: %s", err)
            return  # no journal beside a local copy that may be stale
        self._journal_lines = 0

    def persist_changes(self, *, submitted: bool) -> None:
        """Save what a poll changed: jobs whose state alone changed are appended to the
        journal beside the state file where the context allows it (see
        :mod:`dpdispatcher._journal`); anything else (``submitted``: jobs were submitted
        or marked) is a full :meth:`submission_to_json`."""
        jobs, count = self._state_changes, self._journal_lines
        limit = JOURNAL_LINES_PER_JOB * len(self.belonging_jobs) + JOURNAL_LINES_MIN
        if (
            submitted
            or count is None
            or count + len(jobs) > limit
            or not changed_only_in_state(jobs)
        ):
            self.submission_to_json()
            return
        text = _journal.journal_lines(jobs)
        self._journal_lines = None  # until both appends are done
        try:
            appended = self._bound_machine().context.append_file(
                _journal.journal_file(self.submission_hash), text
            )
            if appended:
                record.append_journal(self.submission_hash, text)
        except OSError as err:
            dlog.debug("could not append to the state journal: %s", err)
            appended = False
        if not appended:
            self.submission_to_json()
            return
        self._state_changes = []
        self._journal_lines = count + len(jobs)

    def try_recover_from_json(self) -> bool:
        """Adopt job ids, states and fail counts persisted by an earlier run, if any.

        The state file in the job root comes first (or one the original left); without
        one, the local copy is read (a run killed while cleaning has renamed the job root
        away, but its local copy, removed last, still says which jobs finished).

        Without any, and with ``previous_submission_hash``, the job root of that
        submission is renamed to this one's and its finished tasks are marked finished
        (a job whose tasks all finished is finished; the others start afresh), as in
        1.1.0. Returns whether anything was recovered.
        """
        ctx = self._bound_machine().context
        if ctx.submission is not self and self.belonging_jobs:
            # e.g. SSH with a home-relative root: not bound before it connects
            ctx.bind_submission(self._submission)
        found = self._persisted_state()
        if found is None:
            if self.previous_submission_hash:
                _previous.adopt_previous(self._submission, self.previous_submission_hash)
                return True
            return False
        kind, text, where = found
        if kind in ("ours", "local copy"):
            runtime = parse_state(text, where, self.serialize(if_static=True))
            runtime = _journal.fold(runtime, self._journal_text(kind), where)
        else:
            runtime = _legacy.parse_legacy_state(
                text, where, [j.job_hash for j in self.belonging_jobs]
            )
        for job in self.belonging_jobs:
            old = runtime[job.job_hash]
            job.job_state, job.job_id, job.fail_count = old.job_state, old.job_id, old.fail_count
        if kind != "local copy":  # a job root is there: it may hold newer job ids
            self._adopt_recorded_job_ids()
        dlog.info("recovered submission %s from %s", self.submission_hash, where)
        return True

    def _persisted_state(self) -> tuple[str, str, str] | None:
        """(kind, text, where) of the persisted state to recover from, or None.

        ``kind`` is ``"ours"`` (the job root's state file), a release of the original
        (its state file in the job root it used) or ``"local copy"``.
        """
        ctx = self._bound_machine().context
        fname = names.state_file(self.submission_hash)
        kind = "ours" if ctx.check_file_exists(fname) else None
        if kind is None:
            kind, fname = _legacy.locate(self._submission) or (None, fname)
        if kind is not None:
            return kind, ctx.read_file(fname), os.path.join(ctx.remote_root, fname)
        local = record.get_submission(self.submission_hash, not_exist_ok=True)
        try:
            return "local copy", local.read_text(encoding="utf-8"), str(local)
        except FileNotFoundError:
            return None

    def _journal_text(self, kind: str) -> str:
        """The journal beside the state file of ``kind`` ("ours" or "local copy")."""
        if kind == "local copy":
            return record.read_journal(self.submission_hash)
        ctx = self._bound_machine().context
        return ctx.read_appended(_journal.journal_file(self.submission_hash))

    def _adopt_recorded_job_ids(self) -> None:
        """Trust the id each submit command recorded: it is newer than any state file."""
        pending = [j for j in self.belonging_jobs if j.job_state != JobStatus.finished]
        recorded = self._bound_machine().recorded_job_ids(pending)
        for job in pending:
            job_id = recorded.get(job.job_hash)
            if job_id and job_id != job.job_id:
                dlog.info(
                    "job %s was submitted as %s before the last stop; re-attaching",
                    job.job_hash,
                    job_id,
                )
                job.job_id, job.job_state = job_id, JobStatus.unknown

    def _save_state_quietly(self) -> None:
        if self.submission_hash and any(j.job_id for j in self.belonging_jobs):
            try:
                self.submission_to_json()
            except Exception as err:  # noqa: BLE001 - already failing; keep the first error
                dlog.warning("could not save the submission state: %s", err)
