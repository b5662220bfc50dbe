"""Persisted submission state: where local copies live and how a state file is read back.

Pure checks in one place: a state file must be valid JSON, describe exactly this
submission, and hold only plain scheduler job ids before anything of it is trusted.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpdispatcher._script import quoting
from dpdispatcher.errors import RecoveryError, SchedulerError
from dpdispatcher.utils.job_status import JobStatus

#: the fields of a persisted job that change while it runs (left out of its static form)
RUNTIME_KEYS = ("job_state", "job_id", "fail_count", "failure_reason", "task_states")


@dataclass(frozen=True)
class JobRuntime:
    """What a state file says about one job."""

    job_state: JobStatus
    job_id: str
    fail_count: int


def local_state_dir() -> Path:
    """Where a copy of every submission's state is kept (``dpdisp submission`` reads it)."""
    home = os.environ.get("DPDISPATCHER_HOME") or os.path.join(
        os.path.expanduser("~"), ".dpdispatcher"
    )
    return Path(home, "submission")


def static_form(data: dict[str, Any]) -> dict[str, Any]:
    """A serialized submission without its jobs' runtime fields."""
    out = copy.deepcopy(data)
    out.pop("continue_on_failure", None)  # a policy of the run, persisted but not hashed
    for job in out.get("belonging_jobs", []):
        for body in job.values():
            for key in RUNTIME_KEYS:
                body.pop(key, None)
    return out


def checked_job_id(value: Any, where: str) -> str:
    """A job id read from a state file, refused unless it is a plain scheduler id."""
    text = str(value or "")
    try:
        return quoting.job_id(text) if text else ""
    except SchedulerError as err:
        raise RecoveryError(f"{where}: {err}") from err


def parse_state(text: str, where: str, expected_static: dict[str, Any]) -> dict[str, JobRuntime]:
    """The runtime of each job (by hash) in a state file that must match ``expected_static``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecoveryError(
            f"{where}: the persisted state is not valid JSON ({err}); "
            "move it away to start this submission afresh"
        ) from err
    if not isinstance(data, dict) or static_form(data) != json.loads(json.dumps(expected_static)):
        raise RecoveryError(
            f"Recover failed: {where} describes a different submission; "
            "move it away to start this submission afresh"
        )
    return {
        job_hash: JobRuntime(
            JobStatus(body.get("job_state", JobStatus.unsubmitted)),
            checked_job_id(body.get("job_id"), where),
            int(body.get("fail_count", 0)),
        )
        for job in data["belonging_jobs"]
        for job_hash, body in job.items()
    }
