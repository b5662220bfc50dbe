"""SSHContext and SSHSession under the reference manual's path, ``dpdispatcher.ssh_context``."""

from __future__ import annotations

from dpdispatcher.contexts.ssh_context import SSHContext, SSHSession

__all__ = ["SSHContext", "SSHSession"]
