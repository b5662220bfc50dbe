"""Client of the DP Cloud Server (Bohrium / Lebesgue) service.

Modules: :mod:`.api` (the HTTP/OSS :class:`~.api.Client` and the reference
manual's functions), :mod:`.config` (endpoints from the environment),
:mod:`.retcode` (return codes and their explanations), :mod:`.zip_file` (job
archives, safe extraction). Importing this package imports neither ``requests``
nor ``oss2``.
"""

from __future__ import annotations

from ._models import CloudAPIError, CloudAuthError, CreatedJob, JobDetail, StsToken
from .client import Client
from .retcode import RETCODE

__all__ = [
    "RETCODE",
    "Client",
    "CloudAPIError",
    "CloudAuthError",
    "CreatedJob",
    "JobDetail",
    "StsToken",
]
