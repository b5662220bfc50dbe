"""Reconnection and journaled commands for SSHContext.

Every operation is retried on a fresh connection after a drop (with growing delays).
Commands are *journaled*: run detached, with their outcome written to files in
``~/.cache/dpdispatcher/ssh-run`` on the remote side before it is printed, so a command
whose connection broke is neither killed nor repeated: its outcome is fetched later.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from typing import TypeVar

from dpdispatcher.contexts import _ssh_scripts as scripts
from dpdispatcher.contexts._ssh_channel import decode
from dpdispatcher.contexts._ssh_errors import (
    AmbiguousCommandError,
    ConnectionDropped,
    SSHConnectionError,
)
from dpdispatcher.contexts._ssh_session import RawResult, SSHSession
from dpdispatcher.dlog import dlog

T = TypeVar("T")


class Reconnecting:
    """Mixin: ``_call`` (retry on a new connection) and ``_run_journaled``."""

    ssh_session: SSHSession
    #: seconds to wait before each reconnection attempt after a dropped connection
    #: (about four minutes in all: a login node may take that long to come back)
    reconnect_delays: tuple[float, ...] = (0.2, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
    #: seconds a journaled command that started before a drop may take to finish
    journal_wait: float = 600.0
    #: journal entries whose outcome was received (deleted with the next command)
    _done_tokens: list[str]
    _purged_connection: int

    # -- reconnecting --------------------------------------------------------------------
    def _call(self, what: str, op: Callable[[SSHSession], T], *, idempotent: bool = True) -> T:
        """Run ``op`` on the session, reconnecting and repeating it after a drop.

        With ``idempotent=False`` a drop after the command was sent raises the
        :class:`ConnectionDropped` instead of repeating it.
        """
        import paramiko

        session = self.ssh_session
        failure: SSHConnectionError | None = None
        for attempt in range(len(self.reconnect_delays) + 1):
            try:
                return op(session)
            except (SSHConnectionError, paramiko.SSHException, EOFError, OSError) as err:
                failure = _retry_after(err, session, idempotent)
            if attempt == len(self.reconnect_delays):
                break
            delay = self.reconnect_delays[attempt]
            dlog.warning(
                "%s: %s; reconnecting in %.1f s (attempt %d of %d)",
                what,
                failure,
                delay,
                attempt + 1,
                len(self.reconnect_delays),
            )
            session.close()
            time.sleep(delay)
        raise SSHConnectionError(
            f"{what}: gave up after {len(self.reconnect_delays)} reconnection attempts: {failure}"
        ) from failure

    def _run_journaled(self, what: str, script: str, timeout: float | None) -> RawResult:
        token = scripts.new_token()
        forget = list(self._done_tokens)

        def attempt(session: SSHSession) -> RawResult:
            purge = session.connections != self._purged_connection
            res = session.run_raw(scripts.journaled(script, token, forget, purge), timeout=timeout)
            self._purged_connection = session.connections
            return res

        try:
            raw = self._call(what, attempt, idempotent=False)
        except ConnectionDropped as err:
            dlog.warning("%s: connection lost while it ran (%s); fetching its outcome", what, err)
            raw = self._recover(what, token, lambda: self._call(what, attempt, idempotent=False))
        self._done_tokens = [t for t in self._done_tokens if t not in forget] + [token]
        return raw

    def _recover(self, what: str, token: str, rerun: Callable[[], RawResult]) -> RawResult:
        """The outcome of journaled command ``token``; run it again only if it never started."""
        deadline = time.monotonic() + self.journal_wait
        absent, delay = 0, 0.5
        while True:
            probe = self._call("journal lookup", lambda s: s.run_raw(scripts.journal_probe(token)))
            if probe.exit_code == 0:
                return _parse_journal(token, probe.stdout)
            if probe.exit_code == scripts.JOURNAL_ABSENT:
                absent += 1
                if absent >= 2:  # looked twice, a moment apart: it never started
                    dlog.info("%s never started; running it now", what)
                    try:
                        return rerun()
                    except ConnectionDropped:
                        absent = 0
                        continue
                time.sleep(0.5)
                continue
            if probe.exit_code != scripts.JOURNAL_RUNNING:
                raise AmbiguousCommandError(
                    f"{what}: the connection broke while it ran, and its journal cannot be "
                    f"read: {decode(probe.stderr).strip()}"
                )
            if time.monotonic() > deadline:
                raise AmbiguousCommandError(
                    f"{what}: the connection broke while it ran and it has not finished "
                    f"after {self.journal_wait:.0f} s; not running it again"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)


def _parse_journal(token: str, data: bytes) -> RawResult:
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            member = tar.extractfile(info)
            if member is not None:
                files[info.name] = member.read()
    code = int(files.get(f"{token}.rc", b"-1").strip() or b"-1")
    return RawResult(code, files.get(f"{token}.out", b""), files.get(f"{token}.err", b""))


def _retry_after(err: Exception, session: SSHSession, idempotent: bool) -> SSHConnectionError:
    """The connection failure ``err`` means, to reconnect and repeat after; raised instead
    when repeating is wrong: the server's own answer (an ``OSError`` with an errno, or
    an error on a live link), or a command already sent when ``idempotent`` is False."""
    if isinstance(err, ConnectionDropped):
        if not idempotent and err.sent:
            raise err
        return err
    if isinstance(err, SSHConnectionError):
        return err
    if (isinstance(err, OSError) and err.errno) or not session.lost():
        raise err
    failure = ConnectionDropped(f"connection to {session.endpoint} lost: {err}", sent=True)
    if not idempotent:
        raise failure from err
    return failure
