"""Slurm's state table and the pure parsers of ``sbatch``, ``squeue`` and ``sacct`` output.

They are tested offline against saved real output, and re-exported by
:mod:`dpdispatcher.machines.slurm`, their public import path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dpdispatcher.dlog import dlog
from dpdispatcher.errors import SchedulerError
from dpdispatcher.utils.job_status import JobStatus

__all__ = [
    "SLURM_STATES",
    "base_job_id",
    "combine_states",
    "parse_sacct_output",
    "parse_sbatch_output",
    "parse_squeue_comments",
    "parse_squeue_output",
]

_W, _R, _C = JobStatus.waiting, JobStatus.running, JobStatus.completing
_F, _T = JobStatus.finished, JobStatus.terminated

#: Every Slurm job state: (``squeue %t`` code, long name used by ``%T`` and sacct, status).
#: ``finished`` / ``terminated`` mean "the job has ended": the finish tag decides.
SLURM_STATES: tuple[tuple[str, str, JobStatus], ...] = (
    ("PD", "PENDING", _W),
    ("CF", "CONFIGURING", _W),
    ("S", "SUSPENDED", _W),
    ("RQ", "REQUEUED", _W),  # completing job being requeued; will pend again
    ("RF", "REQUEUE_FED", _W),  # requeued by a federation sibling
    ("RH", "REQUEUE_HOLD", _W),  # requeued and held
    ("RD", "RESV_DEL_HOLD", _W),  # held because its reservation was deleted
    ("R", "RUNNING", _R),
    ("RS", "RESIZING", _R),
    ("SI", "SIGNALING", _R),
    ("ST", "STOPPED", _R),  # SIGSTOP-ed but keeps its allocation
    ("CG", "COMPLETING", _C),
    ("SO", "STAGE_OUT", _C),  # staging out after the run
    ("CD", "COMPLETED", _F),
    ("F", "FAILED", _T),
    ("CA", "CANCELLED", _T),
    ("TO", "TIMEOUT", _T),
    ("NF", "NODE_FAIL", _T),
    ("PR", "PREEMPTED", _T),
    ("BF", "BOOT_FAIL", _T),
    ("DL", "DEADLINE", _T),
    ("OOM", "OUT_OF_MEMORY", _T),
    ("SE", "SPECIAL_EXIT", _T),  # ended with a special exit value (then held)
    ("RV", "REVOKED", _T),  # federation: runs on another cluster
)

#: ``%i %t``: ``7``, ``7_3``, ``7_[2-5%2]`` or ``7+1``, then the state code
_SQUEUE_LINE = re.compile(r"^(\d+)(?:_\S+|\+\d+)?\s+([A-Z]+)$")
_PRIORITY = {JobStatus.running: 0, JobStatus.completing: 1, JobStatus.waiting: 2}


def parse_sbatch_output(stdout: str) -> str:
    """The job id printed by ``sbatch --parsable`` (``id`` or ``id;cluster``).

    >>> parse_sbatch_output("1234;cluster\\n")
    '1234'
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    found = lines[-1].split(";", 1)[0].strip() if lines else ""
    if not found.isdigit():
        raise SchedulerError(f"Slurm: no job id in the output of sbatch: {stdout!r}")
    return found


def base_job_id(squeue_id: str) -> str:
    """The job an ``squeue %i`` entry belongs to: ``7_3``, ``7_[2-5%2]``, ``7+1`` -> ``7``."""
    return re.split(r"[_+]", squeue_id, maxsplit=1)[0]


def parse_squeue_output(stdout: str) -> dict[str, list[str]]:
    """``squeue --format='%i %t'`` lines as ``{job id: [state code of each line]}``.

    Array elements and heterogeneous components are gathered under their job's id.
    Any other line is logged and skipped rather than guessed at.
    """
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        match = _SQUEUE_LINE.match(line.strip())
        if match is None:
            dlog.warning("Slurm: skipped an unexpected squeue output line %r", line)
            continue
        out.setdefault(match.group(1), []).append(match.group(2))
    return out


def parse_squeue_comments(stdout: str, tags: Sequence[str]) -> dict[str, str]:
    """``squeue --format='%i|%k'`` lines: the job id of each wanted tag (the comment).

    >>> parse_squeue_comments("7|(null)\\n9_[1-3]|dpdabc\\n", ["dpdabc", "dpdxyz"])
    {'dpdabc': '9'}
    """
    wanted = set(tags)
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        jid, sep, comment = line.strip().partition("|")
        if sep and comment.strip() in wanted and re.match(r"^\d", jid):
            out.setdefault(comment.strip(), base_job_id(jid))
    return out


def combine_states(codes: Sequence[str], state_map: dict[str, JobStatus]) -> str:
    """One state for a job shown on several lines (array elements).

    Anything still running wins, then completing, then waiting, then an unmapped code
    (so that it is reported), and only when every line has ended an ended code.
    """

    def rank(code: str) -> int:
        status = state_map.get(code)
        if status is None:
            return 3
        return _PRIORITY.get(status, 4)

    return min(codes, key=rank)


def parse_sacct_output(stdout: str) -> dict[str, str]:
    """``sacct --parsable2 --format=JobID,State,ExitCode`` lines as ``{id: "STATE exit"}``.

    Job steps (``7.batch``) are skipped; ``CANCELLED by 0`` keeps its detail.
    """
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        fields = line.split("|")
        if len(fields) >= 3 and "." not in fields[0]:
            out.setdefault(base_job_id(fields[0]), f"{fields[1]} (exit code {fields[2]})")
    return out
