"""The Bohrium (DP Cloud Server) API calls (see :class:`Client`).

The request shapes are those of :mod:`._wire`; :class:`RequestInfoException` is the
error the original 1.1.0 raised here when a request failed for good (dflow imports it
from this module).

Examples
--------
>>> from dpdispatcher.dpcloudserver.client import Client
>>> client = Client(email="me@example.com", password="...")  # doctest: +SKIP
>>> client.upload_file("job.zip", "program/1/uuid/job.zip")  # doctest: +SKIP
>>> job = client.create_job(project_id=1, oss_path="program/1/uuid/job.zip",
...                         cmd="bash .hash.sub", input_data={"job_type": "container"})
... # doctest: +SKIP
>>> client.job_detail(job.job_id).status  # doctest: +SKIP
2
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from ._http import TOKEN_REJECTED_CODES, ApiSession
from ._models import CloudAPIError, CreatedJob, JobDetail, RequestInfoException, StsToken
from ._oss import OssTransfer
from ._util import LazyModule, MiB, atomic_target, without_query

if TYPE_CHECKING:
    import requests
else:  # imported on first use; a module-level name users' tests patch, as in 1.1.0
    requests = LazyModule("requests")
from ._wire import job_add_body, list_query

#: tries of :meth:`Client.download_from_url` (1.1.0's count)
DOWNLOAD_ATTEMPTS = 3

__all__ = [
    "DOWNLOAD_ATTEMPTS",
    "TOKEN_REJECTED_CODES",
    "Client",
    "CloudAPIError",
    "RequestInfoException",
    "detail_from_item",
    "oss_url",
]


class Client(ApiSession):
    """A session with the Bohrium API and its OSS storage.

    Parameters
    ----------
    email, phone, username, password
        Login credentials (the account is sent under ``email`` whichever it is);
        with them, the client logs in on first use and again (once per call) when
        the service rejects the token.
    ticket
        A Bohrium ticket, sent as the ``Brm-Ticket`` header; the ``BOHR_TICKET``
        environment variable, when set, is sent instead (as in 1.1.0). With a
        ticket the client does not log in.
    api_host, base_url
        Base URL of the API (``base_url`` is 1.1.0's name); default:
        :func:`config.api_host` at each call.
    debug
        Accepted for 1.1.0's signature; logging follows the ``dpdispatcher`` logger.
    timeout
        ``(connect, read)`` seconds for every HTTP call.
    max_retries
        Retries after a connection error, a timeout or a 5xx answer (so at most
        ``max_retries + 1`` attempts); calls that create something are only
        retried when the request cannot have been processed (connect errors,
        429/502/503/504).
    backoff, max_backoff
        The n-th retry waits ``min(max_backoff, backoff * 2**n)`` seconds.
    sleep
        Injectable for tests.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sts: StsToken | None = None
        self._sts_lock = threading.Lock()
        self._oss = OssTransfer(self.sts_token, self.retry, self.timeout[1])

    def _transport(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP request through this module's ``requests`` (1.1.0's calls, which
        its users' tests patch as ``client.requests.get``/``post``)."""
        send = getattr(requests, method.lower())
        response: requests.Response = send(url, **kwargs)
        return response

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET`` an API path (relative to the API host); returns ``data``."""
        return self._request("GET", path, params=params)

    def post(self, path: str, json: Any = None, *, idempotent: bool = False) -> Any:
        """``POST`` a JSON body to an API path; returns ``data``."""
        return self._request("POST", path, json=json, idempotent=idempotent)

    def sts_token(self, *, refresh: bool = False) -> StsToken:
        """Temporary OSS credentials (``GET /data/get_sts_token``), cached until near expiry."""
        with self._sts_lock:
            if self._sts is not None and not refresh and not self._sts.expires_within(300):
                return self._sts
        creds = _find_credentials(self.get("/data/get_sts_token"))
        if creds is None:
            raise RequestInfoException("GET /data/get_sts_token returned no AccessKeyId")
        token = StsToken(
            access_key_id=str(creds["AccessKeyId"]),
            access_key_secret=str(creds.get("AccessKeySecret", "")),
            security_token=str(creds.get("SecurityToken", "")),
            expiration=str(creds.get("Expiration", "")),
        )
        with self._sts_lock:
            self._sts = token
        return token

    def create_job(
        self,
        *,
        project_id: int | str,
        oss_path: str,
        cmd: str,
        out_files: Sequence[str] = (),
        log_files: Sequence[str] = (),
        input_data: Mapping[str, Any] | None = None,
        job_group_id: int | str | None = None,
    ) -> CreatedJob:
        """Create a job (``POST /brm/v2/job/add``); not retried once it may have landed.

        ``oss_path`` is the object key of the uploaded archive; the request names it
        by its URL (:func:`config.ali_oss_bucket_url` + key). The body is
        :func:`._wire.job_add_body`; ``job_group_id`` is sent only when
        ``input_data.grouped`` is true.
        """
        body = job_add_body(
            project_id=project_id,
            oss_url=oss_url(oss_path),
            cmd=cmd,
            out_files=out_files,
            log_files=log_files,
            input_data=input_data or {},
            job_group_id=job_group_id,
        )
        data = self._request("POST", "/brm/v2/job/add", json=body, idempotent=False)
        if not isinstance(data, Mapping) or data.get("jobId") in (None, ""):
            raise RequestInfoException("POST /brm/v2/job/add succeeded but returned no jobId")
        return CreatedJob(job_id=data["jobId"], job_group_id=data.get("jobGroupId"))

    def job_detail(self, job_id: int | str) -> JobDetail:
        """Status of a job (``GET /brm/v1/job/{id}``)."""
        data = self.get(f"/brm/v1/job/{_path_id(job_id)}")
        detail = detail_from_item(data) if isinstance(data, Mapping) else None
        if detail is None:
            raise RequestInfoException(f"GET /brm/v1/job/{job_id} returned no job status")
        return detail

    def log_urls(self, job_id: int | str) -> list[str]:
        """URLs of the job's log files (``GET /brm/v1/job/{id}/log?pageSize=1``)."""
        data = self.get(f"/brm/v1/job/{_path_id(job_id)}/log", {"pageSize": 1})
        files = data.get("logFiles") if isinstance(data, Mapping) else None
        if not isinstance(files, list):
            return []
        return [str(f["url"]) for f in files if isinstance(f, Mapping) and f.get("url")]

    def job_log(self, job_id: int | str, offset: int = 0) -> str:
        """The job's log text from byte ``offset`` on ("" when it has none yet)."""
        urls = self.log_urls(job_id)
        if not urls:
            return ""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._send("GET", urls[0], headers=headers, idempotent=True)
        with resp:
            if resp.status_code not in (200, 206):
                return ""
            return resp.content.decode(errors="replace")

    def kill_job(self, job_id: int | str) -> None:
        """Kill a job (``POST /brm/v1/job/kill/{id}``, body ``{}``); killing twice is harmless."""
        self._request("POST", f"/brm/v1/job/kill/{_path_id(job_id)}", json={}, idempotent=True)

    def list_jobs(
        self, page: int = 0, per_page: int = 30, *, job_group_id: int | str | None = None
    ) -> Any:
        """One page of jobs (``GET /brm/v1/job/list?groupId&page&pageSize``); the first
        page is page 0."""
        return self.get("/brm/v1/job/list", list_query(page, per_page, job_group_id))

    def download_result(self, url: str, save_file: str | os.PathLike[str]) -> Path:
        """Download a job's ``resultUrl`` (absolute, or relative to the API host) to
        ``save_file``: :meth:`download_from_url`."""
        return self.download_from_url(url if "://" in url else self._url(url), save_file)

    def download_from_url(self, url: str, save_file: str | os.PathLike[str]) -> Path:
        """Download ``url`` (e.g. a job's result) to ``save_file``, as 1.1.0's method.

        The request carries ``Authorization: jwt <token>`` as the service expects. Up to
        :data:`DOWNLOAD_ATTEMPTS` tries; then :class:`RequestInfoException` naming the URL
        and the last HTTP status/reason/body or transport error. Nothing is left at
        ``save_file`` on failure (written to a temporary name, renamed when complete).
        """
        last = ""
        for attempt in range(DOWNLOAD_ATTEMPTS):
            if attempt:
                time.sleep(min(self.retry.max_backoff, self.retry.backoff * 2 ** (attempt - 1)))
            try:
                resp = requests.get(url, headers={"Authorization": f"jwt {self._token or ''}"},
                                    stream=True, timeout=self.timeout)  # fmt: skip
            except (requests.RequestException, OSError) as err:  # transport failure
                last = f"{type(err).__name__}: {self._redact(str(err))}"
                continue
            try:
                if resp.ok:
                    with atomic_target(Path(save_file)) as tmp, open(tmp, "wb") as out:
                        for chunk in resp.iter_content(chunk_size=8192):
                            out.write(chunk)
                    return Path(save_file)
                last = (f"status_code={resp.status_code} reason={resp.reason} "
                        f"text={self._redact(str(resp.text))[:500]} (a job's result URL "
                        "may have expired)")  # fmt: skip
            finally:
                resp.close()
        raise RequestInfoException(
            f"downloading {without_query(url)} failed after {DOWNLOAD_ATTEMPTS} attempts: {last}"
        )

    def upload_file(
        self,
        local_file: str | os.PathLike[str],
        oss_key: str,
        *,
        endpoint: str | None = None,
        bucket_name: str | None = None,
        multipart_threshold: int = 10 * MiB,
        part_size: int = 8 * MiB,
    ) -> None:
        """Upload ``local_file`` to object ``oss_key`` with STS credentials.

        Files of ``multipart_threshold`` bytes or more go by multipart upload in
        ``part_size`` parts (each part retried on its own; a failed upload is
        aborted). ``endpoint``/``bucket_name`` default to :mod:`.config`.
        """
        self._oss.upload_file(
            local_file,
            oss_key,
            endpoint=endpoint,
            bucket_name=bucket_name,
            multipart_threshold=multipart_threshold,
            part_size=part_size,
        )

    def download_file(
        self,
        oss_key: str,
        save_file: str | os.PathLike[str],
        *,
        endpoint: str | None = None,
        bucket_name: str | None = None,
    ) -> Path:
        """Download object ``oss_key`` to ``save_file`` (atomic rename)."""
        return self._oss.download_file(
            oss_key, save_file, endpoint=endpoint, bucket_name=bucket_name
        )


def oss_url(key: str) -> str:
    """The URL of object ``key`` of the bucket (``ALI_OSS_BUCKET_URL`` + key)."""
    return config.ali_oss_bucket_url() + key.lstrip("/")


def detail_from_item(item: Mapping[str, Any]) -> JobDetail | None:
    """A :class:`JobDetail` from a job detail or a listing entry (None if it lacks fields)."""
    job_id = item.get("id", item.get("jobId"))
    status = item.get("status")
    if job_id in (None, "") or status in (None, ""):
        return None
    exit_code = item.get("exitCode")
    try:
        return JobDetail(
            job_id=job_id,
            status=int(status),
            exit_code=None if exit_code in (None, "") else int(exit_code),
            result_url=str(item.get("resultUrl") or ""),
            raw=dict(item),
        )
    except (TypeError, ValueError):
        return None


_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def _path_id(job_id: int | str) -> str:
    """The id in an API path; 1.1.0's ``"<id>:job_group_id:<group>"`` gives ``<id>``."""
    text = str(job_id).split(":job_group_id:", 1)[0]
    if not _SAFE_ID.match(text):
        raise ValueError(f"invalid job id {text!r}")
    return text


def _find_credentials(data: Any) -> Mapping[str, Any] | None:
    if not isinstance(data, Mapping):
        return None
    if "AccessKeyId" in data:
        return data
    for value in data.values():
        found = _find_credentials(value)
        if found is not None:
            return found
    return None
