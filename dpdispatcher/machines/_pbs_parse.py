"""PBS's and Torque's state tables and the pure parsers of ``qsub`` and ``qstat`` output
(plain table, PBS Pro JSON, Torque XML) and of "job gone" errors.

They are tested offline against saved real output, and re-exported by
:mod:`dpdispatcher.machines.pbs`, their public import path.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from dpdispatcher.dlog import dlog
from dpdispatcher.errors import SchedulerError, StatusFormatError
from dpdispatcher.utils.job_status import JobStatus

__all__ = [
    "PBS_STATES",
    "QSUB_ID",
    "TORQUE_STATES",
    "gone_job_ids",
    "parse_qstat_json",
    "parse_qstat_table",
    "parse_qstat_xml",
    "parse_qsub_output",
    "sequence_number",
]

_W, _R, _C = JobStatus.waiting, JobStatus.running, JobStatus.completing
_F, _T = JobStatus.finished, JobStatus.terminated

#: PBS Professional / OpenPBS job states (``qstat`` column ``S``) and what they mean here.
PBS_STATES: tuple[tuple[str, str, JobStatus], ...] = (
    ("B", "array job has at least one subjob running", _R),
    ("E", "exiting after having run", _C),
    ("F", "finished (job history, qstat -x)", _F),
    ("H", "held", _W),
    ("K", "killed (SPEC; some PBS variants)", _T),
    ("M", "moved to another server", _W),
    ("Q", "queued", _W),
    ("R", "running", _R),
    ("S", "suspended", _R),
    ("T", "in transit to a new location", _W),
    ("U", "suspended: workstation busy", _R),
    ("W", "waiting for its execution time", _W),
    ("X", "subjob finished or expired", _F),
)

#: Torque job states (``qstat`` column ``S``).
TORQUE_STATES: tuple[tuple[str, str, JobStatus], ...] = (
    ("C", "completed (kept for keep_completed seconds)", _F),
    ("E", "exiting after having run", _C),
    ("H", "held", _W),
    ("Q", "queued", _W),
    ("R", "running", _R),
    ("S", "suspended", _R),
    ("T", "being moved to a new location", _W),
    ("W", "waiting for its execution time", _W),
)

#: stderr wordings of "this job id is not known (any more)": the job has ended
_GONE = (
    re.compile(r"Unknown Job Id(?: Error)? (\S+)"),  # PBS Pro; Torque adds "Error"
    re.compile(r"(\S+) Job has finished, use -x"),  # PBS Pro qstat without -x
    re.compile(r"Job has finished (\S+)"),  # PBS Pro qdel
)
#: a ``qsub`` answer: ``1234.server`` (``1234[].server`` for an array)
QSUB_ID = re.compile(r"^\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.-]+)?$")
#: a ``qstat`` row: id ... state letter, queue (PBS Pro cuts long ids with ``*``)
_QSTAT_ROW = re.compile(r"^(\d\S*)\s.*\s([A-Z])\s+(\S+)\s*$")
_QSTAT_HEADER = re.compile(r"^Job [Ii][Dd]\s+Name\s+User\s|^-{5,}[- ]*$")


def parse_qsub_output(stdout: str) -> str:
    """The job id ``qsub`` printed (the last line that is a PBS job id).

    >>> parse_qsub_output("1234.pbsserver\\n")
    '1234.pbsserver'
    """
    for line in reversed(stdout.splitlines()):
        token = line.strip().split(maxsplit=1)[0] if line.strip() else ""
        if QSUB_ID.match(token):
            return token
    raise SchedulerError(f"PBS: no job id in the output of qsub: {stdout!r}")


def sequence_number(pbs_id: str) -> str:
    """The part of a PBS job id that ``qstat`` never cuts: ``12.srv.example`` -> ``12``.

    >>> sequence_number("3084.groq-r01-co*"), sequence_number("17[].server")
    ('3084', '17[]')
    """
    return pbs_id.rstrip("*").split(".", 1)[0]


def parse_qstat_table(stdout: str) -> dict[str, str]:
    """``qstat`` (default format) rows as ``{sequence number: state letter}``.

    Header and dash lines are skipped; any other unexpected line is logged and skipped.

    >>> parse_qstat_table(
    ...     "Job id            Name             User              Time Use S Queue\\n"
    ...     "----------------  ---------------- ----------------  -------- - -----\\n"
    ...     "3.pbsserver       longjob          root              00:00:00 R workq   \\n")
    {'3': 'R'}
    """
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        if not line.strip() or _QSTAT_HEADER.match(line):
            continue
        match = _QSTAT_ROW.match(line)
        if match is None:
            dlog.warning("PBS: skipped an unexpected qstat output line %r", line)
            continue
        out[sequence_number(match.group(1))] = match.group(2)
    return out


def parse_qstat_json(stdout: str) -> dict[str, str]:
    """PBS Pro ``qstat -f -F json`` as ``{sequence number: job_state}``.

    A document without ``Jobs`` (no job matched) is empty. Raises
    :class:`StatusFormatError` when the text is not such a JSON document.

    >>> parse_qstat_json('{"pbs_version":"20.0.1","Jobs":{"1008.qot-calc0":'
    ...                  '{"Job_Name":"ntest","job_state":"R"}}}')
    {'1008': 'R'}
    """
    try:
        data = json.loads(stdout)
        jobs = data.get("Jobs", {})
    except (ValueError, AttributeError) as err:
        raise StatusFormatError(f"PBS: qstat did not answer in JSON ({err})") from err
    out: dict[str, str] = {}
    for jid, attrs in jobs.items() if isinstance(jobs, dict) else []:
        state = attrs.get("job_state") if isinstance(attrs, dict) else None
        if not isinstance(state, str) or not state:
            dlog.warning("PBS: skipped a qstat record without job_state: %r", jid)
            continue
        out[sequence_number(str(jid))] = state
    return out


def parse_qstat_xml(stdout: str) -> dict[str, str]:
    """Torque ``qstat -x`` (XML) as ``{sequence number: job_state}``.

    Raises :class:`StatusFormatError` when the text is not such an XML document.

    >>> parse_qstat_xml('<?xml version="1.0"?>\\n<Data><Job><Job_Id>72.c0</Job_Id>'
    ...                 '<job_state>R</job_state></Job></Data>')
    {'72': 'R'}
    """
    text = stdout.strip()
    if not text:
        return {}
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise StatusFormatError(f"Torque: qstat -x did not answer in XML ({err})") from err
    out: dict[str, str] = {}
    for job in root.iter("Job"):
        jid, state = job.findtext("Job_Id"), job.findtext("job_state")
        if not jid or not state:
            dlog.warning("Torque: skipped a qstat -x record without Job_Id/job_state")
            continue
        out[sequence_number(jid.strip())] = state.strip()
    return out


def gone_job_ids(stderr: str) -> tuple[set[str], list[str]]:
    """Sequence numbers of jobs the server no longer knows, and the unexplained lines.

    >>> gone_job_ids("qstat: Unknown Job Id Error 7.torque\\nqstat: oops\\n")
    ({'7'}, ['qstat: oops'])
    """
    gone: set[str] = set()
    other: list[str] = []
    for line in stderr.splitlines():
        if not line.strip():
            continue
        for pattern in _GONE:
            match = pattern.search(line)
            if match:
                gone.add(sequence_number(match.group(1)))
                break
        else:
            other.append(line.strip())
    return gone, other


# --------------------------------------------------------------------------- PBS
