"""PBS Professional / OpenPBS and Torque: ``qsub`` / ``qstat`` / ``qdel`` behind the hooks.

Everything here is pure: header lines, commands, parsers and the state tables. PBS
Pro is asked with ``qstat -f -F json -x`` (its job history shows finished jobs as
``F``); versions without JSON output get the plain ``qstat -x`` table. Torque has no
history (its ``-x`` means XML: ``qstat -x`` is what Torque is asked) and keeps
completed jobs as ``C`` for a while. A job neither tool knows any more ("Unknown Job
Id", "Job has finished") has ended and is judged by its finish tag; a job the answer
does not mention at all is *unknown* and polled again. A JSON answer that leaves out a
job without saying why (OpenPBS builds that answer only the first of several jobs,
openpbs/openpbs#2672) switches the run to the plain table at once.

State decisions (the tools' manuals list the codes; what they mean for us):

- ``E`` (exiting after having run: the script is over, files are being staged out)
  is *completing*: the job is polled again until it shows ``F``/``C`` or leaves, so
  its output files are in place before it is judged.
- ``S``/``U`` (suspended after starting) are *running*: the job keeps its place.
- ``M`` (moved to another server) is *waiting*: the job goes on elsewhere.
- ``F``/``C``/``X`` have ended; ``K`` (listed by the project's SPEC for PBS
  variants that report killed jobs so) too; the finish tag decides.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher._reconcile import split_tag_blocks, tag_loop
from dpdispatcher._script.quoting import directive_value, job_id, scheduler_job_name, sh
from dpdispatcher.base_context import CommandResult
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import SchedulerError, StatusFormatError
from dpdispatcher.job import single_task_name
from dpdispatcher.machine import NOT_REPORTED, Machine
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.submission import Job

__all__ = [
    "PBS",
    "PBS_STATES",
    "SGE",
    "TORQUE_STATES",
    "Torque",
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
_QSUB_ID = re.compile(r"^\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.-]+)?$")
#: a ``qstat`` row: id ... state letter, queue (PBS Pro cuts long ids with ``*``)
_QSTAT_ROW = re.compile(r"^(\d\S*)\s.*\s([A-Z])\s+(\S+)\s*$")
_QSTAT_HEADER = re.compile(r"^Job [Ii][Dd]\s+Name\s+User\s|^-{5,}[- ]*$")

#: wordings of "qstat does not know this option" (PBS Pro before JSON output)
_NO_SUCH_OPTION = ("invalid option", "illegal option", "usage:")

#: transient "server not reachable" wordings (PBS Pro and Torque)
_TRANSIENT = (
    "cannot connect to server",
    "Cannot connect to specified server host",
    "Error communicating with",
    "pbs_iff: cannot",
    "End of File",
    "Premature end of message",
)


# --------------------------------------------------------------------------- pure helpers
def parse_qsub_output(stdout: str) -> str:
    """The job id ``qsub`` printed (the last line that is a PBS job id).

    >>> parse_qsub_output("1234.pbsserver\\n")
    '1234.pbsserver'
    """
    for line in reversed(stdout.splitlines()):
        token = line.strip().split(maxsplit=1)[0] if line.strip() else ""
        if _QSUB_ID.match(token):
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
class PBS(Machine):
    """PBS Professional / OpenPBS: ``qsub``, one ``qstat -x`` for all jobs, ``qdel``.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="PBS", context_type="LazyLocal", local_root=".")
    >>> job = Job([Task("true", ".")], resources=Resources(2, 4, 1, "workq", 1))
    >>> print("\\n".join(m.header_lines(job)))
    #!/bin/bash -l
    #PBS -l select=2:ncpus=4:ngpus=1
    #PBS -j oe
    #PBS -q workq
    """

    state_map = {code: status for code, _, status in PBS_STATES}
    transient_patterns = _TRANSIENT
    #: longest job name written (the original's; old Torque accepts no more)
    job_name_max = 15
    #: options of the text ``qstat`` (PBS Pro: ``-x`` includes finished jobs from the history)
    qstat_options = "-x "
    status_formats: ClassVar[tuple[str, ...]] = ("json", "text")

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """PBS takes no ``resources.kwargs``."""
        return []

    # -- rendering ----------------------------------------------------------------
    def resource_line(self, job: Job) -> str:
        """``#PBS -l select=N:ncpus=C[:ngpus=G]``."""
        res = job.resources
        line = f"#PBS -l select={int(res.number_node)}:ncpus={int(res.cpu_per_node)}"
        if res.gpu_per_node > 0:
            line += f":ngpus={int(res.gpu_per_node)}"
        return line

    def header_lines(self, job: Job) -> list[str]:
        """Shebang, resources, ``-j oe``, queue, job name (SPEC §5)."""
        res = job.resources
        lines = ["#!/bin/bash -l", self.resource_line(job), "#PBS -j oe"]
        if res.queue_name:
            lines.append(f"#PBS -q {directive_value(res.queue_name, 'resources/queue_name')}")
        name = single_task_name(job)
        if name:
            safe = scheduler_job_name(name, job.job_hash, self.job_name_max, letter_first=True)
            lines.append(f"#PBS -N {directive_value(safe, 'task/task_name')}")
        return lines

    # -- scheduler hooks ------------------------------------------------------------
    def scheduler_name(self, job: Job) -> str:
        """The job name given to ``qsub -N``: the submit tag, else the name of a single
        named task, else ``dp-<job hash[:8]>`` (PBS Pro 11-13 would otherwise derive a
        name from the script's file name, which starts with a dot, and refuse it)."""
        given = job.submit_tag or job.single_task_name()
        return scheduler_job_name(given, job.job_hash, self.job_name_max, letter_first=True)

    def submit_command(self, job: Job, script: str) -> str:
        """``qsub -N <name> <script>``."""
        return f"qsub -N {sh(self.scheduler_name(job))} {sh(script)}"

    def find_command(self, tags: Sequence[str]) -> str | None:
        """``qselect -N <tag>`` for each tag (PBS Pro: ``-x`` adds finished jobs)."""
        history = "-x " if self.qstat_options.strip() == "-x" else ""
        return tag_loop(tags, f'qselect {history}-N "$t"')

    def parse_find_output(self, result: CommandResult, tags: Sequence[str]) -> dict[str, str]:
        """The (newest) job id ``qselect`` printed for each tag."""
        out: dict[str, str] = {}
        for tag, lines in split_tag_blocks(result.stdout).items():
            ids = [line.split()[0] for line in lines if _QSUB_ID.match(line.split()[0])]
            if ids:
                out[tag] = max(ids, key=lambda jid: int(re.sub(r"\D.*", "", jid) or 0))
        return out

    def parse_submit_output(self, stdout: str) -> str:
        """The job id (``seq.server``) qsub printed."""
        return parse_qsub_output(stdout)

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One ``qstat`` naming every job, in :attr:`status_format`."""
        ids = " ".join(sh(job_id(job.job_id)) for job in jobs)
        option = {"json": "-f -F json -x ", "xml": "-x "}.get(self.status_format, "")
        return f"qstat {option or self.qstat_options}{ids}"

    def _parse_table(self, result: CommandResult) -> dict[str, str]:
        """The answer's states by sequence number, in the format asked for."""
        stdout = result.stdout
        if self.status_format == "text" or not stdout.strip():
            if self.status_format != "text":
                text = (result.stderr + stdout).lower()
                if any(word in text for word in _NO_SUCH_OPTION):
                    raise StatusFormatError(
                        f"{type(self).__name__}: qstat has no {self.status_format} output: "
                        f"{result.stderr.strip()[:200]}"
                    )
            return parse_qstat_table(stdout)
        if self.status_format == "json":
            return parse_qstat_json(stdout)
        return parse_qstat_xml(stdout)

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """State letter per job id; ids the server no longer knows are left out (ended).

        A job the answer does not mention at all is reported as not known for certain.
        """
        table = self._parse_table(result)
        gone, unexplained = gone_job_ids(result.stderr)
        if not result.ok and not table and not gone:
            raise SchedulerError(
                f"{type(self).__name__}: qstat failed (exit code {result.exit_code}): "
                + ("; ".join(unexplained) or "no message")
            )
        for text in unexplained:
            dlog.warning("%s: qstat said %r", type(self).__name__, text)
        out: dict[str, str] = {}
        for job in jobs:
            seq = sequence_number(job.job_id)
            if seq in table:
                out[job.job_id] = table[seq]
            elif seq not in gone:
                out[job.job_id] = NOT_REPORTED
        unanswered = sum(state == NOT_REPORTED for state in out.values())
        if unanswered and result.ok and self.status_format == "json":
            # OpenPBS builds answer only the first of several jobs in JSON (openpbs#2672)
            raise StatusFormatError(
                f"{type(self).__name__}: qstat -F json left out {unanswered} of the "
                f"{len(jobs)} jobs asked for without an error (OpenPBS issue 2672)"
            )
        return out

    def kill_command(self, job_id: str) -> str:
        """``qdel <id>``."""
        return f"qdel {sh(job_id)}"


