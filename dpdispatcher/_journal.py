"""The state journal: job state changes appended beside the state file between full writes.

``<submission_hash>.journal`` sits beside ``<submission_hash>.json`` (in the job root and
beside its local copy in ``~/.dpdispatcher/submission``). A poll appends one line: the
jobs (by hash) whose ``job_state`` alone changed since the state file was written, with
their job ids and new states, in three lists of one length::

    {"jobs": ["<job hash>", ...], "job_ids": ["<its job id>", ...], "job_states": [3, ...]}

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
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring_ascii as _json_str
from typing import TYPE_CHECKING, Any

from dpdispatcher._script.quoting import ascii_digits
from dpdispatcher._state import JobRuntime
from dpdispatcher.dlog import dlog
from dpdispatcher.utils.job_status import STATE_TEXT, JobStatus, state_text

if TYPE_CHECKING:
    from dpdispatcher.job import Job


def journal_file(submission_hash: str) -> str:
    """The journal's name beside ``<submission_hash>.json``."""
    return f"{submission_hash}.journal"


def journal_lines(jobs: Sequence[Job]) -> str:
    """One line: the jobs (by hash), their job ids and their states now, as three lists.

    >>> from types import SimpleNamespace as J
    >>> a = J(job_hash="a", job_id="1", job_state=JobStatus.running)
    >>> b = J(job_hash="b", job_id="2", job_state=JobStatus.finished)
    >>> print(journal_lines([a, b]), end="")
    {"jobs": ["a", "b"], "job_ids": ["1", "2"], "job_states": [3, 5]}
    """
    if not jobs:
        return ""
    # job hashes are SHA-1 hex digests (Job.get_hash): nothing in them to escape
    hashes = '", "'.join([job.job_hash for job in jobs])
    ids = _json_strings([job.job_id for job in jobs])
    text = STATE_TEXT  # not state_text(): a call per job costs as much as the rest
    states = ", ".join([text.get(job.job_state) or state_text(job.job_state) for job in jobs])
    return f'{{"jobs": ["{hashes}"], "job_ids": {ids}, "job_states": [{states}]}}\n'


def _json_strings(strings: list[str]) -> str:
    """``json.dumps(strings)``; strings of digits (most job ids) joined as they are.

    >>> _json_strings(["12", "13"]), _json_strings(["12.pbs", 'a"']), _json_strings([12, "13"])
    ('["12", "13"]', '["12.pbs", "a\\\\""]', '["12", "13"]')
    """
    try:
        digits = ascii_digits("".join(strings))
    except TypeError:  # a job id assigned by hand as a number: recorded as its text
        strings = [str(s) for s in strings]
        digits = ascii_digits("".join(strings))
    if digits:
        joined = '", "'.join(strings)
        return f'["{joined}"]'
    return "[" + ", ".join([_json_str(s) for s in strings]) + "]"


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
    if "jobs" not in line:  # the first journals' form: a line per job
        return [(str(line["job"]), str(line["job_id"]), JobStatus(line["job_state"]))]
    hashes, ids, states = line["jobs"], line["job_ids"], line["job_states"]
    if not len(hashes) == len(ids) == len(states):
        raise ValueError("its lists differ in length")
    return [(str(h), str(i), JobStatus(s)) for h, i, s in zip(hashes, ids, states)]


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
