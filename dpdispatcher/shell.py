"""The Shell batch type under the reference manual's import path (``dpdispatcher.shell``)."""

from __future__ import annotations

from dpdispatcher.machines.shell import Shell

__all__ = ["Shell"]
