"""IBM Spectrum LSF: ``bsub`` / ``bjobs`` / ``bkill`` behind the Machine hooks.

Everything here is pure. ``bsub`` reads the script from standard input (so that the
``#BSUB`` lines are honoured); one ``bjobs -a -o 'jobid stat' -json id1 id2 ...``
reports every job (LSF 10.1 and later; older versions, which have no ``-json``, are
asked with the plain ``bjobs id1 id2 ...`` table, whose continuation lines, the further
execution hosts of a job on several hosts, are skipped). A job LSF no longer knows
("Job <N> is not found") has ended and is judged by its finish tag; a job the answer
does not mention at all is *unknown* and polled again.

State decisions (the ``bjobs`` manual lists the codes):

- ``PEND``, ``PROV`` (host being provisioned), ``PSUSP`` (suspended while pending)
  and ``WAIT`` (chunk job waiting) are *waiting*; ``RUN``, ``USUSP`` and ``SSUSP``
  (suspended after starting) are *running*.
- ``DONE`` and ``EXIT`` have ended, and so has ``ZOMBI`` (killed while its host was
  unreachable); the finish tag decides.
- ``UNKWN`` (the master lost contact with the execution host) is *running*: LSF
  keeps such jobs through host reboots and the job usually carries on (PSI/J makes
  the same choice); it ends as ``DONE``/``EXIT`` or disappears like any other.
"""

from __future__ import annotations

import json
import re
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
    from dpdispatcher.resources import Resources
    from dpdispatcher.submission import Job

__all__ = [
    "LSF",
    "LSF_STATES",
    "gone_job_ids",
    "gpu_line",
    "parse_bjobs_json",
    "parse_bjobs_table",
    "parse_bsub_output",
]

_W, _R = JobStatus.waiting, JobStatus.running

#: Every ``bjobs`` STAT code and what it means here.
LSF_STATES: tuple[tuple[str, str, JobStatus], ...] = (
    ("PEND", "pending", _W),
    ("PROV", "dispatched; execution host being provisioned", _W),
    ("PSUSP", "suspended while pending", _W),
    ("WAIT", "chunk job waiting to run", _W),
    ("RUN", "running", _R),
    ("USUSP", "suspended by its owner while running", _R),
    ("SSUSP", "suspended by LSF while running", _R),
    ("DONE", "finished with exit code 0", JobStatus.finished),
    ("EXIT", "finished with a non-zero exit code, or killed", JobStatus.terminated),
    ("ZOMBI", "killed while its host was unreachable", JobStatus.terminated),
    ("UNKWN", "master lost contact with the execution host; the job carries on", _R),
)

#: stderr wordings of "this job id is not known (any more)"
_GONE = (
    re.compile(r"Job <(\d+)(?:\[\d+\])?> is not found"),
    re.compile(r"Job <(\d+)(?:\[\d+\])?>: No matching job found"),
)
_NOTHING = ("No unfinished job found", "No job found", "No matching job found")
_BSUB_ID = re.compile(r"Job <(\d+)> is submitted")
_BJOBS_ROW = re.compile(r"^(\d+)(?:\[\d+\])?\s+\S+\s+([A-Z]+)(?:\s|$)")
_BJOBS_HEADER = re.compile(r"^JOBID\s+USER\s+STAT\s")
#: wordings of "bjobs does not know this option" (LSF before 10.1 has no ``-json``)
_NO_SUCH_OPTION = ("llegal option", "nvalid option", "nknown option", "Usage:", "not supported")
_ACTIVE_FIRST = {"RUN": 0, "SSUSP": 0, "USUSP": 0, "UNKWN": 0, "PROV": 1, "PEND": 1, "PSUSP": 1}


