"""A local emulator of the DP Cloud Server (Bohrium) service, for tests.

One real HTTP server on 127.0.0.1 (stdlib ``ThreadingHTTPServer``) serves both the
JSON API (:mod:`.service`) and an OSS-compatible object store (:mod:`.oss`), and
runs submitted jobs for real (:mod:`.jobs`). Faults are injected through the
Python methods of :class:`CloudEmulator` or, for an emulator in another process,
``POST /_emulator/<method>`` with the keyword arguments as a JSON object
(``GET /_emulator/calls`` returns the call counts).

Examples
--------
>>> with CloudEmulator(tmp_dir) as emu:  # doctest: +SKIP
...     os.environ.update(emu.env())
...     emu.fail_next(2, status=503)
...     emu.calls["POST /brm/v2/job/add"]
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from . import oss
from .jobs import FAILED, FINISHED, JobRunner
from .openapi import OpenApi
from .oss import Response
from .service import PARAMERR, Service, reply
from .state import HOSTILE_KINDS, HostileKind, RejectMode, State, _CountedFault

log = logging.getLogger("cloud_emulator")

ENV_NAMES = (
    "DPDISPATCHER_LEBESGUE_API_HOST",
    "DPDISPATCHER_LEBESGUE_ALI_STS_ENDPOINT",
    "DPDISPATCHER_LEBESGUE_ALI_STS_BUCKET_NAME",
    "DPDISPATCHER_LEBESGUE_ALI_OSS_BUCKET_URL",
)


#: the headers a recorded request keeps (their values, for the API's own headers)
RECORDED_HEADERS = ("authorization", "brm-ticket", "content-type", "range")


def recorded(
    key: str, query: dict[str, str], headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    """One request as the emulator records it: route, query, API headers, JSON body.

    Storage (``OSS ...``) requests keep only the names of the API headers they carry.
    """
    entry: dict[str, Any] = {"route": key, "query": dict(query)}
    kept = {name: headers[name] for name in RECORDED_HEADERS if name in headers}
    entry["headers"] = sorted(kept) if key.startswith("OSS ") else kept
    if not key.startswith("OSS "):
        try:
            entry["json"] = json.loads(body) if body.strip() else None
        except ValueError:
            entry["json"] = "<not JSON>"
    return entry


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: CloudEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client gave up (e.g. a read timeout during an injected delay)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        response = self.server.emulator._serve(self.command, path, query, headers, body)
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        headers = {"x-oss-request-id": secrets.token_hex(12).upper(), **response.headers}
        headers.setdefault("Content-Length", str(len(response.body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)


class CloudEmulator:
    """The emulated service: start it, point the client at :meth:`env`, inject faults.

    Parameters
    ----------
    workdir
        Scratch space for the jobs (a temporary directory when ``None``).
    bucket
        The OSS bucket name advertised through the environment.
    queue_delay
        Seconds a job stays in status 0 (waiting) before it starts.
    """

    EMAIL = "tester@example.com"
    PHONE = "13800000000"
    PASSWORD = "correct-horse-battery-staple"

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bucket: str = "emulator-bucket",
        queue_delay: float = 0.05,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="cloud-emulator-"))
        self.state = State(bucket)
        self.state.add_user(self.PASSWORD, self.EMAIL, self.PHONE)
        self.runner = JobRunner(self.state, self._result_url, queue_delay)
        self.service = Service(
            self.state, self.runner, self.workdir, lambda: self.base_url, lambda: self.bucket_url
        )
        self.openapi = OpenApi(
            self.state, self.runner, self.service.jobs, self.workdir, lambda: self.base_url
        )
        self._host = host
        self._server = _Server((host, port), _Handler)
        self._server.emulator = self
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------
    def start(self) -> CloudEmulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = "cloud-emulator"
        self._thread.start()
        return self

    def stop(self) -> None:
        for job in list(self.service.jobs.values()):
            self.runner.kill(job)
        self._server.shutdown()
        self._server.server_close()
        self.runner.join()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> CloudEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def bucket(self) -> str:
        return self.state.bucket

    @property
    def bucket_url(self) -> str:
        """The bucket's public URL: ``ossPath`` entries must start with it."""
        return f"{self.base_url}/{self.bucket}/"

    def env(self) -> dict[str, str]:
        """The four ``DPDISPATCHER_LEBESGUE_*`` variables pointing at this emulator."""
        values = (
            self.base_url + "/",
            self.base_url,
            self.bucket,
            self.bucket_url,
        )
        return dict(zip(ENV_NAMES, values))

    def issue_access_key(self, key: str | None = None) -> str:
        """Register an OpenAPI access key (random when ``None``)."""
        value = key or "ak-" + secrets.token_hex(12)
        with self.state.lock:
            self.openapi.access_keys.add(value)
        return value

    def openapi_env(self) -> dict[str, str]:
        """``BOHRIUM_BASE_URL`` and ``TIEFBLUE_BASE_URL`` (bohrium-sdk) pointing here."""
        return {"BOHRIUM_BASE_URL": self.base_url, "TIEFBLUE_BASE_URL": self.base_url}

    def _result_url(self, key: str) -> str:
        return (
            f"{self.base_url}/{self.bucket}/{quote(key)}"
            "?Expires=4102444800&OSSAccessKeyId=STS.emulator&Signature=not-checked"
        )

    # accounts --------------------------------------------------------------------
    def add_user(self, password: str, email: str | None = None, phone: str | None = None) -> None:
        self.state.add_user(password, email, phone)

    def issue_ticket(self, ticket: str | None = None) -> str:
        """Register a ``Brm-Ticket`` value the API accepts (random when ``None``)."""
        value = ticket or "ticket-" + secrets.token_hex(12)
        with self.state.lock:
            self.state.tickets.add(value)
        return value

    def restrict_projects(self, project_ids: list[int] | None) -> None:
        """Only these project ids may create jobs (code 2103 otherwise); ``None``: any."""
        with self.state.lock:
            self.state.allowed_projects = None if project_ids is None else set(project_ids)

    # faults ----------------------------------------------------------------------
    def expire_tokens(self, mode: RejectMode = "http", tickets: bool = False) -> None:
        """Invalidate every login token now; rejected calls get HTTP 401 (``mode="http"``)
        or HTTP 200 with code ``"2100"`` (``mode="code"``)."""
        with self.state.lock:
            self.state.tokens.clear()
            if tickets:
                self.state.tickets.clear()
            self.state.faults.reject_mode = mode

    def fail_next(
        self, count: int, status: int = 503, path_prefix: str | None = None, skip: int = 0
    ) -> None:
        """Answer the next ``count`` requests whose path starts with ``path_prefix``
        (after letting ``skip`` of them through) with HTTP ``status``, unprocessed."""
        fault = _CountedFault(count, path_prefix, status=status, skip=skip)
        with self.state.lock:
            self.state.faults.failures.append(fault)

    def delay_next(self, seconds: float, count: int = 1, path_prefix: str | None = None) -> None:
        """Wait ``seconds`` before answering the next ``count`` matching requests."""
        with self.state.lock:
            self.state.faults.delays.append(_CountedFault(count, path_prefix, seconds=seconds))

    def force_exit_code(self, code: int, job_id: int | None = None) -> None:
        """Report ``code`` as the exit code of job ``job_id`` (``None``: of every job)."""
        with self.state.lock:
            self.state.faults.forced_exit[job_id] = code

    def serve_hostile_result(self, kind: HostileKind, job_id: int | None = None) -> None:
        """Add a hostile entry to result zips: ``"dotdot"`` (``../evil``),
        ``"absolute"`` (``/tmp/evil-absolute``) or ``"symlink"`` (``etc_link`` → ``/etc``)."""
        if kind not in HOSTILE_KINDS:
            raise ValueError(f"kind must be one of {HOSTILE_KINDS}")
        with self.state.lock:
            self.state.faults.hostile[job_id] = kind

    # observation -----------------------------------------------------------------
    @property
    def calls(self) -> Counter[str]:
        """Requests received per endpoint (a copy), e.g. ``"POST /brm/v2/job/add"`` or
        ``"OSS UploadPart"``; injected failures count too."""
        with self.state.lock:
            return Counter(self.state.calls)

    def reset_calls(self) -> None:
        with self.state.lock:
            self.state.calls.clear()
            self.state.auth_seen.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received (a copy; see :func:`recorded`), in order."""
        with self.state.lock:
            return list(self.state.requests)

    @property
    def rejected(self) -> list[str]:
        """Every request refused for its shape, as ``"<route>: <rule broken>"``."""
        with self.state.lock:
            return list(self.state.rejected)

    @property
    def auth_seen(self) -> list[tuple[str, str]]:
        """``(route, "jwt" | "ticket")`` for each accepted authenticated API call, and
        for each storage request that carried API credentials (it should not)."""
        with self.state.lock:
            return list(self.state.auth_seen)

    def job(self, job_id: int) -> dict[str, Any]:
        with self.state.lock:
            return self.service.jobs[int(job_id)].detail(self.base_url)

    def wait_for_job(self, job_id: int, timeout: float = 30.0) -> dict[str, Any]:
        """Block until the job has ended; returns its detail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            detail = self.job(job_id)
            if detail["status"] in (FINISHED, FAILED):
                return detail
            time.sleep(0.02)
        raise TimeoutError(f"job {job_id} did not end within {timeout} s")

    def get_object(self, key: str, bucket: str | None = None) -> bytes | None:
        obj = self.state.get_object(bucket or self.bucket, key)
        return None if obj is None else obj.data

    def put_object(self, key: str, data: bytes, bucket: str | None = None) -> None:
        self.state.put_object(bucket or self.bucket, key, data)

    # request handling ------------------------------------------------------------
    _CONTROL = (
        "expire_tokens",
        "fail_next",
        "delay_next",
        "force_exit_code",
        "serve_hostile_result",
        "add_user",
        "issue_ticket",
        "restrict_projects",
        "reset_calls",
    )

    def _log_file(self, path: str, headers: dict[str, str]) -> Response:
        """A job's console log (the URL of ``logFiles``), honouring ``Range: bytes=N-``."""
        with self.state.lock:
            self.state.calls["GET /logs/{id}"] += 1
            parts = path[len("/logs/") :].split("/", 1)
            job = self.service.jobs.get(int(parts[0] or 0)) if parts[0].isdigit() else None
        target = None if job is None else job.log_file_path(parts[1] if len(parts) > 1 else "")
        if target is None or not target.exists():
            return Response(404, b"no such log", {"Content-Type": "text/plain"})
        data = target.read_bytes()
        found = re.fullmatch(r"bytes=([0-9]+)-", headers.get("range", ""))
        if found:
            return Response(206, data[int(found[1]) :], {"Content-Type": "text/plain"})
        return Response(200, data, {"Content-Type": "text/plain"})

    def _control(self, name: str, body: bytes) -> Response:
        if name == "calls":
            return reply(dict(self.calls))
        if name not in self._CONTROL:
            return reply(code=PARAMERR, message=f"unknown control {name!r}", status=404)
        try:
            kwargs = json.loads(body) if body.strip() else {}
            result = getattr(self, name)(**kwargs)
        except (TypeError, ValueError) as err:
            return reply(code=PARAMERR, message=str(err), status=400)
        return reply({"result": result})

    def _serve(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Response:
        if path.startswith("/_emulator/"):
            return self._control(path[len("/_emulator/") :], body)
        if self.openapi.owns(path):
            key = self.openapi.route_key(method, path)
            with self.state.lock:
                self.state.requests.append(recorded(key, query, headers, body))
                self.state.calls[key] += 1
            status = self.state.take_failure(path)
            if status is not None:
                return reply(code="2400", message="injected failure", status=status)
            return self.openapi.handle(method, path, query, headers, body)
        api = self.service.is_api_path(path)
        matched = self.service.match(method, path) if api else None
        if api:
            key = matched[0].key if matched else f"{method} {path}"
        elif path.startswith("/logs/"):
            key = "GET /logs/{id}"
        else:
            key = "OSS " + oss.operation(method, query)
        with self.state.lock:
            self.state.requests.append(recorded(key, query, headers, body))
        if path.startswith("/logs/") and method == "GET":
            return self._log_file(path, headers)
        with self.state.lock:
            self.state.calls[key] += 1
            if not api and headers.get("authorization", "").startswith("jwt "):
                self.state.auth_seen.append((key, "jwt"))  # API credentials sent to storage
            if not api and "brm-ticket" in headers:
                self.state.auth_seen.append((key, "ticket"))
        delay = self.state.take_delay(path)
        if delay:
            time.sleep(delay)
        status = self.state.take_failure(path)
        if status is not None:
            if api:
                return reply(code="2400", message="injected failure", status=status)
            return oss.error(status, "InternalError", "injected failure")
        if api:
            if matched is None:
                return reply(code=PARAMERR, message=f"no route {method} {path}", status=404)
            return self.service.call(matched[0], matched[1], query, body, headers)
        bucket, _, obj_key = path.lstrip("/").partition("/")
        return oss.handle(self.state, method, bucket, obj_key, query, headers, body)
