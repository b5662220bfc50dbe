"""Which files move where: pure planning shared by every context.

Globs in forward files are expanded against the local work base; a pattern matching
nothing is an error raised before anything is uploaded or submitted.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpdispatcher._script import names
from dpdispatcher.errors import MissingInputError

if TYPE_CHECKING:
    from dpdispatcher.submission import Submission


def has_magic(pattern: str) -> bool:
    """Whether ``pattern`` contains glob characters."""
    return glob.has_magic(pattern)


def expand_local(base: str, patterns: list[str], key: str) -> list[str]:
    """Expand ``patterns`` under ``base`` into sorted relative paths; missing ones raise."""
    found: list[str] = []
    for pattern in patterns:
        full = os.path.join(base, pattern)
        if has_magic(pattern):
            matches = sorted(os.path.relpath(m, base) for m in glob.glob(full))
        else:
            matches = [os.path.normpath(pattern)] if os.path.lexists(full) else []
        if not matches:
            raise MissingInputError(f"{key}: {pattern!r} not found in {base}")
        found.extend(m for m in matches if m not in found)
    return found


def forward_files(submission: Submission, local_work_base: str) -> list[str]:
    """Every forward and forward-common file, relative to the work base, deduplicated.

    Tasks in ``submission.settled_tasks`` (their results already sit in the job root of a
    resumed run) are left out, so sending inputs again never overwrites a forward file
    such a task edited in place.
    """
    out = expand_local(
        local_work_base, submission.forward_common_files, "submission/forward_common_files"
    )
    seen = set(out)
    settled = submission.settled_tasks
    for task in submission.belonging_tasks:
        if task.task_hash in settled:
            continue
        task_dir = os.path.join(local_work_base, task.task_work_path)
        for rel in expand_local(
            task_dir, task.forward_files, f"task {task.task_work_path!r}/forward_files"
        ):
            path = os.path.normpath(os.path.join(task.task_work_path, rel))
            if path not in seen:
                seen.add(path)
                out.append(path)
    return out


def task_dirs(submission: Submission) -> list[str]:
    """Every task directory, normalised, relative to the work base."""
    normpath = os.path.normpath
    # a dict keeps the first-seen order and finds repeats in constant time
    return list(dict.fromkeys(normpath(task.task_work_path) for task in submission.belonging_tasks))


@dataclass(frozen=True)
class BackwardRequest:
    """One backward pattern to fetch: ``directory`` relative to job root and work base."""

    directory: str
    pattern: str
    optional: bool = False  # error* files requested by back_error may be absent


def backward_requests(submission: Submission, back_error: bool) -> Iterator[BackwardRequest]:
    """Every backward pattern of the submission's tasks, then the common ones.

    The tasks are ``belonging_tasks`` (as in 1.1.0, a context may be handed a submission
    whose jobs are not generated); :meth:`Submission.download_jobs` narrows them to the
    tasks of the jobs it downloads.
    """
    for task in submission.belonging_tasks:
        directory = os.path.normpath(task.task_work_path)
        for pattern in task.backward_files:
            yield BackwardRequest(directory, pattern)
        if back_error:
            yield BackwardRequest(directory, "error*", optional=True)
    for pattern in submission.backward_common_files:
        yield BackwardRequest(".", pattern)


def present_locally(local_dir: str, pattern: str) -> bool:
    """Whether ``pattern`` already matches something locally (counts as downloaded)."""
    full = os.path.join(local_dir, pattern)
    return bool(glob.glob(full)) if has_magic(pattern) else os.path.lexists(full)


def glob_rel(directory: str, pattern: str) -> list[str]:
    """What ``pattern`` matches under ``directory``, as sorted relative paths."""
    if has_magic(pattern):
        matches = glob.glob(os.path.join(directory, pattern))
        return sorted(os.path.relpath(p, directory) for p in matches)
    return [pattern] if os.path.lexists(os.path.join(directory, pattern)) else []


def unmatched(
    req: BackwardRequest, local_dir: str, check_exists: bool, mark_failure: bool
) -> str | None:
    """Apply the missing-file rule to a request that matched nothing remotely.

    Returns the path to report as missing, or None when the request is optional, already
    present locally (counts as downloaded) or tolerated by ``check_exists`` (then marked
    with :func:`mark_missing` when ``mark_failure``).
    """
    if req.optional or present_locally(local_dir, req.pattern):
        return None
    if check_exists:
        if mark_failure:
            mark_missing(local_dir, req.pattern)
        return None
    return os.path.join(req.directory, req.pattern)


def mark_missing(local_dir: str, pattern: str) -> None:
    """Write the empty marker telling that ``pattern`` could not be downloaded."""
    os.makedirs(local_dir, exist_ok=True)
    with open(os.path.join(local_dir, names.download_failure_marker(pattern)), "w"):
        pass


def bring_back_results(
    submission: Submission,
    source_root: str,
    local_root: str,
    check_exists: bool,
    mark_failure: bool,
    back_error: bool,
) -> list[str]:
    """Bring every backward file of ``submission`` from ``source_root`` (a job root on
    this machine, or extracted result archives) into the work base ``local_root``.

    A result replaces what is there (:func:`~dpdispatcher._replace.bring_back`); a
    request matching nothing goes through :func:`unmatched`. Returns the paths to report
    as missing.
    """
    from dpdispatcher._replace import bring_back

    missing: list[str] = []
    for req in backward_requests(submission, back_error):
        src_dir = os.path.join(source_root, req.directory)
        local_dir = os.path.join(local_root, req.directory)
        matches = glob_rel(src_dir, req.pattern)
        if not matches:
            report = unmatched(req, local_dir, check_exists, mark_failure)
            missing += [report] if report else []
        for rel in matches:
            bring_back(os.path.join(src_dir, rel), os.path.join(local_dir, rel))
    return missing
