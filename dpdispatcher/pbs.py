"""PBS and Torque under the reference manual's import path (``dpdispatcher.pbs``)."""

from __future__ import annotations

from dpdispatcher.machines.pbs import PBS, Torque

__all__ = ["PBS", "Torque"]
