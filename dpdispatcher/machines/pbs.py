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
from dpdispatcher.machines._pbs_parse import (
    PBS_STATES,
    QSUB_ID,
    TORQUE_STATES,
    gone_job_ids,
    parse_qstat_json,
    parse_qstat_table,
    parse_qstat_xml,
    parse_qsub_output,
    sequence_number,
)

if TYPE_CHECKING:
    from dpdispatcher.submission import Job

#: the parsers and the state tables live in :mod:`dpdispatcher.machines._pbs_parse`
__all__ = ["PBS", "SGE", "Torque"]

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
            ids = [line.split()[0] for line in lines if QSUB_ID.match(line.split()[0])]
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
