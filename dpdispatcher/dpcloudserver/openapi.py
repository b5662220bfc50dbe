"""The Bohrium OpenAPI through ``bohrium-sdk`` (the optional extra ``bohrium``).

:class:`OpenApiClient` uses the SDK's client (base URL ``BOHRIUM_BASE_URL``, default
``https://openapi.dp.tech``; ``Authorization: Bearer <access key>`` and the query
``accessKey``) and its Tiefblue storage client (``storeHost`` of the created job, else
``TIEFBLUE_BASE_URL``). The SDK is imported on first use; without it a
:class:`~dpdispatcher.errors.ConfigurationError` names the extra to install.

Calls and shapes (those of the original 1.1.0 OpenAPI backend, recorded in
``tests/cloud_emulator/README.md``):

- ``POST /openapi/v1/job/create`` ``{"projectId", "name", "bohrGroupId"?}`` →
  ``{jobId, jobGroupId, storePath, token, storeHost}``;
- the archive to ``<storePath><job_hash>.zip`` on Tiefblue with the job's token;
- ``POST /openapi/v2/job/add``: ``ossPath`` (a list), ``inputFileType`` 3,
  ``inputFileMethod`` 1, ``jobType``, ``jobName``, ``projectId``, ``scassType``, ``cmd``,
  ``outFiles``, ``platform``, ``imageName``, ``logFiles`` and the created ``jobId``;
- ``GET /openapi/v1/job/{id}``, ``GET /openapi/v1/job/{id}/log``,
  ``POST /openapi/v1/job/kill/{id}``.

Retries are this package's (:class:`~._util.RetryPolicy`): a connection error or a
5xx answer is retried for reads and kills; creating calls only when the request
cannot have been processed (connection refused, 429, 502, 503, 504). A call that
fails for good raises :class:`~._models.RequestInfoException`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable

from dpdispatcher.errors import ConfigurationError

from ._models import JobDetail, RequestInfoException
from ._util import RetryPolicy, without_query

__all__ = ["EXTRA_HINT", "OpenApiClient", "import_sdk", "redact_logs"]

EXTRA_HINT = (
    "the OpenAPI batch type needs the bohrium-sdk package: "
    "pip install 'dpdispatcher[bohrium]' (or pip install bohrium-sdk)"
)


class _Redact(logging.Filter):
    """Masks secrets in the records of the SDK's loggers (httpx logs URLs with
    ``?accessKey=<key>`` at INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(secret in text for secret in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, None
        return True


_REDACT = _Redact()


def redact_logs(*secrets: str | None) -> None:
    """Mask ``secrets`` in whatever the ``httpx`` and ``bohrium`` loggers emit."""
    _REDACT.secrets.update(s for s in secrets if s and len(s) >= 3)
    for name in ("httpx", "bohrium", "bohrium._base_client", "bohrium.resources.job.job"):
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


def import_sdk() -> Any:
    """The ``bohrium`` module (bohrium-sdk), or a ConfigurationError naming the extra."""
    try:
        import bohrium  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        raise ConfigurationError(EXTRA_HINT) from err
    return bohrium


class OpenApiClient:
    """The OpenAPI calls the OpenAPI batch type makes (see the module documentation)."""

    def __init__(
        self,
        *,
        access_key: str,
        project_id: int,
        app_key: str | None = None,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._access_key = access_key
        self.project_id = project_id
        self._app_key = app_key
        self.retry = RetryPolicy(max_retries, backoff, max_backoff, sleep)
        self._sdk: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(project_id={self.project_id!r})"

    @property
    def sdk(self) -> Any:
        """The SDK's client (created on first use)."""
        with self._lock:
            if self._sdk is None:
                bohrium = import_sdk()
                redact_logs(self._access_key, self._app_key)
                self._sdk = bohrium.Bohrium(
                    access_key=self._access_key, project_id=self.project_id, app_key=self._app_key
                )
            return self._sdk

    def close(self) -> None:
        """Close the SDK's HTTP client."""
        if self._sdk is not None:
            self._sdk.close()

    def _redact(self, text: str) -> str:
        for secret in (self._access_key, self._app_key):
            if secret and len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    def _call(self, what: str, send: Callable[[], Any], *, idempotent: bool) -> Any:
        """Run one SDK request with bounded retries; return ``data`` of its JSON answer."""
        import httpx  # type: ignore[import-not-found,unused-ignore]

        resp = self.retry.send(
            what,
            send,
            idempotent=idempotent,
            errors=(httpx.TransportError,),
            unsent=(httpx.ConnectError,),
            hint="BOHRIUM_BASE_URL",
        )
        return self._data(what, resp)

    def _data(self, what: str, resp: Any) -> Any:
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        code = payload.get("code") if isinstance(payload, Mapping) else None
        if resp.status_code >= 400 or code not in (0, "0", "0000"):
            message = payload.get("message", "") if isinstance(payload, Mapping) else ""
            hint = (
                " (check remote_profile/access_key and project_id)"
                if resp.status_code
                in (
                    401,
                    403,
                )
                else ""
            )
            raise RequestInfoException(
                self._redact(f"{what} failed: HTTP {resp.status_code}, code {code}: {message}")
                + hint,
                code=None if code is None else str(code),
                http_status=resp.status_code,
            )
        return payload.get("data") if isinstance(payload, Mapping) else None

    def create_job(self, name: str, group_id: int | None) -> Mapping[str, Any]:
        """``POST /openapi/v1/job/create``: ``{jobId, jobGroupId, storePath, token, storeHost}``."""
        body: dict[str, Any] = {"projectId": self.project_id, "name": name}
        if group_id:
            body["bohrGroupId"] = group_id
        data = self._call(
            "POST /openapi/v1/job/create",
            lambda: self.sdk.post("/openapi/v1/job/create", json=body),
            idempotent=False,
        )
        if not isinstance(data, Mapping) or not data.get("jobId") or not data.get("storePath"):
            raise RequestInfoException("POST /openapi/v1/job/create returned no jobId/storePath")
        return data

    def upload(self, local_file: str, object_key: str, token: str, store_host: str | None) -> None:
        """Upload ``local_file`` to ``object_key`` on Tiefblue with the job's ``token``.

        Below the SDK's multipart size (100 MiB) this is one binary upload whose answer
        is checked; larger files go through the SDK's multipart upload.
        """
        import_sdk()
        from bohrium.resources.tiefblue import tiefblue  # type: ignore[import-not-found,unused-ignore]

        storage = tiefblue.Tiefblue(base_url=store_host or os.environ.get("TIEFBLUE_BASE_URL"))
        what = f"Tiefblue upload of {object_key}"
        if os.path.getsize(local_file) >= 2 * tiefblue._DEFAULT_CHUNK_SIZE:
            self._call(
                what,
                lambda: storage.upload_From_file_multi_part(
                    object_key=object_key, file_path=local_file, token=token
                ),
                idempotent=True,
            )
            return
        option = tiefblue.Parameter()
        option.contentDisposition = f'attachment; filename="{os.path.basename(local_file)}"'

        def send() -> Any:
            with open(local_file, "rb") as src:
                data = src.read()
            return storage.write(object_key=object_key, data=data, parameter=option, token=token)

        self._call(what, send, idempotent=True)

    def insert_job(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """``POST /openapi/v2/job/add`` with a camel-cased body (``ossPath`` a list)."""
        data = self._call(
            "POST /openapi/v2/job/add",
            lambda: self.sdk.post("/openapi/v2/job/add", json=dict(body)),
            idempotent=False,
        )
        return data if isinstance(data, Mapping) else {}

    def job_detail(self, job_id: int | str) -> JobDetail:
        """``GET /openapi/v1/job/{id}`` as a :class:`JobDetail`."""
        from .client import detail_from_item

        path = f"/openapi/v1/job/{int(job_id)}"
        data = self._call(f"GET {path}", lambda: self.sdk.get(path), idempotent=True)
        detail = detail_from_item(data) if isinstance(data, Mapping) else None
        if detail is None:
            raise RequestInfoException(f"GET {path} returned no job status")
        return detail

    def job_log(self, job_id: int | str, offset: int = 0) -> str:
        """The job's console log from byte ``offset`` (``GET /openapi/v1/job/{id}/log``)."""
        path = f"/openapi/v1/job/{int(job_id)}/log"
        query = {"logFile": "STDOUTERR", "page": -1, "pageSize": 8192}
        data = self._call(f"GET {path}", lambda: self.sdk.get(path, params=query), idempotent=True)
        text = str(data.get("log", "")) if isinstance(data, Mapping) else ""
        return text.encode()[offset:].decode(errors="replace")

    def kill_job(self, job_id: int | str) -> None:
        """``POST /openapi/v1/job/kill/{id}``."""
        path = f"/openapi/v1/job/kill/{int(job_id)}"
        self._call(f"POST {path}", lambda: self.sdk.post(path), idempotent=True)

    def log_urls(self, job_id: int | str) -> list[str]:
        """The log files' URLs the job detail lists (``jobFiles.logFiles``)."""
        raw = self.job_detail(job_id).raw
        files = raw.get("jobFiles", {}).get("logFiles", []) if isinstance(raw, Mapping) else []
        return [str(f["url"]) for f in files if isinstance(f, Mapping) and f.get("url")]

    def download_result(self, url: str, save_file: str | os.PathLike[str]) -> Any:
        """Download ``resultUrl`` (a pre-signed URL) as the SDK does: a plain GET."""
        from pathlib import Path

        import requests

        from ._util import MiB, atomic_target

        for attempt in range(self.retry.max_retries + 1):
            try:
                resp = requests.get(url, stream=True, timeout=(10, 60))
            except requests.RequestException as err:
                if attempt >= self.retry.max_retries:
                    raise RequestInfoException(f"downloading {without_query(url)} failed") from err
                self.retry.pause(attempt, "result download", type(err).__name__)
                continue
            with resp:
                if resp.status_code == 200:
                    with atomic_target(Path(save_file)) as tmp, open(tmp, "wb") as out:
                        for chunk in resp.iter_content(chunk_size=MiB):
                            out.write(chunk)
                    return Path(save_file)
                if resp.status_code < 500 or attempt >= self.retry.max_retries:
                    raise RequestInfoException(
                        f"downloading {without_query(url)} failed: HTTP {resp.status_code}",
                        http_status=resp.status_code,
                    )
            self.retry.pause(attempt, "result download", f"HTTP {resp.status_code}")
        raise RequestInfoException(f"downloading {without_query(url)} failed")