# --------------------------------------------------------------------------- Torque
class Torque(PBS):
    """Torque: as PBS, with ``-l nodes=N:ppn=C[:gpus=G]`` and a plain ``qstat``.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="Torque", context_type="LazyLocal", local_root=".")
    >>> job = Job([Task("true", ".")], resources=Resources(1, 8, 2, "", 1))
    >>> print("\\n".join(m.header_lines(job)))
    #!/bin/bash -l
    #PBS -l nodes=1:ppn=8:gpus=2
    #PBS -j oe
    """

    state_map = {code: status for code, _, status in TORQUE_STATES}
    #: Torque's ``-x`` means XML; completed jobs are listed as ``C`` anyway
    qstat_options = ""
    status_formats: ClassVar[tuple[str, ...]] = ("xml", "text")

    def resource_line(self, job: Job) -> str:
        """``#PBS -l nodes=N:ppn=C[:gpus=G]``."""
        res = job.resources
        line = f"#PBS -l nodes={int(res.number_node)}:ppn={int(res.cpu_per_node)}"
        if res.gpu_per_node > 0:
            line += f":gpus={int(res.gpu_per_node)}"
        return line


# The original defined SGE in this module; its import path keeps working.
from dpdispatcher.machines.sge import SGE  # noqa: E402
