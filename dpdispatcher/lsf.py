"""LSF under the reference manual's import path (``dpdispatcher.lsf``)."""

from __future__ import annotations

from dpdispatcher.machines.lsf import LSF

__all__ = ["LSF"]
