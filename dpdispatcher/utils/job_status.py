"""The job states. Values are persisted in state files and are frozen."""

from __future__ import annotations

from enum import IntEnum


class JobStatus(IntEnum):
    """State of a job as seen by the dispatcher."""

    unsubmitted = 1
    waiting = 2
    running = 3
    terminated = 4
    finished = 5
    completing = 6
    failed = 7
    unknown = 100
