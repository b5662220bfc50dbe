"""The DpCloudServerContext under the reference manual's import path."""

from __future__ import annotations

from dpdispatcher.contexts.dp_cloud_server_context import DpCloudServerContext

__all__ = ["DpCloudServerContext"]
