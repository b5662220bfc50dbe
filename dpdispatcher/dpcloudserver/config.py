"""Endpoints of the DP Cloud Server (Bohrium / Lebesgue) service.

Every value is read from the environment *when it is asked for*, so a test (or a
user) can point the client at another service by setting a variable, without
re-importing anything:

======================================  ========================================
variable                                default
======================================  ========================================
``DPDISPATCHER_LEBESGUE_API_HOST``      ``https://bohrium.dp.tech/``
``DPDISPATCHER_LEBESGUE_ALI_STS_ENDPOINT``  ``http://oss-cn-shenzhen.aliyuncs.com``
``DPDISPATCHER_LEBESGUE_ALI_STS_BUCKET_NAME``  ``dpcloudserver``
``DPDISPATCHER_LEBESGUE_ALI_OSS_BUCKET_URL``  ``https://dpcloudserver.oss-cn-shenzhen.aliyuncs.com/``
======================================  ========================================

The module-level names ``API_HOST``, ``ALI_STS_ENDPOINT``, ``ALI_STS_BUCKET_NAME``
and ``ALI_OSS_BUCKET_URL`` are kept for code written against the reference
manual; they are computed on each access as well.

Examples
--------
>>> import os
>>> from dpdispatcher.dpcloudserver import config
>>> os.environ["DPDISPATCHER_LEBESGUE_API_HOST"] = "http://127.0.0.1:9/"
>>> config.API_HOST
'http://127.0.0.1:9/'
>>> del os.environ["DPDISPATCHER_LEBESGUE_API_HOST"]
>>> config.api_host()
'https://bohrium.dp.tech/'
"""

from __future__ import annotations

import os

__all__ = [
    "ALI_OSS_BUCKET_URL",
    "ALI_STS_BUCKET_NAME",
    "ALI_STS_ENDPOINT",
    "API_HOST",
    "HTTP_TIME_OUT",
    "ali_oss_bucket_url",
    "ali_sts_bucket_name",
    "ali_sts_endpoint",
    "api_host",
]

ENV_API_HOST = "DPDISPATCHER_LEBESGUE_API_HOST"
ENV_ALI_STS_ENDPOINT = "DPDISPATCHER_LEBESGUE_ALI_STS_ENDPOINT"
ENV_ALI_STS_BUCKET_NAME = "DPDISPATCHER_LEBESGUE_ALI_STS_BUCKET_NAME"
ENV_ALI_OSS_BUCKET_URL = "DPDISPATCHER_LEBESGUE_ALI_OSS_BUCKET_URL"

DEFAULT_API_HOST = "https://bohrium.dp.tech/"
#: seconds the 1.1.0 client waited for an HTTP answer (this client's default read timeout
#: is :class:`~dpdispatcher.dpcloudserver.client.Client`'s ``timeout``)
HTTP_TIME_OUT = 30
DEFAULT_ALI_STS_ENDPOINT = "http://oss-cn-shenzhen.aliyuncs.com"
DEFAULT_ALI_STS_BUCKET_NAME = "dpcloudserver"
DEFAULT_ALI_OSS_BUCKET_URL = "https://dpcloudserver.oss-cn-shenzhen.aliyuncs.com/"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def api_host() -> str:
    """Base URL of the HTTP API (``DPDISPATCHER_LEBESGUE_API_HOST``)."""
    return _env(ENV_API_HOST, DEFAULT_API_HOST)


def ali_sts_endpoint() -> str:
    """OSS endpoint used with the STS credentials (``..._ALI_STS_ENDPOINT``)."""
    return _env(ENV_ALI_STS_ENDPOINT, DEFAULT_ALI_STS_ENDPOINT)


def ali_sts_bucket_name() -> str:
    """OSS bucket the job archives go to (``..._ALI_STS_BUCKET_NAME``)."""
    return _env(ENV_ALI_STS_BUCKET_NAME, DEFAULT_ALI_STS_BUCKET_NAME)


def ali_oss_bucket_url() -> str:
    """Public URL of the bucket (``..._ALI_OSS_BUCKET_URL``), the prefix of ``ossPath``.

    As in dpdispatcher 1.1.0 it does not follow the bucket name or the endpoint: set
    the variable when either changes. A missing final ``/`` is added.
    """
    url = _env(ENV_ALI_OSS_BUCKET_URL, DEFAULT_ALI_OSS_BUCKET_URL)
    return url if url.endswith("/") else url + "/"


# Declared for type checkers and linters; the values come from ``__getattr__``.
API_HOST: str
ALI_STS_ENDPOINT: str
ALI_STS_BUCKET_NAME: str
ALI_OSS_BUCKET_URL: str

_COMPAT_NAMES = {
    "API_HOST": api_host,
    "ALI_STS_ENDPOINT": ali_sts_endpoint,
    "ALI_STS_BUCKET_NAME": ali_sts_bucket_name,
    "ALI_OSS_BUCKET_URL": ali_oss_bucket_url,
}


def __getattr__(name: str) -> str:
    """Compute the reference manual's upper-case names on access (PEP 562)."""
    try:
        getter = _COMPAT_NAMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getter()