# --------------------------------------------------------------------------- pure helpers
def gpu_line(resources: Resources) -> str | None:
    """The GPU request line of the header, or None.

    ``custom_gpu_line`` is used verbatim whenever it is set; otherwise a line is
    written only when ``gpu_usage`` is true and ``gpu_per_node`` > 0, in the new
    (``-gpu``) or the old (``-R rusage``) syntax.

    >>> from dpdispatcher import Resources
    >>> gpu_line(Resources(1, 4, 2, "", 1, kwargs={"gpu_usage": True}))
    '#BSUB -R "select[ngpus >0] rusage[ngpus_excl_p=2]"'
    >>> gpu_line(Resources(1, 4, 2, "", 1, kwargs={"gpu_usage": True, "gpu_new_syntax": True,
    ...                                            "gpu_exclusive": False}))
    "#BSUB -gpu 'num=2:mode=shared:j_exclusive=no'"
    >>> gpu_line(Resources(1, 4, 2, "", 1)) is None
    True
    """
    kwargs = resources.kwargs
    custom = kwargs.get("custom_gpu_line")
    if custom:
        return str(custom)
    gpus = int(resources.gpu_per_node)
    if not kwargs.get("gpu_usage") or gpus <= 0:
        return None
    if kwargs.get("gpu_new_syntax"):
        exclusive = "yes" if kwargs.get("gpu_exclusive", True) else "no"
        return f"#BSUB -gpu 'num={gpus}:mode=shared:j_exclusive={exclusive}'"
    return f'#BSUB -R "select[ngpus >0] rusage[ngpus_excl_p={gpus}]"'


def parse_bsub_output(stdout: str) -> str:
    """The job id in ``Job <N> is submitted to [default] queue <q>.``.

    >>> parse_bsub_output("Job <42> is submitted to default queue <normal>.\\n")
    '42'
    """
    match = _BSUB_ID.search(stdout)
    if match is None:
        raise SchedulerError(f"LSF: no job id in the output of bsub: {stdout!r}")
    return match.group(1)


def parse_bjobs_table(stdout: str) -> dict[str, str]:
    """``bjobs`` rows as ``{job id: STAT}``; only the first three columns are read.

    The header and continuation lines (they start with blanks: further execution hosts
    of a job on several hosts) are skipped; any other unexpected line is logged and
    skipped.

    >>> parse_bjobs_table(
    ...     "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME\\n"
    ...     "3       root    RUN   short      vm          4*vm        longjob    Nov 25 14:56\\n"
    ...     "                                             4*vm2\\n"
    ...     "5       root    PEND  normal     vm                      *sleep 600 Nov 25 14:56\\n")
    {'3': 'RUN', '5': 'PEND'}
    """
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        if not line.strip() or _BJOBS_HEADER.match(line) or line[:1].isspace():
            continue
        match = _BJOBS_ROW.match(line)
        if match is None:
            dlog.warning("LSF: skipped an unexpected bjobs output line %r", line)
            continue
        out.setdefault(match.group(1), match.group(2))
    return out


def parse_bjobs_json(stdout: str) -> tuple[dict[str, str], set[str]]:
    """``bjobs -o 'jobid stat' -json``: ``{job id: STAT}`` and the ids LSF does not know.

    Records of one job (array elements) are combined: an active element wins. A record
    with an ``ERROR`` (``Job <N> is not found``) names a job that has gone.
    Raises :class:`StatusFormatError` when the text is not such a JSON document.

    >>> parse_bjobs_json('{"COMMAND":"bjobs","JOBS":2,"RECORDS":['
    ...     '{"JOBID":"7","STAT":"DONE"},{"JOBID":"9","ERROR":"Job <9> is not found"}]}')
    ({'7': 'DONE'}, {'9'})
    """
    try:
        data = json.loads(stdout)
        records = data["RECORDS"]
    except (ValueError, KeyError, TypeError) as err:
        raise StatusFormatError(f"LSF: bjobs did not answer in JSON ({err})") from err
    states: dict[str, str] = {}
    gone: set[str] = set()
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict):
            continue
        if "ERROR" in record:
            found, other = gone_job_ids(str(record["ERROR"]))
            gone |= found
            for text in other:
                dlog.warning("LSF: bjobs reported %r", text)
            continue
        jid, stat = str(record.get("JOBID", "")), str(record.get("STAT", ""))
        match = re.match(r"^(\d+)", jid)
        if match is None or not stat:
            dlog.warning("LSF: skipped an unexpected bjobs record %r", record)
            continue
        jid = match.group(1)
        if jid not in states or _ACTIVE_FIRST.get(stat, 9) < _ACTIVE_FIRST.get(states[jid], 9):
            states[jid] = stat
    return states, gone


