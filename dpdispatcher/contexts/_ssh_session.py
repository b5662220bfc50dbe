"""SSHSession: one verified, authenticated paramiko connection, reopened on demand."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any

from dpdispatcher.contexts import _ssh_auth as auth
from dpdispatcher.contexts._ssh_channel import (
    Consumer,
    Producer,
    RawResult,
    enable_keepalive,
    prefer_algorithms,
    run_on_channel,
    transport_errors,
)
from dpdispatcher.contexts._ssh_endpoint import Endpoint, lookup_ssh_config, resolve_endpoint
from dpdispatcher.contexts._ssh_errors import (
    ConnectionDropped,
    SSHConnectionError,
)
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError

if TYPE_CHECKING:
    import paramiko

#: receive window: fewer window adjustments than paramiko's 2 MiB on fast links, and
#: enough in flight for high-latency ones
_WINDOW = 8 << 20


class SSHSession:
    """An SSH connection to one host, verified against known_hosts, opened lazily.

    Authentication tries, in order: ``key_filename`` (and ``IdentityFile`` entries of
    ``~/.ssh/config``), keys found by ``look_for_keys`` (ssh-agent, ``~/.ssh/id_*``),
    keyboard-interactive (password prompts get ``password``, one-time-code prompts
    the TOTP of ``totp_secret``), then ``password``.

    Parameters
    ----------
    hostname, username : str
        Host (or a ``~/.ssh/config`` alias) and login name.
    password, passphrase, totp_secret : str, optional
        Secrets: never logged, shown or persisted.
    port : int
        Port (22 lets ``~/.ssh/config`` choose).
    key_filename : str, optional
        Private key file (RSA, ECDSA or Ed25519).
    timeout : float
        Seconds allowed for connecting and for the SSH handshake.
    tar_compress : bool
        Kept for :class:`SSHContext` (gzip transfers when worthwhile).
    look_for_keys : bool
        Try the ssh-agent and ``~/.ssh/id_*`` keys.
    execute_command : str, optional
        Shell command run after each connection (e.g. to renew a Kerberos ticket).
    proxy_command : str, optional
        Command whose stdin/stdout reach the server, e.g. ``ssh -W %h:%p bastion``
        (``%h``, ``%p``, ``%r`` are replaced).
    known_hosts : str, optional
        known_hosts file (default ``~/.ssh/known_hosts``, plus the system-wide one).
    host_key_policy : {"accept-new", "reject", "auto-add"}
        For a host absent from known_hosts: trust it and append its key to
        ``known_hosts`` with a WARNING showing the fingerprint (the default, trust on
        first use as OpenSSH's ``StrictHostKeyChecking=accept-new``); refuse; or trust it
        for this session only. A changed key is always refused.
    archive_chunk_size : int, optional
        Kept for :class:`SSHContext`: largest part (bytes) of a split download.

    Examples
    --------
    >>> s = SSHSession("cluster.example.org", "alice", password="secret")
    >>> s
    SSHSession(alice@cluster.example.org:22, host_key_policy='accept-new')
    """

    def __init__(
        self,
        hostname: str,
        username: str,
        password: str | None = None,
        port: int = 22,
        key_filename: str | None = None,
        passphrase: str | None = None,
        timeout: float = 10,
        totp_secret: str | None = None,
        tar_compress: bool = True,
        look_for_keys: bool = True,
        execute_command: str | None = None,
        proxy_command: str | None = None,
        known_hosts: str | None = None,
        host_key_policy: str = "accept-new",
        archive_chunk_size: int | None = None,
        *,
        ssh_config: str = "~/.ssh/config",
    ) -> None:
        _check_settings(hostname, host_key_policy, archive_chunk_size)
        self.archive_chunk_size = archive_chunk_size or 0
        self.hostname = hostname
        self.username = username
        self.port = int(port)
        self.key_filename = key_filename
        self.timeout = float(timeout)
        self.tar_compress = tar_compress
        self.look_for_keys = look_for_keys
        self.execute_command = execute_command
        self.proxy_command = proxy_command
        self.known_hosts = known_hosts
        self.host_key_policy = host_key_policy
        self.ssh_config = ssh_config
        self._password = None if password is None else auth.Secret(password)
        self._passphrase = None if passphrase is None else auth.Secret(passphrase)
        self._totp_secret = None if totp_secret is None else auth.Secret(totp_secret)
        self._codes = None if totp_secret is None else auth.FreshCodes(totp_secret)
        self._endpoint: Endpoint | None = None
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.RLock()
        #: incremented at each new connection (lets callers notice reconnections)
        self.connections = 0

    def __repr__(self) -> str:
        return (
            f"SSHSession({self.username}@{self.hostname}:{self.port}, "
            f"host_key_policy={self.host_key_policy!r})"
        )

    @staticmethod
    def arginfo() -> Any:
        """The dargs ``Argument`` ("ssh_session") of the session's parameters."""
        from dargs import Argument

        from dpdispatcher.contexts._ssh_profile import remote_profile_fields

        return Argument(
            "ssh_session",
            dict,
            remote_profile_fields(),
            doc="Parameters of an SSH session (the SSH remote_profile).",
        )

    # -- connection ---------------------------------------------------------------------
    @property
    def endpoint(self) -> Endpoint:
        """Where the session connects (profile completed by ``~/.ssh/config``)."""
        if self._endpoint is None:
            self._endpoint = resolve_endpoint(
                self.hostname,
                username=self.username,
                port=self.port,
                key_filename=self.key_filename,
                proxy_command=self.proxy_command,
                known_hosts=self.known_hosts,
                host_config=lookup_ssh_config(self.hostname, self.ssh_config),
            )
        return self._endpoint

    def is_alive(self) -> bool:
        """Whether the connection is open and authenticated."""
        t = self._transport
        return t is not None and t.is_active() and t.is_authenticated()

    def lost(self) -> bool:
        """Whether the connection is gone (giving paramiko's thread a moment to notice)."""
        t = self._transport
        if t is None or not t.is_active():
            return True
        t.join(0.3)
        return not t.is_active()

    def ensure_alive(self, max_check: int = 10, sleep_time: float = 10) -> None:
        """Connect (again) unless the connection is alive.

        ``max_check`` and ``sleep_time`` are accepted for compatibility; retrying is
        done by :class:`SSHContext` around each operation.
        """
        with self._lock:
            if not self.is_alive():
                self.close()
                self._connect()

    @property
    def transport(self) -> paramiko.Transport:
        """The live paramiko transport (connecting if needed)."""
        self.ensure_alive()
        assert self._transport is not None
        return self._transport

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """An SFTP client on the live connection (reopened after a reconnection)."""
        import paramiko

        with self._lock:
            transport = self.transport
            channel = None if self._sftp is None else self._sftp.get_channel()
            if self._sftp is not None and channel is not None and not channel.closed:
                return self._sftp
            client = paramiko.SFTPClient.from_transport(transport)
            if client is None:
                raise SSHConnectionError(f"{self.endpoint}: could not open SFTP")
            self._sftp = client
            return client

    def close(self) -> None:
        """Close the connection (the next use reconnects)."""
        with self._lock:
            if self._sftp is not None:
                with contextlib.suppress(*transport_errors()):
                    self._sftp.close()
            if self._transport is not None:
                self._transport.close()
            self._sftp = None
            self._transport = None

    def _open_socket(self, ep: Endpoint) -> Any:
        import paramiko

        if ep.proxy_command:
            dlog.debug("connecting to %s through proxy command", ep)
            try:
                return paramiko.ProxyCommand(ep.proxy_command)
            except (paramiko.SSHException, OSError) as err:
                raise SSHConnectionError(f"{ep}: proxy command failed to start: {err}") from err
        try:
            sock = socket.create_connection((ep.hostname, ep.port), timeout=self.timeout)
        except OSError as err:
            raise SSHConnectionError(f"cannot connect to {ep}: {err}") from err
        enable_keepalive(sock)
        return sock

    def _credentials(self) -> auth.Credentials:
        return auth.Credentials(
            key_filename=self.key_filename,
            passphrase=self._passphrase,
            password=self._password,
            totp_secret=self._totp_secret,
            codes=self._codes,
            look_for_keys=self.look_for_keys,
        )

    def _connect(self) -> None:
        import paramiko

        ep = self.endpoint
        sock = self._open_socket(ep)
        transport = paramiko.Transport(sock, default_window_size=_WINDOW)
        try:
            transport.banner_timeout = self.timeout
            transport.auth_timeout = self.timeout
            known = auth.load_known_hosts(ep.known_hosts + ep.read_only_known_hosts)
            prefer_algorithms(transport, auth.known_key_types(known, ep.host_id))
            try:
                transport.start_client(timeout=self.timeout)
            except transport_errors() as err:
                raise SSHConnectionError(f"SSH handshake with {ep} failed: {err}") from err
            auth.verify_host_key(transport, ep, known, self.host_key_policy)
            auth.authenticate(transport, ep, self._credentials())
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(30)
        self._transport = transport
        self.connections += 1
        dlog.debug("connected to %s (connection %d)", ep, self.connections)
        if self.execute_command:
            res = self.run_raw(self.execute_command)
            if res.exit_code != 0:
                dlog.warning(
                    "execute_command exited with %d on %s: %s",
                    res.exit_code,
                    ep,
                    res.stderr.decode("utf-8", "replace").strip()[-500:],
                )

    # -- commands -----------------------------------------------------------------------
    def exec_command(
        self, cmd: str, retry: int = 0
    ) -> tuple[paramiko.ChannelFile, paramiko.ChannelFile, paramiko.channel.ChannelStderrFile]:
        """Start ``cmd`` with the login shell; return ``(stdin, stdout, stderr)`` files.

        Like paramiko's ``SSHClient.exec_command`` (``retry`` is accepted for
        compatibility and ignored).
        """
        chan = self._open_channel()
        chan.exec_command(cmd)
        return chan.makefile_stdin("wb"), chan.makefile("r"), chan.makefile_stderr("r")

    def get_ssh_client(self) -> SSHSession:
        """This session, which answers ``exec_command``, ``get_transport`` and
        ``open_sftp`` like a paramiko ``SSHClient`` (kept for compatibility)."""
        return self

    def get_transport(self) -> paramiko.Transport:
        """The live transport (as ``SSHClient.get_transport``)."""
        return self.transport

    def open_sftp(self) -> paramiko.SFTPClient:
        """The SFTP client (as ``SSHClient.open_sftp``)."""
        return self.sftp

    def _open_channel(self) -> paramiko.Channel:
        try:
            return self.transport.open_session(timeout=self.timeout)
        except transport_errors() as err:
            raise ConnectionDropped(
                f"{self.endpoint}: cannot open a channel: {err}", sent=False
            ) from err

    def run_raw(
        self,
        script: str,
        *,
        stdin: bytes | None = None,
        producer: Producer | None = None,
        consumer: Consumer | None = None,
        timeout: float | None = None,
    ) -> RawResult:
        """Run a bash ``script`` in a new channel; see :func:`run_on_channel`.

        Raises :class:`ConnectionDropped` (``sent=False`` if the command surely did
        not start) when the connection breaks.
        """
        return run_on_channel(
            self._open_channel(),
            script,
            str(self.endpoint),
            stdin=stdin,
            producer=producer,
            consumer=consumer,
            timeout=timeout,
        )


# -- helpers ---------------------------------------------------------------------------
def _check_settings(hostname: str, host_key_policy: str, archive_chunk_size: Any) -> None:
    """Refuse a session without a host, with an unknown host key policy or a bad chunk size."""
    if host_key_policy not in auth.HOST_KEY_POLICIES:
        raise ConfigurationError(
            f"remote_profile/host_key_policy: {host_key_policy!r} is not one of "
            f"{', '.join(auth.HOST_KEY_POLICIES)}"
        )
    if not hostname:
        raise ConfigurationError("remote_profile/hostname is required")
    if archive_chunk_size is not None and (
        not isinstance(archive_chunk_size, int) or archive_chunk_size < 0
    ):
        raise ConfigurationError(
            "remote_profile/archive_chunk_size: expected bytes as an int >= 0, "
            f"got {archive_chunk_size!r}"
        )


__all__ = ["RawResult", "SSHSession"]
