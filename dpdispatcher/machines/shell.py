"""Shell: run each job as a background bash process in its own process group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dpdispatcher._script import names
from dpdispatcher._script.quoting import ascii_digits, sh
from dpdispatcher.base_context import CommandResult
from dpdispatcher.errors import SchedulerError, TransientSchedulerError
from dpdispatcher.machine import Machine
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.submission import Job


def parse_ps_output(stdout: str) -> dict[str, str]:
    """``ps -o pid=,stat=,args=`` lines as ``{pid: "stat args"}``.

    The values are plain strings and no line leaves a list or tuple behind, so a table of
    thousands of processes gives the garbage collector nothing to walk. A line that is not
    a process (a header) is kept under its first word, which no PID equals.

    >>> parse_ps_output("  12 S    bash a.sub\\n 7 Z\\n")
    {'12': 'S    bash a.sub', '7': 'Z'}
    """
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        pid, _, rest = line.lstrip().partition(" ")
        rest = rest.lstrip()
        if rest:
            out[pid] = rest
    return out


class Shell(Machine):
    """Runs jobs with ``bash`` on the execution host, without a scheduler.

    The job id is the PID of the job's bash, which leads its own process group, so
    killing the job kills every task it started.
    """

    #: first letter of ps STAT: Z (zombie) and X (dead) mean the job has ended
    state_map = {
        "R": JobStatus.running,
        "S": JobStatus.running,
        "D": JobStatus.running,
        "T": JobStatus.running,
        "t": JobStatus.running,
        "I": JobStatus.running,
        "W": JobStatus.running,
        "Z": JobStatus.terminated,
        "X": JobStatus.terminated,
    }

    def submit_command(self, job: Job, script: str) -> str:
        """Start the script detached, in a new session, and print its PID.

        The submit tag, if any, is passed as an (unused) argument, so that ``ps`` shows
        it and a submission whose answer was lost is found again.
        """
        tag = f" {sh(job.submit_tag)}" if job.submit_tag else ""
        return f"setsid bash {sh(script)}{tag} </dev/null >/dev/null 2>&1 & echo $!"

    def find_command(self, tags: Sequence[str]) -> str | None:
        """Every process with its command line."""
        return "ps -eo pid=,args="

    def parse_find_output(self, result: CommandResult, tags: Sequence[str]) -> dict[str, str]:
        """The PID of the ``bash <script> <tag>`` process of each tag."""
        wanted = set(tags)
        out: dict[str, str] = {}
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[1] == "bash" and fields[-1] in wanted:
                out.setdefault(fields[-1], fields[0])
        return out

    def parse_submit_output(self, stdout: str) -> str:
        """The PID printed by the submit command."""
        lines = stdout.strip().splitlines()
        if not lines or not lines[-1].strip().isdigit():
            raise SchedulerError(f"Shell: no PID in submit output {stdout!r}")
        return lines[-1].strip()

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One ``ps`` for every job's PID."""
        ids = [job.job_id for job in jobs]
        pids = ",".join(ids)  # one word: ps takes a comma list
        if not ascii_digits("".join(ids)):  # PIDs are; anything else is quoted
            pids = sh(pids)
        return f"ps -o pid=,stat=,args= -p {pids}"

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """PIDs still running *our* script (a reused PID running something else is gone).

        ``ps -p`` exits 1 *silently* when none of the PIDs exists; a failure with an error
        message (``ps`` missing, refused by a sandbox) says nothing about the jobs, so it
        raises :class:`TransientSchedulerError` (polled again) instead of reading as
        "every job is gone", which would resubmit jobs that may still be running.
        """
        if not result.ok and result.stderr.strip():
            raise TransientSchedulerError(
                f"Shell: status query {result.cmd!r} failed with exit code "
                f"{result.exit_code}: {result.stderr.strip()[-500:]}"
            )
        if not result.stdout.strip():  # no process left: no job id to look up
            return {}
        table = parse_ps_output(result.stdout)
        marker = names.script_marker
        out: dict[str, str] = {}
        for job in jobs:
            entry = table.get(job.job_id)
            if entry is not None and marker(job.job_hash) in entry:
                out[job.job_id] = entry[:1]
        return out

    def kill_command(self, job_id: str) -> str:
        """Kill the job's whole process group."""
        return f"kill -9 -- -{sh(job_id)}"
