"""The package logger, visible by default.

``dlog`` is the ``logging.getLogger("dpdispatcher")`` logger. Nothing is attached to it at
import time except a filter. When the application has not configured logging (no handler
on ``dlog`` or on the loggers it propagates to), the first record installs a stderr
handler, so warnings and the one-line state changes at INFO (submission hash and job root,
job ids, counts of waiting/running/finished jobs) reach the user. Once the application
configures logging (``logging.basicConfig``, its own handlers), that handler is removed
and the application's levels apply. ``DPDISPATCHER_LOG_LEVEL`` (a level name or number)
sets the level; a client may also set it (``dlog.setLevel(logging.DEBUG)``). Nothing is
written to files unless :func:`setup_logging` is given a file.
"""

from __future__ import annotations

import logging
import os
import sys

#: the level ``dlog`` has until someone sets one: lets INFO through, not DEBUG, and is
#: recognisable, so an application's own logging configuration can take over
DEFAULT_LEVEL = logging.INFO - 1
ENV_LEVEL = "DPDISPATCHER_LOG_LEVEL"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

dlog = logging.getLogger("dpdispatcher")


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter(FORMAT))

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


class _DefaultOutput(logging.Filter):
    """Attaches/detaches the default stderr handler as the application's setup requires."""

    def __init__(self) -> None:
        super().__init__()
        self.handler = StderrHandler()
        self.handler._dpdisp_default = True  # type: ignore[attr-defined]

    def filter(self, record: logging.LogRecord) -> bool:
        if not application_configured():
            if self.handler not in dlog.handlers:
                dlog.addHandler(self.handler)
            return True
        if self.handler in dlog.handlers:
            dlog.removeHandler(self.handler)
        if dlog.level == DEFAULT_LEVEL:
            dlog.setLevel(logging.NOTSET)  # the application's levels decide from now on
            return record.levelno >= dlog.getEffectiveLevel()
        return True


def application_configured() -> bool:
    """Whether a handler other than ours would receive ``dlog``'s records."""
    logger: logging.Logger | None = dlog
    while logger is not None:
        if any(not getattr(h, "_dpdisp_default", False) for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def level_from_env(value: str | None) -> int | None:
    """The level named by ``DPDISPATCHER_LOG_LEVEL`` (``DEBUG``, ``info``, ``10``...)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    return level if isinstance(level, int) else None


_default_output = _DefaultOutput()
if not any(isinstance(f, _DefaultOutput) for f in dlog.filters):
    dlog.addFilter(_default_output)
if dlog.level == logging.NOTSET:
    dlog.setLevel(level_from_env(os.environ.get(ENV_LEVEL)) or DEFAULT_LEVEL)


def setup_logging(level: int | None = logging.INFO, logfile: str | None = None) -> None:
    """Attach a console handler (and optionally a file handler) to :data:`dlog`.

    ``level=None`` keeps the current level. Calling it twice does not add duplicate
    handlers.
    """
    wanted: list[logging.Handler] = [StderrHandler()]
    if logfile is not None:
        wanted.append(logging.FileHandler(logfile))
        wanted[-1].setFormatter(logging.Formatter(FORMAT))
    for old in [h for h in dlog.handlers if getattr(h, "_dpdisp", False)]:
        dlog.removeHandler(old)
    for handler in wanted:
        handler._dpdisp = True  # type: ignore[attr-defined]
        dlog.addHandler(handler)
    if level is not None:
        dlog.setLevel(level)
    elif dlog.level == DEFAULT_LEVEL:
        dlog.setLevel(logging.INFO)
