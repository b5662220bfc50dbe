"""The exceptions of the SSH transport (all :class:`~dpdispatcher.errors.ContextError`)."""

from __future__ import annotations

from dpdispatcher.errors import ContextError


class SSHError(ContextError):
    """Base class of the errors of the SSH transport."""


class SSHConnectionError(SSHError):
    """The server could not be reached, or the connection broke (retried with backoff)."""


class ConnectionDropped(SSHConnectionError):
    """The connection broke during an operation; ``sent`` tells if a command was sent."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class SSHAuthenticationError(SSHError):
    """No authentication method was accepted (not retried)."""


class HostKeyError(SSHError):
    """The server's host key could not be trusted (not retried)."""


class UnknownHostKeyError(HostKeyError):
    """The host is not in known_hosts and the policy is ``reject``."""


class HostKeyChangedError(HostKeyError):
    """The host is in known_hosts with a different key: always refused."""


class AmbiguousCommandError(SSHError):
    """A command that must not run twice may or may not have run when the link broke."""


class SSHTimeoutError(SSHError):
    """A command did not finish within its timeout."""
