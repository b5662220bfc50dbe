"""Slurm batch types under the reference manual's import path (``dpdispatcher.slurm``)."""

from __future__ import annotations

from dpdispatcher.machines.slurm import Slurm, SlurmJobArray

__all__ = ["Slurm", "SlurmJobArray"]
