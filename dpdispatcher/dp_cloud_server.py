"""The DpCloudServer batch type under the reference manual's import path."""

from __future__ import annotations

from dpdispatcher.machines.dp_cloud_server import DpCloudServer

__all__ = ["DpCloudServer"]
