"""How a run ends: the clean strategy, and the one error reporting jobs that gave up.

Pure functions: the submission gathers the facts (job states, error tails) and these
decide and word the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dpdispatcher.errors import ConfigurationError, JobFailedError

#: accepted ``clean`` values of ``run_submission`` and the strategy each one names
CLEAN_STRATEGIES: dict[object, str] = {
    True: "always",
    False: "never",
    "always": "always",
    "never": "never",
    "on_success": "on_success",
}

#: bytes of a failing task's error output quoted in reports
ERR_TAIL_BYTES = 1000


def clean_strategy(clean: object) -> str:
    """The strategy named by a ``clean`` argument: ``always``, ``never`` or ``on_success``.

    Raises
    ------
    ConfigurationError
        For any other value (checked before anything is submitted).
    """
    if isinstance(clean, (bool, str)) and clean in CLEAN_STRATEGIES:
        return CLEAN_STRATEGIES[clean]
    raise ConfigurationError(
        f"Unknown clean strategy {clean!r} given to run_submission(clean=...); expected "
        "True, False, 'always', 'never' or 'on_success'"
    )


def should_clean(strategy: str, *, failed: bool, complete: bool) -> bool:
    """Whether to remove the job root at the end of a run.

    ``failed``: some job gave up (its job root is kept for inspection, whatever the
    strategy); ``complete``: every task finished (ratio_unfinished did not drop any).
    """
    if strategy == "never" or failed:
        return False
    return strategy == "always" or complete


def tail(text: str, limit: int = ERR_TAIL_BYTES) -> str:
    """The last ``limit`` characters of ``text``, stripped."""
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


@dataclass(frozen=True)
class FailedJob:
    """What the final report says about one job that gave up."""

    job_hash: str
    job_id: str
    fail_count: int
    tasks: tuple[str, ...]  # "task_work_path: command"
    last_err: str
    where: str


def describe(job: FailedJob) -> str:
    """The report's paragraph about one failed job."""
    tasks = "\n".join(f"  - {t}" for t in job.tasks)
    err = job.last_err or "(no error output recorded)"
    return (
        f"job {job.job_hash} (job id {job.job_id or '-'}) failed {job.fail_count} times; "
        f"tasks:\n{tasks}\n  last error output:\n    "
        + err.replace("\n", "\n    ")
        + f"\n  logs: {job.where}"
    )


def failed_jobs_error(jobs: Sequence[FailedJob], *, monitored: bool) -> JobFailedError:
    """The one error ending a run whose jobs in ``jobs`` gave up.

    ``monitored``: the other jobs were run to completion and their results downloaded
    (``continue_on_failure``).
    """
    head = f"{len(jobs)} job(s) failed after retries were exhausted; " + (
        "all other jobs were run to completion and their results downloaded."
        if monitored
        else "they had already failed before this run."
    )
    return JobFailedError("\n".join([head, *(describe(j) for j in jobs)]))
