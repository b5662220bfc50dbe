"""Helpers kept at the import path users know: ``generate_totp``, ``retry``, ``get_sha256``."""

from __future__ import annotations

import functools
import hashlib
import time
from typing import Any, Callable, TypeVar

from dpdispatcher.dlog import dlog

F = TypeVar("F", bound=Callable[..., Any])


class RetrySignal(Exception):
    """Raise inside a function decorated with :func:`retry` to ask for another attempt."""


def get_sha256(filename: str) -> str:
    """Return the hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(filename, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def generate_totp(secret: str, period: int = 30, token_length: int = 6) -> str:
    """Return the current time-based one-time code for a base32 ``secret``."""
    import pyotp

    return str(pyotp.TOTP(secret, interval=period, digits=token_length).now())


def retry(
    max_retry: int = 3, sleep: float = 60, catch_exception: type[BaseException] = RetrySignal
) -> Callable[[F], F]:
    """Decorate a function so that ``catch_exception`` makes it run again.

    It runs at most ``max_retry`` times, sleeping ``sleep`` seconds in between; the last
    error is re-raised.

    Examples
    --------
    >>> calls = []
    >>> @retry(max_retry=3, sleep=0)
    ... def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 2:
    ...         raise RetrySignal("again")
    ...     return "ok"
    >>> flaky()
    'ok'
    """

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, max_retry + 1):
                try:
                    return func(*args, **kwargs)
                except catch_exception as err:
                    if attempt == max_retry:
                        raise
                    dlog.warning(
                        "%s failed (%s); retry %d/%d", func.__name__, err, attempt, max_retry
                    )
                    time.sleep(sleep)
            raise AssertionError("unreachable")

        return wrapper  # type: ignore[return-value]

    return decorator
