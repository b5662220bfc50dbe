"""Ambiguous submissions reconciled with the scheduler's queue (exactly-once submits).

A submit command can fail after the scheduler queued the job: ``sbatch`` reports
"Socket timed out on send/recv operation" although slurmctld accepted it, or the
connection drops while the command runs. Resubmitting at once would start the job
twice. Instead the job is marked *unknown* without a job id (persisted), and before
anything is resubmitted the queue is searched for the job's submit tag (its scheduler
name or comment, see :func:`dpdispatcher._script.names.submit_tag`):

- found: the job id is adopted and the job is polled like any other;
- not found, but the job's finish tag exists: the job ran to completion;
- not found: the submission did not happen (or ended without trace) and the job is
  submitted again under the same tag.

The pure helpers below build the per-tag search loops and split their output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dpdispatcher._script import quoting
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import SchedulerError
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.job import Job
    from dpdispatcher.machine import Machine

TAG_MARK = "@@dpdispatcher-tag"


def tag_loop(tags: Sequence[str], search: str) -> str:
    """A shell loop running ``search`` (which uses ``"$t"``) once per tag, each answer
    preceded by a marker line naming its tag.

    >>> tag_loop(["dpda"], 'qselect -N "$t"')
    'for t in dpda; do echo "@@dpdispatcher-tag $t"; qselect -N "$t" 2>/dev/null; done; true'
    """
    words = " ".join(quoting.sh(tag) for tag in tags)
    return f'for t in {words}; do echo "{TAG_MARK} $t"; {search} 2>/dev/null; done; true'


def split_tag_blocks(stdout: str) -> dict[str, list[str]]:
    """The non-empty output lines of each tag of :func:`tag_loop`.

    >>> split_tag_blocks("@@dpdispatcher-tag a\\n12.srv\\n@@dpdispatcher-tag b\\n")
    {'a': ['12.srv'], 'b': []}
    """
    out: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith(TAG_MARK + " "):
            current = line[len(TAG_MARK) + 1 :].strip()
            out[current] = []
        elif current is not None and line.strip():
            out[current].append(line.strip())
    return out


def reconcile(machine: Machine, jobs: Sequence[Job]) -> bool | None:
    """Settle jobs whose submission was ambiguous; True when one changed state.

    None when the queue could not be searched now (the jobs stay unknown and are
    searched again later).
    """
    try:
        found = machine.find_submitted(jobs)
    except SchedulerError as err:
        dlog.warning("searching the queue for ambiguously submitted jobs failed: %s", err)
        return None
    missing = [job for job in jobs if job.job_hash not in found]
    done = machine.context.files_exist(
        sorted({f for job in missing for f in machine.finish_tag_files(job)})
    )
    for job in jobs:
        if job.job_hash in found:
            job.register_job_id(found[job.job_hash])
            job.job_state = JobStatus.waiting
            dlog.info(
                "job %s was queued although its submit command failed: found as %s (%s); "
                "not submitted again",
                job.job_hash,
                job.job_id,
                job.submit_tag,
            )
        elif all(f in done for f in machine.finish_tag_files(job)):
            job.job_state = JobStatus.finished
            dlog.info("job %s ran to completion although its submit command failed", job.job_hash)
        else:
            job.job_state = JobStatus.unsubmitted
            dlog.info(
                "job %s (%s) is not in the queue: its failed submission did not happen; "
                "submitting it again",
                job.job_hash,
                job.submit_tag,
            )
    return True
