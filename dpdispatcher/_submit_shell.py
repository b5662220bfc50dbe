"""The shell side of submitting: one command submits many jobs and records their ids.

Pure string builders and a parser, used by :meth:`dpdispatcher.machine.Machine.submit_many`
and by recovery (the submit lock).
"""

from __future__ import annotations

from collections.abc import Sequence

from dpdispatcher._script import names, quoting
from dpdispatcher.base_context import CommandResult

SUBMIT_MARK = "@@dpdispatcher-submitted"
STDOUT_MARK = "@@dpdispatcher-stdout"
STOPPED_MARK = "@@dpdispatcher-stopped"


def wrap_submit(submit_cmd: str, id_file: str) -> str:
    """Make the submit command record its own output in ``id_file`` when it succeeds.

    The record is written by the remote shell in the same command (one small write), so
    a dispatcher killed right after the scheduler accepted the job still finds the job id
    on restart.
    """
    return (
        f"out=$({submit_cmd}); rc=$?; "
        f"if [ $rc -eq 0 ]; then printf '%s\\n' \"$out\" > {quoting.sh(id_file)}; fi; "
        f"printf '%s\\n%s\\n' {STDOUT_MARK} \"$out\"; exit $rc"
    )


def submit_lock_command() -> str:
    """Take the job root's submit lock for the rest of the shell (waits while another
    shell holds it; skipped where ``flock`` is missing)."""
    lock = quoting.sh(names.submit_lock_file())
    return f"exec 9>>{lock}; if command -v flock >/dev/null 2>&1; then flock -x 9; fi"


def batch_submit_command(parts: Sequence[tuple[str, str]]) -> str:
    """One shell command running each ``(job_hash, wrapped_submit)`` and marking its end.

    It holds the submit lock while it runs, and stops at the first refused submission (the
    scheduler is down or rejects these resources): the jobs after it are left for a later
    attempt.
    """
    return (
        submit_lock_command()
        + "\n"
        + "\n".join(
            f'( {cmd} ) 2>&1 9>&-; rc=$?; echo "{SUBMIT_MARK} {job_hash} $rc"; '
            f'[ $rc -eq 0 ] || {{ echo "{STOPPED_MARK}"; exit 0; }}'
            for job_hash, cmd in parts
        )
    )


def split_batch_output(stdout: str) -> dict[str, CommandResult]:
    """Each job's submit result, by job hash, from the output of :func:`batch_submit_command`."""
    out: dict[str, CommandResult] = {}
    block: list[str] = []
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == SUBMIT_MARK and fields[2].isdigit():
            err, _, std = "\n".join(block).partition(STDOUT_MARK)
            out[fields[1]] = CommandResult(int(fields[2]), std.strip("\n"), err.strip("\n"))
            block = []
        else:
            block.append(line)
    return out
