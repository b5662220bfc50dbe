"""SGE under a flat import path (``dpdispatcher.sge``), like the other batch types."""

from __future__ import annotations

from dpdispatcher.machines.sge import SGE

__all__ = ["SGE"]
