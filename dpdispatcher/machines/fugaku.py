"""Fujitsu Technical Computing Suite (Fugaku): ``pjsub`` / ``pjstat`` / ``pjdel`` hooks.

Everything here is pure. ``pjsub <script>`` answers ``[INFO] PJM 0000 pjsub Job N
submitted.`` (a refusal is an ``[ERR.]`` line, sometimes with exit code 0, so the id
must be found in the output). One status command asks ``pjstat`` for the jobs that
are still queued or running and ``pjstat -H`` (the history) for the ones that have
ended, both restricted to the columns job id, state and reason
(``-v --choose jid,st,ermsg``); a job in neither list has left the system and is
judged by its finish tag.

State decisions (``pjstat`` ST column, Fujitsu TCS job states):

- ``ACC`` (accepted), ``QUE`` (waiting), ``RNA`` (acquiring resources), ``RNP``
  (prologue running) and ``HLD`` (held) are *waiting*;
- ``RUN`` is *running*, and so are ``SPP``/``SPD``/``RSM`` (being suspended,
  suspended, resuming: the job keeps its nodes);
- ``RNE`` (epilogue running) and ``RNO`` (exit processing) are *completing*: the
  script is over, the job is polled again until it reaches the history;
- ``EXT`` (ended), ``CCL`` (cancelled), ``ERR`` (ended in error) and ``RJT``
  (rejected) have ended: the finish tag decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dpdispatcher._script.quoting import directive_value, job_id, sh
from dpdispatcher.base_context import CommandResult
from dpdispatcher.errors import ConfigurationError, SchedulerError, TransientSchedulerError
from dpdispatcher.machine import Machine
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.submission import Job

__all__ = [
    "FUGAKU_STATES",
    "Fugaku",
    "parse_pjstat_tables",
    "parse_pjsub_output",
    "pjstat_rows",
]

_W, _R, _C = JobStatus.waiting, JobStatus.running, JobStatus.completing
_F, _T = JobStatus.finished, JobStatus.terminated

#: Every ``pjstat`` ST code and what it means here.
FUGAKU_STATES: tuple[tuple[str, str, JobStatus], ...] = (
    ("ACC", "accepted", _W),
    ("QUE", "waiting for execution", _W),
    ("RNA", "acquiring resources", _W),
    ("RNP", "running the prologue", _W),
    ("HLD", "held", _W),
    ("RUN", "running", _R),
    ("SPP", "being suspended", _R),
    ("SPD", "suspended", _R),
    ("RSM", "resuming", _R),
    ("RNE", "running the epilogue", _C),
    ("RNO", "exit processing", _C),
    ("EXT", "ended", _F),
    ("CCL", "cancelled", _T),
    ("ERR", "ended in error", _T),
    ("RJT", "rejected", _T),
)

_PJSUB_ID = re.compile(r"\[INFO\] PJM \d+ pjsub Job (\d+) submitted")
#: ``[ERR.] PJM 0211 pjstat Invalid jobid: 12.``: the id is unknown to the job manager
_GONE = re.compile(r"Invalid jobid", re.IGNORECASE)
_CHOOSE = "-v --choose jid,st,ermsg"


def parse_pjsub_output(stdout: str) -> str:
    """The job id in ``[INFO] PJM 0000 pjsub Job N submitted.``.

    >>> parse_pjsub_output("[INFO] PJM 0000 pjsub Job 167661 submitted.\\n")
    '167661'
    """
    match = _PJSUB_ID.search(stdout)
    if match is None:
        raise SchedulerError(f"Fugaku: no job id in the output of pjsub: {stdout.strip()!r}")
    return match.group(1)


def pjstat_rows(stdout: str) -> Iterator[dict[str, str]]:
    """Each row of ``pjstat`` tables (one or several, each under its ``JOB_ID`` header)
    as ``{column: value}``; the columns are found by their header names, so the default
    and the ``--choose`` layouts both parse. A line before any header raises
    :class:`SchedulerError`.

    >>> next(pjstat_rows("JOB_ID  JOB_NAME  MD  ST\\n238     job.sh    NM  RUN\\n"))
    {'JOB_ID': '238', 'JOB_NAME': 'job.sh', 'MD': 'NM', 'ST': 'RUN'}
    """
    columns: list[str] | None = None
    for line in stdout.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "JOB_ID":
            columns = fields
            continue
        if columns is None:
            raise SchedulerError(f"Fugaku: unexpected pjstat output line {line!r}")
        yield dict(zip(columns, fields))


def parse_pjstat_tables(stdout: str) -> dict[str, str]:
    """``pjstat`` tables as ``{id: ST}``; a job listed twice (current list, then history)
    keeps its first state.

    >>> parse_pjstat_tables(
    ...     "JOB_ID     ST  REASON\\n167727     EXT COMPLETED\\n167728     RNO -\\n")
    {'167727': 'EXT', '167728': 'RNO'}
    """
    out: dict[str, str] = {}
    for row in pjstat_rows(stdout):
        if "ST" not in row:
            raise SchedulerError(f"Fugaku: pjstat row without an ST column: {row}")
        out.setdefault(row["JOB_ID"], row["ST"])
    return out


class Fugaku(Machine):
    """Fugaku (Fujitsu TCS): ``pjsub``, one ``pjstat`` + ``pjstat -H`` per poll, ``pjdel``.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="Fugaku", context_type="LazyLocal", local_root=".")
    >>> job = Job([Task("true", ".")], resources=Resources(2, 48, 0, "small", 1))
    >>> for line in m.header_lines(job):
    ...     print(repr(line))
    '#!/bin/bash -l'
    '#PJM -L "rscgrp=small"'
    '#PJM -L "node=2" '
    '#PJM --mpi "max-proc-per-node=48"'
    """

    state_map = {code: status for code, _, status in FUGAKU_STATES}
    #: Fujitsu does not publish the wording of a job manager that is briefly away;
    #: these are the operating system's words for a connection that failed.
    transient_patterns = ("Connection refused", "Connection timed out", "temporarily")

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """Fugaku takes no ``resources.kwargs``."""
        return []

    # -- rendering ----------------------------------------------------------------
    def header_lines(self, job: Job) -> list[str]:
        """Shebang, resource group, nodes, processes per node (``#PJM`` directives)."""
        res = job.resources
        lines = ["#!/bin/bash -l"]
        if res.queue_name:
            queue = directive_value(res.queue_name, "resources/queue_name")
            if '"' in queue or "," in queue:
                raise ConfigurationError(
                    f"resources/queue_name: {queue!r} cannot be a Fugaku resource group "
                    "(no quotes or commas)"
                )
            lines.append(f'#PJM -L "rscgrp={queue}"')
        lines.append(f'#PJM -L "node={int(res.number_node)}" ')
        lines.append(f'#PJM --mpi "max-proc-per-node={int(res.cpu_per_node)}"')
        return lines

    # -- scheduler hooks ------------------------------------------------------------
    def submit_command(self, job: Job, script: str) -> str:
        """``pjsub [-N <submit tag>] <script>`` (the tag finds the job again after an
        ambiguous submission)."""
        name = f"-N {sh(job.submit_tag)} " if job.submit_tag else ""
        return f"pjsub {name}{sh(script)}"

    def find_command(self, tags: Sequence[str]) -> str | None:
        """``pjstat`` and ``pjstat -H``: every job of the user, with its JOB_NAME."""
        return "pjstat; pjstat -H"

    def parse_find_output(self, result: CommandResult, tags: Sequence[str]) -> dict[str, str]:
        """The (newest) job id listed under each tag's job name."""
        wanted = set(tags)
        out: dict[str, str] = {}
        for row in pjstat_rows(result.stdout):
            name, jid = row.get("JOB_NAME", ""), row["JOB_ID"]
            if name in wanted and jid.isdigit() and int(jid) > int(out.get(name, "0")):
                out[name] = jid
        return out

    def parse_submit_output(self, stdout: str) -> str:
        """The number in ``[INFO] PJM 0000 pjsub Job N submitted.``."""
        return parse_pjsub_output(stdout)

    def status_command(self, jobs: Sequence[Job]) -> str:
        """``pjstat`` (queued and running) then ``pjstat -H`` (ended), for every job."""
        ids = " ".join(sh(job_id(job.job_id)) for job in jobs)
        return f"pjstat {_CHOOSE} {ids}; pjstat -H {_CHOOSE} {ids}"

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """ST per job id; a job in neither list has left (judged by its tag)."""
        errors = [
            line.strip()
            for line in result.stderr.splitlines()
            if line.strip() and not _GONE.search(line)
        ]
        if errors:
            if self.is_transient(result):
                raise TransientSchedulerError(f"Fugaku: pjstat deferred: {'; '.join(errors)}")
            raise SchedulerError(f"Fugaku: pjstat failed: {'; '.join(errors)}")
        table = parse_pjstat_tables(result.stdout)
        return {job.job_id: table[job.job_id] for job in jobs if job.job_id in table}

    def kill_command(self, job_id: str) -> str:
        """``pjdel <id>``."""
        return f"pjdel {sh(job_id)}"
