"""``previous_submission_hash``: take over the job root of an earlier submission.

An earlier submission of the same tasks (typically with other resources, hence another
hash) left its job root ``<root>/<previous hash>`` with its state file and the finish
tags of the tasks that ran. :func:`adopt_previous`, called by
``Submission.try_recover_from_json()`` as in 1.1.0, checks that state, renames the job
root to this submission's (LazyLocalContext runs in the work base: nothing moves), binds
the context there and marks the tasks whose finish tag is there finished; a job whose
tasks all finished is finished, every other job is submitted afresh (its script skips
the finished tasks).
"""

from __future__ import annotations

import copy
import json
import os
from typing import TYPE_CHECKING

from dpdispatcher._legacy import sha1_json
from dpdispatcher._script import names
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import MissingStateError, RecoveryError
from dpdispatcher.job import Job
from dpdispatcher.machine import ENDED
from dpdispatcher.task import task_tag_path
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.base_context import BaseContext
    from dpdispatcher.submission import Submission


def adopt_previous(submission: Submission, previous_hash: str) -> bool:
    """Move the job root of submission ``previous_hash`` to this one's and mark the
    tasks that finished there; True when a job root was moved.

    Safe to repeat after a crash at any point: the rename is atomic, and a job root
    already renamed (the old one gone, the new one holding the previous state file) is
    taken as it is. If binding the context to the new root fails, the rename is undone
    and ``previous_submission_hash`` kept, so the call can simply be repeated.
    """
    ctx = submission._bound_machine().context
    shadow = copy.copy(submission)
    shadow.submission_hash = previous_hash
    old, new = ctx.job_root_for(shadow), ctx.job_root_for(submission)
    same = os.path.normpath(old) == os.path.normpath(new)
    text, root = read_previous_state(ctx, previous_hash, old, new)
    where = os.path.join(root, names.state_file(previous_hash))
    check_previous_tasks(submission, previous_hash, text, where)
    refuse_running_jobs(submission, previous_hash, text, root)
    moved = False if same else ctx.migrate_recovery_root(old, new)
    try:
        ctx.bind_submission(submission)
    except BaseException:
        if moved:
            undo_move(ctx, old, new)
        ctx.remote_root = old
        raise
    if moved:
        dlog.info("adopted the job root of submission %s: %s -> %s", previous_hash, old, new)
    mark_finished_tasks(submission, ctx)
    submission.previous_submission_hash = None  # used up: the state now lives under our hash
    return moved


def read_previous_state(
    ctx: BaseContext, previous_hash: str, old: str, new: str
) -> tuple[str, str]:
    """``(text, job root)`` of the previous state file: in the old job root, or in the
    new one if an interrupted earlier attempt already renamed it."""
    fname = names.state_file(previous_hash)
    for root in dict.fromkeys((old, new)):
        state = ctx.read_files_in(root, [fname])
        if state:
            return state[fname], root
    raise MissingStateError(
        f"Previous submission state not found: previous_submission_hash {previous_hash} "
        f"has no state file {fname} in {old}"
    )


def check_previous_tasks(submission: Submission, previous_hash: str, text: str, where: str) -> None:
    """Refuse a previous state whose tasks differ from this submission's."""
    if recorded_tasks(text, where) != {t.task_hash for t in submission.belonging_tasks}:
        raise RecoveryError(
            f"previous_submission_hash {previous_hash}: {where} describes other tasks than "
            "this submission's; only the resources may change, not the tasks or their task "
            "grouping"
        )


def refuse_running_jobs(submission: Submission, previous_hash: str, text: str, root: str) -> None:
    """Refuse while a job of the previous submission may still be queued or running:
    this submission's jobs would run its tasks a second time, alongside.

    The jobs its state file does not record as ended are asked for (with the ids their
    submit commands recorded, newer than the state file), as a rerun of that
    submission would; 1.1.0 submitted afresh without asking.
    """
    machine = submission._bound_machine()
    jobs = [Job.deserialize(job, machine) for job in json.loads(text)["belonging_jobs"]]
    pending = [j for j in jobs if j.job_state not in (JobStatus.finished, JobStatus.failed)]
    if not pending:
        return
    ctx = machine.context
    bound, ctx.remote_root = ctx.remote_root, root
    try:
        recorded = machine.recorded_job_ids(pending)
        for job in pending:
            job.job_id = recorded.get(job.job_hash) or job.job_id
        submitted = [j for j in pending if j.job_id]
        states = machine.check_status_many(submitted)
    finally:
        ctx.remote_root = bound
    alive = [j for j in submitted if states.get(j.job_hash, JobStatus.finished) not in ENDED]
    if alive:
        ids = ", ".join(f"{j.job_id} ({states[j.job_hash].name})" for j in alive)
        raise RecoveryError(
            f"previous_submission_hash {previous_hash}: its jobs {ids} may still be queued "
            "or running; their tasks would run twice. Wait for them to end (or cancel them), "
            "then run this submission again"
        )


def recorded_tasks(text: str, where: str) -> set[str]:
    """The task hashes of the jobs in a state file (ours or the original's)."""
    try:
        jobs = [body for job in json.loads(text)["belonging_jobs"] for body in job.values()]
        return {sha1_json(task) for body in jobs for task in body["job_task_list"]}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise RecoveryError(f"{where}: not a submission state file ({err!r})") from err


def undo_move(ctx: BaseContext, old: str, new: str) -> None:
    """Rename ``new`` back to ``old`` after a failure (logged if that fails too: the
    next attempt then finds the root already renamed)."""
    try:
        ctx.migrate_recovery_root(new, old)
    except Exception as err:  # noqa: BLE001 - the first error is the one to report
        dlog.warning("could not move %s back to %s: %s", new, old, err)


def mark_finished_tasks(submission: Submission, ctx: BaseContext) -> None:
    """Tasks with their finish tag in the (bound) job root are finished; a job is
    finished when all its tasks are, else unsubmitted with no id and no failures."""
    tags = {
        task_tag_path(task): task for job in submission.belonging_jobs for task in job.job_task_list
    }
    present = ctx.files_exist(sorted(tags))
    for job in submission.belonging_jobs:
        for task in job.job_task_list:
            task.task_state = (
                JobStatus.finished if task_tag_path(task) in present else JobStatus.unsubmitted
            )
        done = all(task.task_state == JobStatus.finished for task in job.job_task_list)
        job.job_state = JobStatus.finished if done else JobStatus.unsubmitted
        job.job_id, job.fail_count = "", 0
    dlog.info(
        "%d of %d tasks of the previous submission had finished",
        sum(t.task_state == JobStatus.finished for t in tags.values()),
        len(tags),
    )
