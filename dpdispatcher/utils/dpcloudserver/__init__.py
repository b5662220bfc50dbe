"""The 1.x import path of the cloud client: :mod:`dpdispatcher.dpcloudserver` re-exported.

``dpdispatcher.utils.dpcloudserver.client`` (and ``.config``, ``.retcode``,
``.zip_file``) are the very modules of :mod:`dpdispatcher.dpcloudserver`, registered
under this package too, so ``from dpdispatcher.utils.dpcloudserver.client import
RequestInfoException`` works as in 1.1.0.
"""

from __future__ import annotations

import sys

from dpdispatcher.dpcloudserver import client, config, retcode, zip_file
from dpdispatcher.dpcloudserver.client import Client

__all__ = ["Client", "client", "config", "retcode", "zip_file"]

for _module in (client, config, retcode, zip_file):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module
