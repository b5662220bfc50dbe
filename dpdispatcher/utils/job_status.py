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


#: each state's number as JSON text
STATE_TEXT = {state: str(int(state)) for state in JobStatus}


def state_text(state: object) -> str:
    """A state's number as JSON text (``json.dumps(int(state))``), looked up for the
    usual values.

    >>> state_text(JobStatus.running), state_text(5)
    ('3', '5')
    """
    text = STATE_TEXT.get(state)  # type: ignore[call-overload]
    return str(int(state)) if text is None else text  # type: ignore[call-overload]
