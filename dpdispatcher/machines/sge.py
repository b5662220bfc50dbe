"""(Son of) Grid Engine: ``qsub`` / ``qstat`` / ``qdel`` behind the Machine hooks.

``qstat`` cannot be asked about given job ids, so one ``qstat -xml -u <user>`` lists
all of the user's unfinished jobs (the plain table is the fallback) and a job not
listed has ended (it is judged by its finish tag). Each job is submitted with its
submit tag as its name (``qsub -N``), so that a submission whose answer was lost is
found again in the same listing. Grid Engine shows a job's state as a combination of
letters (``qw``, ``hqw``, ``Eqw``, ``dr``, ``Rr`` ...); the table below has every
combination the ``qstat(1)`` manual lists, and :func:`sge_state_by_letters`
classifies any other combination by its letters.

State decisions:

- ``E`` (error: ``Eqw``, ``Ehqw``) is *terminated*: the job will never run unless an
  administrator clears it, so it is judged by its tag (none) and resubmitted. The
  submission then runs :meth:`SGE.settle_terminated`, an explicit step that deletes
  the stuck job (``qdel``) and logs its ``error reason`` (``qstat -j``).
- ``d`` (deletion requested: ``dr``, ``dt`` ...) is *terminated*: Grid Engine kills
  the job's processes at once and the row only lingers until the execution daemon
  confirms, which never happens when that daemon is gone; waiting for it would hang
  the submission.
- ``s``/``S``/``T`` (suspended) and ``hr`` are *running*: the job keeps its place.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher._script.quoting import directive_value, job_id, scheduler_job_name, sh
from dpdispatcher.base_context import CommandResult
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import SchedulerError, StatusFormatError
from dpdispatcher.job import single_task_name
from dpdispatcher.machine import Machine
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.submission import Job

__all__ = [
    "SGE",
    "SGE_STATES",
    "parse_error_reasons",
    "parse_qstat_table",
    "parse_qstat_xml",
    "parse_qsub_output",
    "sge_state_by_letters",
]

_W, _R, _T = JobStatus.waiting, JobStatus.running, JobStatus.terminated

#: Every state the ``qstat(1)`` manual lists, and what it means here.
SGE_STATES: tuple[tuple[str, str, JobStatus], ...] = (
    ("qw", "queued, waiting", _W),
    ("hqw", "held, queued, waiting", _W),
    ("hRwq", "held, restarted, waiting", _W),
    ("Rq", "restarted, queued", _W),
    ("t", "transferring to the execution host", _R),
    ("r", "running", _R),
    ("Rr", "restarted, running", _R),
    ("Rt", "restarted, transferring", _R),
    ("hr", "running, with a hold on further array tasks", _R),
    ("s", "suspended", _R),
    ("ts", "transferring, suspended", _R),
    ("S", "suspended by its queue", _R),
    ("tS", "transferring, queue suspended", _R),
    ("T", "suspended: queue threshold reached", _R),
    ("tT", "transferring, threshold reached", _R),
    ("Eqw", "error: will not run until cleared", _T),
    ("Ehqw", "error, held", _T),
    ("dr", "deletion requested while running", _T),
    ("dt", "deletion requested while transferring", _T),
)

#: letters that decide a combination, checked in this order
_LETTER_RULES: tuple[tuple[str, JobStatus], ...] = (
    ("E", _T),
    ("d", _T),
    ("r", _R),
    ("t", _R),
    ("s", _R),
    ("S", _R),
    ("T", _R),
    ("q", _W),
    ("w", _W),
)
_KNOWN_LETTERS = set("EdrtsSTqwhR")

#: ``qstat`` row: job-ID prior name user state date time ...
_QSTAT_ROW = re.compile(
    r"^\s*(\d+)\s+\S+\s+.+?\s+\S+\s+([A-Za-z]+)\s+\d{2}/\d{2}/\d{4}\s+\d{2}:\d{2}:\d{2}\b"
)
_QSTAT_HEADER = re.compile(r"^job-ID\s+prior\s|^-{10,}\s*$")
_QSUB_ID = re.compile(r"Your job(?:-array)? (\d+)")
_ERROR_REASON = re.compile(r"^error reason\s+\d+:\s+(.*)$")
_JOB_NUMBER = re.compile(r"^job_number:\s+(\d+)")
_PRIORITY = {JobStatus.running: 0, JobStatus.waiting: 1}

#: ``pe_name`` given in ``resources.kwargs`` when none is
DEFAULT_PE = "mpi"
#: the job name when neither ``job_name`` nor a single task's ``task_name`` gives one
DEFAULT_JOB_NAME = "wDPjob"


# --------------------------------------------------------------------------- pure helpers
def parse_qsub_output(stdout: str) -> str:
    """The job id in ``Your job N ("name") has been submitted`` (or ``qsub -terse``'s ``N``).

    >>> parse_qsub_output('Your job 86 ("hello") has been submitted\\n')
    '86'
    >>> parse_qsub_output("94\\n")
    '94'
    """
    match = _QSUB_ID.search(stdout)
    if match:
        return match.group(1)
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if lines and lines[-1].isdigit():
        return lines[-1]
    raise SchedulerError(f"SGE: no job id in the output of qsub: {stdout!r}")


def sge_state_by_letters(code: str) -> JobStatus | None:
    """Classify a state combination by its letters (None if a letter is unknown).

    >>> sge_state_by_letters("dRr"), sge_state_by_letters("hRq"), sge_state_by_letters("x")
    (<JobStatus.terminated: 4>, <JobStatus.waiting: 2>, None)
    """
    if not code or not set(code) <= _KNOWN_LETTERS:
        return None
    for letter, status in _LETTER_RULES:
        if letter in code:
            return status
    return None


def parse_qstat_table(stdout: str) -> dict[str, list[str]]:
    """``qstat`` rows as ``{job id: [state of each row]}`` (array tasks share an id).

    Header and dash lines are skipped; any other unexpected line is logged and skipped.

    >>> parse_qstat_table(
    ...     "job-ID  prior   name       user         state submit/start at     queue\\n"
    ...     "------------------------------------------------------------------------\\n"
    ...     "    102 0.25000 longjob    root         r     11/25/2026 14:54:52 all.q@vm  1\\n"
    ...     "    105 0.25000 eqw.sh     root         Eqw   11/25/2026 14:54:52           1\\n")
    {'102': ['r'], '105': ['Eqw']}
    """
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if not line.strip() or _QSTAT_HEADER.match(line):
            continue
        match = _QSTAT_ROW.match(line)
        if match is None:
            dlog.warning("SGE: skipped an unexpected qstat output line %r", line)
            continue
        out.setdefault(match.group(1), []).append(match.group(2))
    return out


def parse_qstat_xml(stdout: str) -> list[tuple[str, str, str]]:
    """``qstat -xml`` as ``(job number, job name, state)`` rows (one per array-task row).

    Raises :class:`StatusFormatError` when the text is not such an XML document.

    >>> parse_qstat_xml("<job_info><queue_info><job_list state='running'>"
    ...                 "<JB_job_number>14</JB_job_number><JB_name>longjob</JB_name>"
    ...                 "<state>r</state></job_list></queue_info></job_info>")
    [('14', 'longjob', 'r')]
    """
    try:
        root = ET.fromstring(stdout.strip())
    except ET.ParseError as err:
        raise StatusFormatError(f"SGE: qstat -xml did not answer in XML ({err})") from err
    rows = []
    for entry in root.iter("job_list"):
        number, state = entry.findtext("JB_job_number"), entry.findtext("state")
        if not number or not state:
            dlog.warning("SGE: skipped a qstat -xml entry without job number or state")
            continue
        rows.append((number.strip(), (entry.findtext("JB_name") or "").strip(), state.strip()))
    return rows


def parse_error_reasons(stdout: str) -> dict[str, str]:
    """``error reason`` lines of ``qstat -j`` by job id.

    >>> parse_error_reasons("job_number:                 105\\n"
    ...                     "error reason          1:      can't open output file\\n")
    {'105': "can't open output file"}
    """
    out: dict[str, str] = {}
    current = ""
    for line in stdout.splitlines():
        number = _JOB_NUMBER.match(line)
        if number:
            current = number.group(1)
            continue
        reason = _ERROR_REASON.match(line)
        if reason and current:
            out.setdefault(current, reason.group(1).strip())
    return out


# --------------------------------------------------------------------------- SGE
class SGE(Machine):
    """Grid Engine: ``qsub``, one ``qstat`` for all of the user's jobs, ``qdel``.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="SGE", context_type="LazyLocal", local_root=".")
    >>> job = Job([Task("true", ".", task_name="relax")],
    ...           resources=Resources(1, 4, 0, "all.q", 1, kwargs={"pe_name": "smp"}))
    >>> print("\\n".join(m.header_lines(job)))
    #!/bin/bash
    #$ -S /bin/bash
    #$ -cwd
    #$ -N relax
    #$ -pe smp 4
    #$ -q all.q
    """

    state_map = {code: status for code, _, status in SGE_STATES}
    transient_patterns = (
        "commlib error",
        "unable to contact qmaster",
        "unable to send message to qmaster",
        "failed receiving gdi request",
        "got select error",
        "can't unpack gdi request",
    )

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """``pe_name`` (alias ``sge_pe_name``) and ``job_name``."""
        from dargs import Argument

        return [
            Argument(
                "pe_name",
                str,
                optional=True,
                default=DEFAULT_PE,
                alias=["sge_pe_name"],
                doc="The parallel environment of `#$ -pe <pe_name> <cpu_per_node>`.",
            ),
            Argument(
                "job_name",
                str,
                optional=True,
                doc="The job name (`#$ -N`); default: the task name of a single-task job, "
                f"else `{DEFAULT_JOB_NAME}`. Characters Grid Engine refuses become `_`.",
            ),
        ]

    # -- rendering ----------------------------------------------------------------
    @staticmethod
    def job_name(job: Job) -> str:
        """``kwargs.job_name``, else a single task's ``task_name``, else ``wDPjob``."""
        given = job.resources.kwargs.get("job_name") or single_task_name(job)
        if not given:
            return DEFAULT_JOB_NAME
        return scheduler_job_name(str(given), job.job_hash, letter_first=True)

    def header_lines(self, job: Job) -> list[str]:
        """Shebang, shell, cwd, name, parallel environment, queue (SPEC §5)."""
        res = job.resources
        pe_name = res.kwargs.get("pe_name") or res.kwargs.get("sge_pe_name") or DEFAULT_PE
        lines = [
            "#!/bin/bash",
            "#$ -S /bin/bash",
            "#$ -cwd",
            f"#$ -N {directive_value(self.job_name(job), 'resources/kwargs/job_name')}",
            f"#$ -pe {directive_value(str(pe_name), 'resources/kwargs/pe_name')} "
            f"{int(res.cpu_per_node)}",
        ]
        if res.queue_name:
            lines.append(f"#$ -q {directive_value(res.queue_name, 'resources/queue_name')}")
        return lines

    # -- scheduler hooks ------------------------------------------------------------
    status_formats: ClassVar[tuple[str, ...]] = ("xml", "text")

    def submit_command(self, job: Job, script: str) -> str:
        """``qsub [-N <submit tag>] <script>``."""
        name = f"-N {sh(job.submit_tag)} " if job.submit_tag else ""
        return f"qsub {name}{sh(script)}"

    def parse_submit_output(self, stdout: str) -> str:
        """The number in ``Your job N (...) has been submitted``."""
        return parse_qsub_output(stdout)

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One ``qstat`` for all of the user's jobs (the ids are only validated)."""
        for job in jobs:
            job_id(job.job_id)
        xml = "-xml " if self.status_format == "xml" else ""
        return f'qstat {xml}-u "$(id -un)"'

    def _rows(self, result: CommandResult) -> list[tuple[str, str, str]]:
        if not result.ok:
            raise SchedulerError(
                f"SGE: qstat failed (exit code {result.exit_code}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        if self.status_format == "xml":
            return parse_qstat_xml(result.stdout)
        table = parse_qstat_table(result.stdout)
        return [(jid, "", code) for jid, codes in table.items() for code in codes]

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """State per job id; a job not listed has left Grid Engine (ended)."""
        table: dict[str, list[str]] = {}
        for jid, _, code in self._rows(result):
            table.setdefault(jid, []).append(code)
        return {job.job_id: self._combine(table[job.job_id]) for job in jobs if job.job_id in table}

    def find_command(self, tags: Sequence[str]) -> str | None:
        """The user's jobs with their names (``qstat -xml``)."""
        return 'qstat -xml -u "$(id -un)"'

    def parse_find_output(self, result: CommandResult, tags: Sequence[str]) -> dict[str, str]:
        """The job number whose name is each tag."""
        wanted = set(tags)
        rows = parse_qstat_xml(result.stdout) if result.ok else self._rows(result)
        return {name: jid for jid, name, _ in rows if name in wanted}

    def kill_command(self, job_id: str) -> str:
        """``qdel <id>``."""
        return f"qdel {sh(job_id)}"

    def map_state(self, raw: str) -> JobStatus:
        """The table, else the letters of the combination, else unknown (logged)."""
        if raw not in self.state_map:
            by_letters = sge_state_by_letters(raw)
            if by_letters is not None:
                return by_letters
        return super().map_state(raw)

    def _combine(self, codes: Sequence[str]) -> str:
        """One state for the rows of an array job: running, then waiting, then the rest."""

        def rank(code: str) -> int:
            status = self.state_map.get(code) or sge_state_by_letters(code)
            return _PRIORITY.get(status, 2) if status is not None else 2

        return min(codes, key=rank)

    # -- jobs judged terminated ----------------------------------------------------
    def settle_terminated(self, jobs: Sequence[Job]) -> None:
        """Delete jobs just judged terminated that may still sit in the queue.

        An ``Eqw`` job or a lingering ``dr`` row could otherwise run later beside its
        resubmission. One command: ``qstat -j`` (for the error reasons), then ``qdel``;
        each deletion is logged with the reason Grid Engine gives.
        """
        ids = [sh(job_id(job.job_id)) for job in jobs if job.job_id]
        if not ids:
            return
        result = self.context.run(
            f"qstat -j {','.join(ids)} 2>/dev/null; qdel {' '.join(ids)} >/dev/null 2>&1; true",
            idempotent=True,
        )
        reasons = parse_error_reasons(result.stdout)
        for job in jobs:
            why = reasons.get(job.job_id)
            state = f"was in error state ({why})" if why else "was judged terminated"
            dlog.warning(
                "SGE job %s %s: deleted from the queue so that it cannot run beside its "
                "resubmission",
                job.job_id,
                state,
            )
