"""Helpers kept at the import path users know: ``generate_totp``, ``retry``, ``get_sha256``."""

from __future__ import annotations

import functools
import hashlib
import os
import time
from typing import Any, Callable, TypeVar

from dpdispatcher.dlog import dlog
from dpdispatcher.errors import CommandError, RetryExhaustedError
from dpdispatcher.utils.hdfs_cli import run_cmd_with_all_output  # one home; 1.x path here

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

    It runs at most ``max_retry`` times, sleeping ``sleep`` seconds in between; then
    :class:`~dpdispatcher.errors.RetryExhaustedError` (a ``RuntimeError``) is raised from
    the last error.

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
                        raise RetryExhaustedError(
                            f"{func.__name__} failed {max_retry} times; last error: {err}"
                        ) from err
                    dlog.warning(
                        "%s failed (%s); retry %d/%d", func.__name__, err, attempt, max_retry
                    )
                    time.sleep(sleep)
            raise AssertionError("unreachable")

        return wrapper  # type: ignore[return-value]

    return decorator


def hotp(key: str, period: int, token_length: int = 6, digest: str = "sha1") -> str:
    """The HMAC-based one-time password (RFC 4226) of base32 ``key`` for counter ``period``.

    Examples
    --------
    >>> hotp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1)  # RFC 4226 test vector, counter 1
    '287082'
    """
    import base64
    import hmac
    import struct

    secret = base64.b32decode(key.upper() + "=" * (-len(key) % 8))
    mac = hmac.new(secret, struct.pack(">Q", period), digest).digest()
    offset = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**token_length).zfill(token_length)


def rsync(
    from_file: str,
    to_file: str,
    port: int = 22,
    key_filename: str | None = None,
    timeout: float = 10,
    proxy_command: str | None = None,
) -> None:
    """Copy with ``rsync`` over ssh (``host:path`` on either side); raise on failure.

    Owner and group are not preserved (``-rlptDz``: a remote user may not own them).
    """
    import shlex

    ssh = [
        "ssh",
        "-o",
        f"ConnectTimeout={timeout}",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-p",
        str(port),
        "-q",
    ]
    if key_filename:
        ssh += ["-i", key_filename]
    if proxy_command:
        ssh += ["-o", f"ProxyCommand={proxy_command}"]
    cmd = ["rsync", "-rlptDz", "--partial", "-e", shlex.join(ssh), "-q", from_file, to_file]
    code, _out, err = run_cmd_with_all_output(cmd, shell=False)
    if code != 0:
        text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
        raise CommandError(f"Failed to run {shlex.join(cmd)}", code, text)


def customized_script_header_template(filename: str | os.PathLike[str], resources: Any) -> str:
    """The text of a header template file formatted with ``resources.serialize()``."""
    with open(filename, encoding="utf-8") as fh:
        return fh.read().format(**resources.serialize())
