"""The 1.x import path of the cloud client: :mod:`dpdispatcher.dpcloudserver` re-exported."""

from __future__ import annotations

from dpdispatcher.dpcloudserver import client, config, retcode, zip_file
from dpdispatcher.dpcloudserver.client import Client

__all__ = ["Client", "client", "config", "retcode", "zip_file"]
