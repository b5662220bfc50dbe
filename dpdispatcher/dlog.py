"""The package logger.

``dlog`` is the ``logging.getLogger("dpdispatcher")`` logger. Nothing is configured
at import time; call :func:`setup_logging` (the CLI does) to get console output.
"""

from __future__ import annotations

import logging

dlog = logging.getLogger("dpdispatcher")
dlog.addHandler(logging.NullHandler())


def setup_logging(level: int = logging.INFO, logfile: str | None = None) -> None:
    """Attach a console handler (and optionally a file handler) to :data:`dlog`.

    Calling it twice does not add duplicate handlers.
    """
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    wanted: list[logging.Handler] = [logging.StreamHandler()]
    if logfile is not None:
        wanted.append(logging.FileHandler(logfile))
    for old in [h for h in dlog.handlers if getattr(h, "_dpdisp", False)]:
        dlog.removeHandler(old)
    for handler in wanted:
        handler.setFormatter(fmt)
        handler._dpdisp = True  # type: ignore[attr-defined]
        dlog.addHandler(handler)
    dlog.setLevel(level)
