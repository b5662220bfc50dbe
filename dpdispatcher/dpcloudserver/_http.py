"""The HTTP session with the Bohrium API: headers, bounded retries, login, errors.

:class:`ApiSession` sends every request with the headers of :func:`._wire.auth_headers`,
logs in once (``POST /account/login``) and again, once per call, when the service
rejects the token (HTTP 401 or code ``2100``), and turns failures into
:class:`~._models.RequestInfoException` (or :class:`~._models.CloudAuthError`) with
secrets removed. :class:`~.client.Client` adds the API calls.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from . import config
from ._models import CloudAPIError, CloudAuthError, RequestInfoException
from ._util import RetryPolicy, log, origin, without_query
from ._wire import auth_headers, login_body
from .retcode import RETCODE, explain, is_ok

if TYPE_CHECKING:
    import requests

__all__ = ["TOKEN_REJECTED_CODES", "ApiSession"]

#: Codes (besides HTTP 401) by which the service says the token is no longer valid.
TOKEN_REJECTED_CODES = frozenset({RETCODE.LOGINERR})
_AUTH_CODES = frozenset({RETCODE.LOGINERR, RETCODE.PWDERR, RETCODE.USERERR, RETCODE.VERIFYERR})


class ApiSession:
    """Credentials, the HTTP session and the retry loop (see :class:`~.client.Client`)."""

    def __init__(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ticket: str | None = None,
        api_host: str | None = None,
        base_url: str | None = None,
        debug: bool = False,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._identity = email or phone or username or None
        self._password = password
        self._ticket = ticket
        self._token: str | None = None
        self._api_host = api_host or base_url  # base_url: 1.1.0's name
        del debug  # 1.1.0's flag; the dpdispatcher logger's level decides
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries, backoff, max_backoff, sleep)
        self._session: requests.Session | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_host={self.api_host!r}, user={self._identity!r})"

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
        """The current login token (``None`` before :meth:`login`); settable, as in 1.1.0."""
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        self._token = value

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
        if "://" in path:
            if origin(path) != origin(self.api_host):
                raise ValueError(f"refusing to send credentials to {without_query(path)}")
            return path
        return self.api_host.rstrip("/") + "/" + path.lstrip("/")

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

        def send() -> requests.Response:
            return self._transport(
                method, url, headers=dict(headers), timeout=self.timeout, stream=stream, **kwargs
            )

        return self.retry.send(
            f"{method} {without_query(url)}",
            send,
            idempotent=idempotent,
            errors=(requests.ConnectionError, requests.Timeout),
            unsent=(requests.ConnectTimeout,),
            hint="DPDISPATCHER_LEBESGUE_API_HOST",
        )

    def _transport(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP request (no retry); through :attr:`session`."""
        return self.session.request(method, url, **kwargs)

    @property
    def ticket(self) -> str | None:
        """The ticket given to the constructor (``BOHR_TICKET``, when set, goes first)."""
        return self._ticket

    def _ticket_value(self) -> str:
        return os.environ.get("BOHR_TICKET") or self._ticket or ""

    def _auth_headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None and not self._ticket_value() and self._can_login():
                self.login()
            if self._token is None and not self._ticket_value():
                raise CloudAuthError(
                    "not logged in: give `email` (or `phone`) and `password` in remote_profile, "
                    "or set the BOHR_TICKET environment variable",
                    code=RETCODE.LOGINERR,
                    explanation=explain(RETCODE.LOGINERR),
                )
            return auth_headers(self._token, self._ticket_value())

    def _can_login(self) -> bool:
        return bool(self._password) and bool(self._identity)

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
            if not resp.ok or payload is None or not is_ok(payload.get("code")):
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
            return RequestInfoException(
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
        kind = CloudAuthError if auth_failed or code in _AUTH_CODES else RequestInfoException
        return kind(text, code=code, http_status=status, explanation=hint)

    def login(
        self,
        password: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        username: str | None = None,
    ) -> None:
        """Log in with ``POST /account/login``; stores the token for later calls.

        Arguments given here replace the ones given to the constructor. The account
        (email, else phone number, else user name) is sent under ``email``.
        """
        with self._lock:
            if password is not None:
                self._password = password
            self._identity = email or phone or username or self._identity
            if not self._can_login():
                raise CloudAuthError(
                    "cannot log in: give `password` and one of `email` or `phone` in "
                    "remote_profile (or set BOHR_TICKET instead)",
                    code=RETCODE.LOGINERR,
                    explanation=explain(RETCODE.LOGINERR),
                )
            body = login_body(self._identity or "", self._password or "")
            data = self._request("POST", "/account/login", json=body, auth=False)
            token = data.get("token") if isinstance(data, Mapping) else None
            if not token:
                raise CloudAuthError("POST /account/login succeeded but returned no token")
            self._token = str(token)
            log.debug("logged in to %s", self.api_host)


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
