"""Small helpers shared by the HTTP and OSS halves of the cloud client."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlsplit

log = logging.getLogger("dpdispatcher.dpcloudserver")

MiB = 1024 * 1024
#: answers meaning the request was not processed: retried even for creating calls
RETRY_ALWAYS = frozenset({429, 502, 503, 504})
_R = TypeVar("_R")


@dataclass
class RetryPolicy:
    """Bounded retries: the n-th retry waits ``min(max_backoff, backoff * 2**n)`` s."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def send(
        self,
        what: str,
        send: Callable[[], _R],
        *,
        idempotent: bool,
        errors: tuple[type[BaseException], ...],
        unsent: tuple[type[BaseException], ...],
        hint: str,
    ) -> _R:
        """Run one HTTP request (``send``) with bounded retries; return the last answer.

        A connection error (one of ``errors``) is retried when the call is
        ``idempotent`` or the request cannot have left (one of ``unsent``); an answer
        429/502/503/504 always, another 5xx when ``idempotent``. Spent retries raise
        :class:`~._models.RequestInfoException` naming ``hint``.
        """
        from ._models import RequestInfoException

        attempt = 0
        while True:
            try:
                resp = send()
            except errors as err:
                safe = idempotent or isinstance(err, unsent)
                if not safe or attempt >= self.max_retries:
                    raise RequestInfoException(
                        f"{what} failed after {attempt + 1} attempt(s): {type(err).__name__}; "
                        f"check the network and {hint}"
                    ) from err
                reason = type(err).__name__
            else:
                status = int(getattr(resp, "status_code", 200))
                retry = status in RETRY_ALWAYS or (idempotent and status >= 500)
                if not retry or attempt >= self.max_retries:
                    log.debug("%s -> HTTP %d", what, status)
                    return resp
                getattr(resp, "close", lambda: None)()
                reason = f"HTTP {status}"
            self.pause(attempt, what, reason)
            attempt += 1

    def pause(self, attempt: int, what: str, reason: str) -> None:
        """Log why ``what`` is retried (``reason`` must hold no secret) and wait."""
        delay = min(self.max_backoff, self.backoff * (2**attempt))
        log.warning(
            "%s failed (%s); retry %d/%d in %.2f s",
            what,
            reason,
            attempt + 1,
            self.max_retries,
            delay,
        )
        self.sleep(delay)


def origin(url: str) -> tuple[str, str]:
    """``(scheme, host:port)`` of a URL, lower-cased."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def without_query(url: str) -> str:
    """A URL fit for messages: signed URLs carry credentials in their query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


class LazyModule:
    """A module imported on first attribute access (``requests`` is heavy to import).

    Bound to a module-level name it keeps that name patchable:
    ``mock.patch("...client.requests.get")`` replaces ``get`` on this object only.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> object:
        import importlib

        return getattr(importlib.import_module(self._name), attr)
