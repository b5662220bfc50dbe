"""The state journal: job state changes appended beside the state file between full writes.

``<submission_hash>.journal`` sits beside ``<submission_hash>.json`` (in the job root and
beside its local copy in ``~/.dpdispatcher/submission``). Each line names the jobs (by
hash, with their job id) whose ``job_state`` alone changed, to the same new state, since
the state file was written; a poll appends a line per new state::

    {"job_state": 2, "jobs": {"<job hash>": "<its job id>", ...}}

(The first journals had a line per job, ``{"job": "<hash>", "job_id": "<id>",
"job_state": 2}``; such lines are still read.)

Only contexts that write the state file on this machine append to it (Local and
LazyLocal); on the others every change is a full state write, as before.

Why folding it is crash safe (the order of the writes):

1. A full state write removes each journal before it replaces the state file beside it:
   the job root's journal, the state file (atomic rename), then the local copy's journal
   and the local copy.
2. Lines are appended only after a full write of this process succeeded, and only for
   jobs whose ``job_id``, ``fail_count``, ``failure_reason`` and task states are those of
   that write (:meth:`dpdispatcher.job.Job.changed_only_in_state`); anything else (a
   submission, a failure counted, an adopted job) makes the next write a full one.

So a journal only ever holds lines written after the state file beside it, about the
same scheduler jobs (same ids and fail counts) it records. A crash at any point leaves
one of: the old state file with a prefix of its journal (a torn last line is ignored),
the old state file without a journal (removed, the new file not yet in place), or the
new state file without a journal. In each, every job has a state it went through under
the job id and fail count recorded (a poll's lines may be cut short part way); none
applies a line over a newer state file, since no line outlives the file it follows. Between the
first two, only pure state changes of jobs with unchanged ids are lost, which the next
poll reads from the scheduler and the finish tags again, exactly as it does after a
crash between two full writes; what a full write was persisting (job ids) is covered by
the job id record each submit command leaves, as before. As a last guard a line whose
``job_id`` differs from the state file's is not applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _json_str
from typing import TYPE_CHECKING, Any

from dpdispatcher._state import JobRuntime
from dpdispatcher.dlog import dlog
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.job import Job


def journal_file(submission_hash: str) -> str:
    """The journal's name beside ``<submission_hash>.json``."""
    return f"{submission_hash}.journal"


def journal_lines(jobs: Iterable[Job]) -> str:
    """A line per new state: the jobs (hash to job id) now in it.

    >>> from types import SimpleNamespace as J
    >>> a = J(job_hash="a", job_id="1", job_state=JobStatus.running)
    >>> b = J(job_hash="b", job_id="2", job_state=JobStatus.finished)
    >>> print(journal_lines([a, b]), end="")
    {"job_state": 3, "jobs": {"a": "1"}}
    {"job_state": 5, "jobs": {"b": "2"}}
    """
    by_state: dict[JobStatus, list[Job]] = {}
    for job in jobs:
        group = by_state.get(job.job_state)
        if group is None:
            by_state[job.job_state] = [job]
        else:
            group.append(job)
    return "".join(
        [
            f'{{"job_state": {int(state)}, "jobs": {{{_ids(group)}}}}}\n'
            for state, group in by_state.items()
        ]
    )


def _ids(jobs: list[Job]) -> str:
    """``"<job hash>": "<job id>"`` of each job, as JSON object members (json.dumps of a
    dictionary is several times slower)."""
    return ", ".join([f"{_json_str(job.job_hash)}: {_json_str(str(job.job_id))}" for job in jobs])


def parse_journal(text: str, where: str) -> list[tuple[str, str, JobStatus]]:
    """``(job hash, job id, state)`` of each whole line, in order.

    A last line without its newline (torn by a crash) is ignored; so is everything from
    the first line that is not a valid entry (a warning names it).
    """
    lines = text.split("\n")
    out: list[tuple[str, str, JobStatus]] = []
    for number, line in enumerate(lines[:-1], start=1):  # lines[-1]: after the last newline
        try:
            out.extend(_entries(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            dlog.warning(
                "%s: journal line %d is not valid (%s); the rest is ignored", *(where, number, err)
            )
            break
    return out


def _entries(line: dict[str, Any]) -> list[tuple[str, str, JobStatus]]:
    """``(job hash, job id, state)`` of one journal line (either form)."""
    state = JobStatus(line["job_state"])
    if "jobs" in line:
        return [(str(job_hash), str(job_id), state) for job_hash, job_id in line["jobs"].items()]
    return [(str(line["job"]), str(line["job_id"]), state)]


def fold(runtime: dict[str, JobRuntime], text: str, where: str) -> dict[str, JobRuntime]:
    """``runtime`` (from the state file) with the journal's states applied in order.

    A line about an unknown job or another job id than the state file's is skipped.
    """
    out = dict(runtime)
    for job_hash, job_id, state in parse_journal(text, where):
        old = out.get(job_hash)
        if old is None or old.job_id != job_id:
            continue
        out[job_hash] = JobRuntime(state, old.job_id, old.fail_count)
    return out


def apply(jobs: Iterable[Job], text: str, where: str) -> None:
    """Set the state of ``jobs`` (loaded from the state file) as the journal says."""
    by_hash = {job.job_hash: job for job in jobs}
    for job_hash, job_id, state in parse_journal(text, where):
        job = by_hash.get(job_hash)
        if job is not None and job.job_id == job_id:
            job.job_state = state
