"""The session with the DP Cloud Server HTTP API (see :class:`Client`).

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
from typing import TYPE_CHECKING, Any, Callable

from . import config
from ._models import CloudAPIError, CloudAuthError, CreatedJob, JobDetail, StsToken, camelize
from ._oss import OssTransfer
from ._util import MiB, RetryPolicy, atomic_target, log, origin, without_query
from .retcode import RETCODE, explain, is_ok

if TYPE_CHECKING:
    import requests

__all__ = ["TOKEN_REJECTED_CODES", "Client"]

#: Codes (besides HTTP 401) by which the service says the token is no longer valid.
TOKEN_REJECTED_CODES = frozenset({RETCODE.LOGINERR})
_RETRY_ALWAYS = frozenset({429, 502, 503, 504})


class Client:
    """A session with the DP Cloud Server API and its OSS storage.

    Parameters
    ----------
    email, phone, username, password
        Login credentials; with them, the client logs in on first use and again
        (once per call) when the service rejects the token.
    ticket
        A Bohrium ticket, sent as the ``Brm-Ticket`` header. Without it (and
        without a token) the ``BOHR_TICKET`` environment variable is used.
    api_host
        Base URL of the API; default: :func:`config.api_host` at each call.
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

    def __init__(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ticket: str | None = None,
        api_host: str | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._identity = {"email": email, "phone": phone, "username": username}
        self._password = password
        self._ticket = ticket
        self._token: str | None = None
        self._api_host = api_host
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries, backoff, max_backoff, sleep)
        self._session: requests.Session | None = None
        self._lock = threading.RLock()
        self._sts: StsToken | None = None
        self._oss = OssTransfer(self.sts_token, self.retry, timeout[1])

    def __repr__(self) -> str:
        who = next((v for v in self._identity.values() if v), None)
        return f"{type(self).__name__}(api_host={self.api_host!r}, user={who!r})"

    # ------------------------------------------------------------------ plumbing
    @property
    def api_host(self) -> str:
        """The API base URL in use."""
        return self._api_host or config.api_host()

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt of each call."""
        return self.retry.max_retries

    @property
    def token(self) -> str | None:
        """The current login token (``None`` before :meth:`login`)."""
        return self._token

    @property
    def session(self) -> requests.Session:
        """The underlying :class:`requests.Session` (created on first use)."""
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _url(self, path: str) -> str:
        host = self.api_host
        if "://" in path:
            if origin(path) != origin(host):
                raise ValueError(f"refusing to send credentials to {without_query(path)}")
            return path
        return host.rstrip("/") + "/" + path.lstrip("/")

    def _redact(self, text: str) -> str:
        secrets = (self._password, self._token, self._ticket, os.environ.get("BOHR_TICKET"))
        for secret in secrets:
            if secret and len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        idempotent: bool,
        stream: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """One logical HTTP call with bounded retries; returns the last answer."""
        import requests

        what = f"{method} {without_query(url)}"
        attempt = 0
        while True:
            try:
                resp = self.session.request(
                    method,
                    url,
                    headers=dict(headers),
                    timeout=self.timeout,
                    stream=stream,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as err:
                safe = idempotent or isinstance(err, requests.ConnectTimeout)
                if not safe or attempt >= self.retry.max_retries:
                    raise CloudAPIError(
                        f"{what} failed after {attempt + 1} attempt(s): {type(err).__name__}; "
                        "check the network and DPDISPATCHER_LEBESGUE_API_HOST"
                    ) from err
                reason = type(err).__name__
            else:
                status = resp.status_code
                retry = status in _RETRY_ALWAYS or (idempotent and status >= 500)
                if not retry or attempt >= self.retry.max_retries:
                    log.debug("%s -> HTTP %d", what, status)
                    return resp
                resp.close()
                reason = f"HTTP {status}"
            self.retry.pause(attempt, what, reason)
            attempt += 1

    def _auth_headers(self) -> dict[str, str]:
        with self._lock:
            if self._token:
                return {"Authorization": f"jwt {self._token}"}
            ticket = self._ticket or os.environ.get("BOHR_TICKET")
            if ticket:
                return {"Brm-Ticket": ticket}
            if self._can_login():
                self.login()
                return {"Authorization": f"jwt {self._token}"}
        raise CloudAuthError(
            "not logged in: give `email` (or `phone`) and `password` in remote_profile, "
            "or set the BOHR_TICKET environment variable",
            code=RETCODE.LOGINERR,
            explanation=explain(RETCODE.LOGINERR),
        )

    def _can_login(self) -> bool:
        return bool(self._password) and any(self._identity.values())

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        auth: bool = True,
        idempotent: bool = True,
    ) -> Any:
        """Call the API and return ``data`` of a successful answer."""
        url = self._url(path)
        relogged = False
        while True:
            headers = self._auth_headers() if auth else {}
            resp = self._send(
                method, url, headers=headers, idempotent=idempotent, params=params, json=json
            )
            payload = _json_or_none(resp)
            if auth and _token_rejected(resp.status_code, payload):
                if not relogged and self._relogin(headers):
                    relogged = True
                    continue
                raise self._error(method, path, resp.status_code, payload, auth_failed=True)
            if resp.status_code >= 400 or payload is None or not is_ok(payload.get("code")):
                raise self._error(method, path, resp.status_code, payload)
            return payload.get("data")

    def _relogin(self, used_headers: Mapping[str, str]) -> bool:
        """After a rejection: log in again (unless another thread already did)."""
        with self._lock:
            if self._token and used_headers.get("Authorization") != f"jwt {self._token}":
                return True  # someone refreshed the token meanwhile
            if not self._can_login():
                return False
            log.info("the service rejected the login token; logging in again")
            self._token = None
            self.login()
            return True

    def _error(
        self,
        method: str,
        path: str,
        status: int,
        payload: Mapping[str, Any] | None,
        *,
        auth_failed: bool = False,
    ) -> CloudAPIError:
        what = f"{method} {without_query(path)}"
        if payload is None:
            return CloudAPIError(
                f"{what} failed: HTTP {status} with a response that is not the service's JSON",
                http_status=status,
            )
        raw_code = payload.get("code")
        code = None if raw_code is None else str(raw_code)
        if auth_failed and (code is None or is_ok(code)):
            code = RETCODE.LOGINERR
        hint = explain(code) if code is not None else "unexpected answer from the service"
        message = self._redact(str(payload.get("message") or payload.get("msg") or ""))
        text = f"{what} failed: HTTP {status}, code {code}: {hint}"
        if message:
            text += f" (service message: {message})"
        auth_codes = {RETCODE.LOGINERR, RETCODE.PWDERR, RETCODE.USERERR, RETCODE.VERIFYERR}
        kind = CloudAuthError if auth_failed or code in auth_codes else CloudAPIError
        return kind(text, code=code, http_status=status, explanation=hint)

    # ------------------------------------------------------------------ API
    def login(
        self,
        password: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        username: str | None = None,
    ) -> None:
        """Log in with ``POST /account/login``; stores the token for later calls.

        Arguments given here replace the ones given to the constructor.
        """
        with self._lock:
            if password is not None:
                self._password = password
            if email or phone or username:
                self._identity = {"email": email, "phone": phone, "username": username}
            if not self._can_login():
                raise CloudAuthError(
                    "cannot log in: give `password` and one of `email` or `phone` in "
                    "remote_profile (or set BOHR_TICKET instead)",
                    code=RETCODE.LOGINERR,
                    explanation=explain(RETCODE.LOGINERR),
                )
            body = {key: value for key, value in self._identity.items() if value}
            body["password"] = self._password or ""
            data = self._request("POST", "/account/login", json=body, auth=False)
            token = data.get("token") if isinstance(data, Mapping) else None
            if not token:
                raise CloudAuthError("POST /account/login succeeded but returned no token")
            self._token = str(token)
            log.debug("logged in to %s", self.api_host)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET`` an API path (relative to the API host); returns ``data``."""
        return self._request("GET", path, params=params)

    def post(self, path: str, json: Any = None, *, idempotent: bool = False) -> Any:
        """``POST`` a JSON body to an API path; returns ``data``."""
        return self._request("POST", path, json=json, idempotent=idempotent)

    def sts_token(self, *, refresh: bool = False) -> StsToken:
        """Temporary OSS credentials (``GET /data/get_sts_token``), cached until near expiry."""
        with self._lock:
            if self._sts is not None and not refresh and not self._sts.expires_within(300):
                return self._sts
        data = self.get("/data/get_sts_token")
        creds = _find_credentials(data)
        if creds is None:
            raise CloudAPIError("GET /data/get_sts_token returned no AccessKeyId")
        token = StsToken(
            access_key_id=str(creds["AccessKeyId"]),
            access_key_secret=str(creds.get("AccessKeySecret", "")),
            security_token=str(creds.get("SecurityToken", "")),
            expiration=str(creds.get("Expiration", "")),
        )
        with self._lock:
            self._sts = token
        return token

    def create_job(
        self,
        *,
        project_id: int | str,
        oss_path: str,
        cmd: str | None = None,
        out_files: Sequence[str] = (),
        log_files: Sequence[str] = (),
        input_data: Mapping[str, Any] | None = None,
        job_group_id: int | str | None = None,
    ) -> CreatedJob:
        """Create a job (``POST /brm/v2/job/add``); not retried once it may have landed.

        ``input_data`` keys are camel-cased (``job_name`` → ``jobName``); the
        explicit arguments take precedence over them.
        """
        body = camelize(input_data or {})
        body.update(projectId=project_id, ossPath=oss_path)
        if cmd is not None:
            body["cmd"] = cmd
        if out_files:
            body["outFiles"] = list(out_files)
        if log_files:
            body["logFiles"] = list(log_files)
        if job_group_id not in (None, "", 0):
            body["jobGroupId"] = job_group_id
        data = self._request("POST", "/brm/v2/job/add", json=body, idempotent=False)
        if not isinstance(data, Mapping) or data.get("jobId") in (None, ""):
            raise CloudAPIError("POST /brm/v2/job/add succeeded but returned no jobId")
        return CreatedJob(job_id=data["jobId"], job_group_id=data.get("jobGroupId"))

    def job_detail(self, job_id: int | str) -> JobDetail:
        """Status of a job (``GET /brm/v1/job/{id}``)."""
        data = self.get(f"/brm/v1/job/{_path_id(job_id)}")
        if not isinstance(data, Mapping):
            raise CloudAPIError(f"GET /brm/v1/job/{job_id} returned no job")
        exit_code = data.get("exitCode")
        return JobDetail(
            job_id=data.get("jobId", data.get("id", job_id)),
            status=int(data.get("status", 0)),
            exit_code=None if exit_code in (None, "") else int(exit_code),
            result_url=str(data.get("resultUrl") or ""),
            raw=dict(data),
        )

    def job_log(self, job_id: int | str) -> str:
        """The job's log text so far (``GET /brm/v1/job/{id}/log``)."""
        data = self.get(f"/brm/v1/job/{_path_id(job_id)}/log")
        if isinstance(data, Mapping):
            return str(data.get("log", ""))
        return "" if data is None else str(data)

    def kill_job(self, job_id: int | str) -> None:
        """Kill a job (``POST /brm/v1/job/kill/{id}``); killing twice is harmless."""
        self._request("POST", f"/brm/v1/job/kill/{_path_id(job_id)}", idempotent=True)

    def list_jobs(
        self, page: int = 1, per_page: int = 10, *, job_group_id: int | str | None = None
    ) -> Any:
        """One page of jobs (``GET /brm/v1/job/list``), optionally of one job group."""
        params: dict[str, Any] = {"page": page, "perPage": per_page}
        if job_group_id is not None:
            params["jobGroupId"] = job_group_id
        return self.get("/brm/v1/job/list", params)

    def download_result(self, url: str, save_file: str | os.PathLike[str]) -> Path:
        """Download a job's ``resultUrl`` to ``save_file`` (streamed, atomic rename).

        Credentials are sent only when the URL is on the API host itself; result
        URLs on the storage are pre-signed.
        """
        full = url if "://" in url else self._url(url)
        headers = self._auth_headers() if origin(full) == origin(self.api_host) else {}
        resp = self._send("GET", full, headers=headers, idempotent=True, stream=True)
        with resp:
            if resp.status_code != 200:
                raise CloudAPIError(
                    f"downloading the result {without_query(full)} failed: HTTP "
                    f"{resp.status_code}; the job's result may have expired",
                    http_status=resp.status_code,
                )
            with atomic_target(Path(save_file)) as tmp, open(tmp, "wb") as out:
                for chunk in resp.iter_content(chunk_size=MiB):
                    out.write(chunk)
        return Path(save_file)

    # ------------------------------------------------------------------ OSS
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


_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def _path_id(job_id: int | str) -> str:
    text = str(job_id)
    if not _SAFE_ID.match(text):
        raise ValueError(f"invalid job id {text!r}")
    return text


def _json_or_none(resp: requests.Response) -> dict[str, Any] | None:
    try:
        payload = resp.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _token_rejected(status: int, payload: Mapping[str, Any] | None) -> bool:
    if status == 401:
        return True
    code = None if payload is None else payload.get("code")
    return code is not None and str(code) in TOKEN_REJECTED_CODES


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