def gone_job_ids(stderr: str) -> tuple[set[str], list[str]]:
    """Ids LSF no longer knows (``""`` stands for "none of them"), and unexplained lines.

    >>> gone_job_ids("Job <7> is not found\\nLSF says no\\n")
    ({'7'}, ['LSF says no'])
    """
    gone: set[str] = set()
    other: list[str] = []
    for line in stderr.splitlines():
        text = line.strip()
        if not text:
            continue
        if any(text.startswith(nothing) for nothing in _NOTHING):
            gone.add("")
            continue
        for pattern in _GONE:
            match = pattern.search(text)
            if match:
                gone.add(match.group(1))
                break
        else:
            other.append(text)
    return gone, other


# --------------------------------------------------------------------------- LSF
class LSF(Machine):
    """LSF: ``bsub < script``, one ``bjobs`` for all jobs, ``bkill``.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="LSF", context_type="LazyLocal", local_root=".")
    >>> job = Job([Task("true", ".")], resources=Resources(2, 4, 1, "gpu", 1,
    ...           kwargs={"gpu_usage": True, "gpu_new_syntax": True}))
    >>> print("\\n".join(m.header_lines(job)))
    #!/bin/bash -l
    #BSUB -e %J.err
    #BSUB -o %J.out
    #BSUB -n 8
    #BSUB -R 'span[ptile=4]'
    #BSUB -q gpu
    #BSUB -gpu 'num=1:mode=shared:j_exclusive=yes'
    """

    state_map = {code: status for code, _, status in LSF_STATES}
    #: the directive prefix the submit command reads
    directive: ClassVar[str] = "#BSUB"
    #: whether a single task's name becomes the job name (``-J``)
    names_jobs: ClassVar[bool] = True
    transient_patterns: ClassVar[tuple[str, ...]] = (
        "is processing your request",  # after the product's name: "LSF is processing ..."
        "not responding ... still trying",
        "LIM is down",
        "LSF is down",
        "mbatchd is down",
        "batch system daemon not responding",
        "Slave LIM configuration is not ready yet",
        "try again later",
        "try later",
    )

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """``gpu_usage``, ``gpu_new_syntax``, ``gpu_exclusive``, ``custom_gpu_line``."""
        from dargs import Argument

        from dpdispatcher.arginfo import custom_gpu_line_argument

        return [
            Argument(
                "gpu_usage",
                bool,
                optional=True,
                default=False,
                doc="Request `gpu_per_node` GPUs in the header (no GPU line if false).",
            ),
            Argument(
                "gpu_new_syntax",
                bool,
                optional=True,
                default=False,
                doc="Use the LSF >= 10.1.0.3 syntax `#BSUB -gpu 'num=...'` instead of "
                '`#BSUB -R "select[ngpus >0] rusage[ngpus_excl_p=...]"`.',
            ),
            Argument(
                "gpu_exclusive",
                bool,
                optional=True,
                default=True,
                doc="With `gpu_new_syntax`: `j_exclusive=yes` (true) or `no` (false).",
            ),
            custom_gpu_line_argument(
                "A GPU request line used verbatim instead of the generated one, e.g. "
                "`#BSUB -gpu 'num=2:gmodel=A100'`."
            ),
        ]

    # -- rendering ----------------------------------------------------------------
    def header_lines(self, job: Job) -> list[str]:
        """Shebang, log files, slots, span, queue, GPUs, job name (SPEC §5)."""
        res = job.resources
        cpus = int(res.cpu_per_node)
        tag = self.directive
        lines = [
            "#!/bin/bash -l",
            f"{tag} -e %J.err",
            f"{tag} -o %J.out",
            f"{tag} -n {int(res.number_node) * cpus}",
            f"{tag} -R 'span[ptile={cpus}]'",
        ]
        if res.queue_name:
            lines.append(f"{tag} -q {directive_value(res.queue_name, 'resources/queue_name')}")
        gpus = self.gpu_request(res)
        if gpus:
            lines.append(gpus)
        given = single_task_name(job) if self.names_jobs else ""
        if given:
            name = scheduler_job_name(given, job.job_hash)
            lines.append(f"{tag} -J {directive_value(name, 'task/task_name')}")
        return lines

    def gpu_request(self, resources: Resources) -> str | None:
        """The GPU line of the header (hook): :func:`gpu_line`."""
        return gpu_line(resources)

    # -- scheduler hooks ------------------------------------------------------------
    def submit_command(self, job: Job, script: str) -> str:
        """``bsub [-J <submit tag>] < <script>`` (bsub reads ``#BSUB`` lines only from
        standard input; the command line wins over them)."""
        name = f"-J {sh(job.submit_tag)} " if job.submit_tag else ""
        return f"bsub {name}< {sh(script)}"

    def find_command(self, tags: Sequence[str]) -> str | None:
        """``bjobs -a -J <tag>`` (the plain table: every LSF version has it) per tag."""
        return tag_loop(tags, 'bjobs -a -J "$t"')

    def parse_find_output(self, result: CommandResult, tags: Sequence[str]) -> dict[str, str]:
        """The (newest) job id listed for each tag."""
        out: dict[str, str] = {}
        for tag, lines in split_tag_blocks(result.stdout).items():
            ids = [m.group(1) for m in map(_BJOBS_ROW.match, lines) if m]
            if ids:
                out[tag] = max(ids, key=int)
        return out

    def parse_submit_output(self, stdout: str) -> str:
        """The number in ``Job <N> is submitted ...``."""
        return parse_bsub_output(stdout)

    status_formats: ClassVar[tuple[str, ...]] = ("json", "text")

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One ``bjobs`` naming every job (JSON, or the plain table on old LSF)."""
        ids = " ".join(sh(job_id(job.job_id)) for job in jobs)
        if self.status_format == "json":
            return f"bjobs -a -o 'jobid stat' -json {ids}"
        return f"bjobs {ids}"

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """STAT per job id; ids LSF no longer knows are left out (ended).

        A job the answer does not mention is reported as not known for certain.
        """
        gone, unexplained = gone_job_ids(result.stderr)
        if self.status_format == "json" and not result.stdout.lstrip().startswith("{"):
            text = result.stderr + result.stdout
            if any(word in text for word in _NO_SUCH_OPTION):
                raise StatusFormatError(f"LSF: bjobs has no JSON output: {text.strip()[:200]}")
        if self.status_format == "json" and result.stdout.strip():
            table, gone_json = parse_bjobs_json(result.stdout)
            gone |= gone_json
        else:
            table = parse_bjobs_table(result.stdout)
        if not result.ok and not table and not gone:
            raise SchedulerError(
                f"{type(self).__name__}: {self.status_command(jobs).split()[0]} failed "
                f"(exit code {result.exit_code}): " + ("; ".join(unexplained) or "no message")
            )
        for text in unexplained:
            dlog.warning("LSF: bjobs said %r", text)
        out: dict[str, str] = {}
        for job in jobs:
            if job.job_id in table:
                out[job.job_id] = table[job.job_id]
            elif job.job_id not in gone and "" not in gone:
                out[job.job_id] = NOT_REPORTED
        return out

    def kill_command(self, job_id: str) -> str:
        """``bkill <id>``."""
        return f"bkill {sh(job_id)}"
