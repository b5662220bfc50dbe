"""Running one command on one SSH channel: streams in and out, and telling a failed
command from a broken connection."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from dpdispatcher.contexts._ssh_errors import (
    ConnectionDropped,
    SSHConnectionError,
    SSHTimeoutError,
)
from dpdispatcher.contexts._ssh_scripts import MARKER, exec_string, strip_marker
from dpdispatcher.errors import DPDispatcherError

if TYPE_CHECKING:
    import paramiko

#: largest receive from a channel (at most the window: 8 MiB, see SSHSession)
_RECV_SIZE = 8 << 20

Producer = Callable[[Callable[[bytes], None]], None]
Consumer = Callable[[IO[bytes]], object]


def transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions paramiko raises when the link fails."""
    import paramiko

    return (paramiko.SSHException, OSError, EOFError)


def decode(data: bytes) -> str:
    """Remote output as text (undecodable bytes replaced)."""
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class RawResult:
    """Exit code and raw output of a remote command (start marker removed)."""

    exit_code: int
    stdout: bytes
    stderr: bytes


class MarkedReader:
    """Binary reader over a channel's stdout that skips to just after the start marker.

    It takes everything the channel has buffered at each receive (paramiko's buffer
    moves its remaining bytes at every partial read, so small reads from a full window
    cost quadratic time) and serves reads of any size from that.
    """

    def __init__(self, channel: paramiko.Channel) -> None:
        self._chan = channel
        self._buf = b""
        self._off = 0
        self._found = False

    def _fill(self) -> bool:
        self._buf, self._off = bytes(self._chan.recv(_RECV_SIZE)), 0
        return bool(self._buf)

    def _find_marker(self) -> None:
        head = b""
        while MARKER not in head:
            if not self._fill():
                self._found = True
                return
            head += self._buf
            if len(head) > (1 << 22):
                raise SSHConnectionError("remote output does not start with the marker")
        self._buf, self._off = strip_marker(head), 0
        self._found = True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all remaining bytes when negative); ``b''`` at the end."""
        if not self._found:
            self._find_marker()
        if self._off >= len(self._buf) and not self._fill():
            return b""
        if size < 0:
            chunks = [self._buf[self._off :]]
            while self._fill():
                chunks.append(self._buf)
            self._buf, self._off = b"", 0
            return b"".join(chunks)
        data = self._buf[self._off : self._off + size]
        self._off += len(data)
        return data


def run_on_channel(
    chan: paramiko.Channel,
    script: str,
    where: str,
    *,
    stdin: bytes | None = None,
    producer: Producer | None = None,
    consumer: Consumer | None = None,
    timeout: float | None = None,
) -> RawResult:
    """Run a bash ``script`` on a fresh session channel (closed afterwards).

    ``stdin`` is sent, or ``producer(send)`` streams it, from a thread. ``consumer``
    reads stdout as a stream; otherwise stdout is collected. A
    :class:`~dpdispatcher.errors.DPDispatcherError` from the consumer propagates at
    once; other consumer errors count only if the command exited 0 (else its exit
    code and stderr tell more). Raises :class:`ConnectionDropped` when the link
    breaks, and :class:`SSHTimeoutError` after ``timeout`` seconds.
    """
    transport = chan.get_transport()
    errors: list[BaseException] = []  # of the stdin/stderr threads: always raised
    late: list[BaseException] = []  # of the consumer: raised if the command succeeded
    err_chunks: list[bytes] = []
    try:
        chan.exec_command(exec_string(script))
        threads = [_start(_drain_stderr, chan, err_chunks, errors)]
        if stdin is not None or producer is not None:
            threads.append(_start(_feed, chan, stdin, producer, errors))
        out = b""
        if consumer is not None:
            _consume(chan, consumer, late)
        else:
            out = _collect(chan, timeout)
        for thread in threads:
            thread.join()
        status = chan.recv_exit_status()
    except transport_errors() as err:
        if _dead(transport):
            raise ConnectionDropped(f"connection to {where} lost: {err}", sent=True) from err
        raise
    finally:
        chan.close()
    if status == -1 and _dead(transport):
        raise ConnectionDropped(f"connection to {where} lost", sent=True)
    if errors:
        raise errors[0]
    if late and status == 0:
        raise late[0]
    return RawResult(status, strip_marker(out), strip_marker(b"".join(err_chunks)))


def _dead(transport: paramiko.Transport | None) -> bool:
    """Whether the connection is gone (giving its thread a moment to notice)."""
    if transport is None or not transport.is_active():
        return True
    transport.join(0.5)
    return not transport.is_active()


def _consume(chan: paramiko.Channel, consumer: Consumer, late: list[BaseException]) -> None:
    try:
        consumer(MarkedReader(chan))  # type: ignore[arg-type]
    except DPDispatcherError:
        raise
    except Exception as err:  # noqa: BLE001 - judged with the exit status by the caller
        late.append(err)
    while chan.recv(_RECV_SIZE):  # whatever follows the stream
        pass


def _start(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _drain_stderr(chan: paramiko.Channel, sink: list[bytes], errors: list[BaseException]) -> None:
    try:
        while True:
            data = chan.recv_stderr(1 << 16)
            if not data:
                return
            sink.append(data)
    except Exception as err:  # noqa: BLE001 - handed to the caller's thread
        errors.append(err)


class _SendFailed(Exception):
    """The channel refused input: the command ended (or the link broke) before reading it."""


def _send(chan: paramiko.Channel, data: bytes) -> None:
    try:
        chan.sendall(data)
    except transport_errors() as err:
        raise _SendFailed(str(err)) from err


def _feed(
    chan: paramiko.Channel,
    data: bytes | None,
    producer: Producer | None,
    errors: list[BaseException],
) -> None:
    try:
        if producer is not None:
            _pipelined(chan, producer)
        elif data:
            _send(chan, data)
        chan.shutdown_write()
    except _SendFailed:
        pass  # the exit status (or the lost connection) tells what happened
    except Exception as err:  # noqa: BLE001 - a local failure: handed to the caller
        errors.append(err)
        chan.close()


def _pipelined(chan: paramiko.Channel, producer: Producer) -> None:
    """Run ``producer`` (reading files, packing, compressing) while another thread
    encrypts and sends its previous chunks."""
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    failed: list[BaseException] = []

    def sender() -> None:
        try:
            while (chunk := chunks.get()) is not None:
                if not failed:
                    _send(chan, chunk)
        except Exception as err:  # noqa: BLE001 - re-raised below
            failed.append(err)
            while chunks.get() is not None:  # let the producer finish quickly
                pass

    thread = _start(sender)

    def put(chunk: bytes) -> None:
        if failed:
            raise failed[0]
        chunks.put(chunk)

    try:
        producer(put)
    finally:
        chunks.put(None)
        thread.join()
    if failed:
        raise failed[0]


def _collect(chan: paramiko.Channel, timeout: float | None) -> bytes:
    chunks: list[bytes] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            if deadline is not None:
                chan.settimeout(max(deadline - time.monotonic(), 0.001))
            data = chan.recv(_RECV_SIZE)
            if not data:
                break
            chunks.append(data)
        if deadline is not None and not chan.status_event.wait(
            max(deadline - time.monotonic(), 0.001)
        ):
            raise socket.timeout()
    except socket.timeout as err:
        raise SSHTimeoutError(f"command did not finish within {timeout} s") from err
    return b"".join(chunks)


# -- connection tuning ----------------------------------------------------------------
#: preferred ciphers, fastest first (AES-GCM needs no separate MAC); others follow
_FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr")


def enable_keepalive(sock: socket.socket) -> None:
    """No Nagle delay on small requests; notice a silently dead peer within a minute."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", 30),
        ("TCP_KEEPINTVL", 10),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 60000),
    ):
        opt = getattr(socket, name, None)
        if opt is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, opt, value)


def prefer_algorithms(transport: paramiko.Transport, known_types: list[str]) -> None:
    """Ask for a host key type already in known_hosts, and for fast ciphers."""
    opts = transport.get_security_options()
    ciphers = list(opts.ciphers)
    opts.ciphers = tuple(
        [c for c in _FAST_CIPHERS if c in ciphers] + [c for c in ciphers if c not in _FAST_CIPHERS]
    )
    if known_types:
        wanted = set(known_types)
        if "ssh-rsa" in wanted:
            wanted |= {"rsa-sha2-512", "rsa-sha2-256"}
        types = list(opts.key_types)
        opts.key_types = tuple(
            [t for t in types if t in wanted] + [t for t in types if t not in wanted]
        )
