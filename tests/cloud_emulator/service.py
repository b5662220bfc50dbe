"""The JSON API of the emulator (``/account``, ``/data``, ``/brm``).

Every answer is ``{"code", "data", "message"}`` with code ``"0000"`` on success,
the codes of :class:`~dpdispatcher.dpcloudserver.retcode.RETCODE` otherwise.
Authenticated routes accept ``Authorization: jwt <token>`` or ``Brm-Ticket``;
a rejected token gets HTTP 401 (or, in ``"code"`` mode, HTTP 200 with code
``"2100"``).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from .jobs import Job, JobRunner
from .oss import Response
from .state import State

OK = "0000"
LOGINERR, PARAMERR, USERERR, ROLEERR, PWDERR, NODATA = (
    "2100",
    "2101",
    "2102",
    "2103",
    "2104",
    "2300",
)
DATAERR = "2002"


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def reply(
    data: Any = None, *, code: str = OK, message: str = "success", status: int = 200
) -> Response:
    body = json.dumps({"code": code, "data": {} if data is None else data, "message": message})
    return Response(status, body.encode(), {"Content-Type": "application/json"})


Handler = Callable[[re.Match[str], Mapping[str, str], Any], Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    key: str  # for call counts, e.g. "GET /brm/v1/job/{id}"
    handler: Handler
    auth: bool = True


class Service:
    """Route table and handlers of the API."""

    def __init__(self, state: State, runner: JobRunner, scratch: Path, base_url: Callable[[], str]):
        self.state = state
        self.runner = runner
        self.scratch = scratch
        self.base_url = base_url
        self.jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1001)
        self._group_ids = itertools.count(501)
        job = r"(?P<id>[0-9]+)"
        self.routes = [
            Route("POST", re.compile(r"/account/login"), "POST /account/login", self.login, False),
            Route("GET", re.compile(r"/data/get_sts_token"), "GET /data/get_sts_token", self.sts),
            Route("POST", re.compile(r"/brm/v2/job/add"), "POST /brm/v2/job/add", self.add_job),
            Route("GET", re.compile(r"/brm/v1/job/list"), "GET /brm/v1/job/list", self.list_jobs),
            Route("GET", re.compile(rf"/brm/v1/job/{job}"), "GET /brm/v1/job/{id}", self.detail),
            Route(
                "GET", re.compile(rf"/brm/v1/job/{job}/log"), "GET /brm/v1/job/{id}/log", self.log
            ),
            Route(
                "POST",
                re.compile(rf"/brm/v1/job/kill/{job}"),
                "POST /brm/v1/job/kill/{id}",
                self.kill,
            ),
        ]

    def match(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        for route in self.routes:
            found = route.pattern.fullmatch(path.rstrip("/"))
            if found and route.method == method:
                return route, found
        return None

    def is_api_path(self, path: str) -> bool:
        return path.split("/")[1] in ("account", "data", "brm")

    def call(
        self,
        route: Route,
        found: re.Match[str],
        query: Mapping[str, str],
        body: bytes,
        headers: Mapping[str, str],
    ) -> Response:
        if route.auth:
            rejected = self._authenticate(route.key, headers)
            if rejected is not None:
                return rejected
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return reply(code=PARAMERR, message="request body is not JSON", status=400)
        try:
            return reply(route.handler(found, query, payload))
        except ApiError as err:
            return reply(code=err.code, message=err.message, status=err.status)

    def _authenticate(self, route_key: str, headers: Mapping[str, str]) -> Response | None:
        auth = headers.get("authorization", "")
        ticket = headers.get("brm-ticket", "")
        with self.state.lock:
            if auth.startswith("jwt ") and auth[4:] in self.state.tokens:
                self.state.auth_seen.append((route_key, "jwt"))
                return None
            if ticket and ticket in self.state.tickets:
                self.state.auth_seen.append((route_key, "ticket"))
                return None
            mode = self.state.faults.reject_mode
        status = 401 if mode == "http" else 200
        return reply(code=LOGINERR, message="token is invalid or expired", status=status)

    # handlers ----------------------------------------------------------------
    def login(self, _m: re.Match[str], _q: Mapping[str, str], body: Any) -> Any:
        if not isinstance(body, dict):
            raise ApiError(PARAMERR, "body must be an object")
        identity = body.get("email") or body.get("phone") or body.get("username")
        password = body.get("password")
        if not identity or not isinstance(password, str):
            raise ApiError(PARAMERR, "email or phone, and password, are required")
        verdict = self.state.check_login(str(identity), password)
        if verdict == "user":
            raise ApiError(USERERR, "user does not exist")
        if verdict == "password":
            raise ApiError(PWDERR, "password error")
        return {"token": self.state.new_token()}

    def sts(self, _m: re.Match[str], _q: Mapping[str, str], _body: Any) -> Any:
        return self.state.new_sts()

    def _oss_key(self, oss_path: str) -> str:
        """Accept a key, ``/<bucket>/<key>`` or a URL of the bucket."""
        path = urlsplit(oss_path).path if "://" in oss_path else oss_path
        prefix = f"/{self.state.bucket}/"
        return path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")

    def add_job(self, _m: re.Match[str], _q: Mapping[str, str], body: Any) -> Any:
        if not isinstance(body, dict):
            raise ApiError(PARAMERR, "body must be an object")
        for name in ("projectId", "ossPath", "cmd"):
            if body.get(name) in (None, ""):
                raise ApiError(PARAMERR, f"{name} is required")
        allowed = self.state.allowed_projects
        if allowed is not None and int(body["projectId"]) not in allowed:
            raise ApiError(ROLEERR, "no permission for this project")
        key = self._oss_key(str(body["ossPath"]))
        if self.state.get_object(self.state.bucket, key) is None:
            raise ApiError(DATAERR, f"ossPath {key} not found")
        with self.state.lock:
            job_id = next(self._job_ids)
            group = body.get("jobGroupId") or next(self._group_ids)
            job = Job(
                job_id=job_id,
                group_id=int(group),
                project_id=body["projectId"],
                oss_key=key,
                cmd=str(body["cmd"]),
                out_files=[str(p) for p in body.get("outFiles") or []],
                log_files=[str(p) for p in body.get("logFiles") or []],
                body=dict(body),
                workdir=self.scratch / f"job_{job_id}" / "work",
            )
            self.jobs[job_id] = job
        self.runner.start(job)
        return {"jobId": job_id, "jobGroupId": job.group_id}

    def _job(self, found: re.Match[str]) -> Job:
        with self.state.lock:
            job = self.jobs.get(int(found["id"]))
        if job is None:
            raise ApiError(NODATA, "job does not exist")
        return job

    def detail(self, found: re.Match[str], _q: Mapping[str, str], _body: Any) -> Any:
        job = self._job(found)
        with self.state.lock:
            return job.detail()

    def log(self, found: re.Match[str], _q: Mapping[str, str], _body: Any) -> Any:
        job = self._job(found)
        text = job.log_path.read_text(errors="replace") if job.log_path.exists() else ""
        return {"log": text}

    def kill(self, found: re.Match[str], _q: Mapping[str, str], _body: Any) -> Any:
        self.runner.kill(self._job(found))
        return {}

    def list_jobs(self, _m: re.Match[str], query: Mapping[str, str], _body: Any) -> Any:
        try:
            page = max(1, int(query.get("page", "1")))
            per_page = max(1, int(query.get("perPage", "10")))
            group = int(query["jobGroupId"]) if query.get("jobGroupId") else None
        except ValueError as err:
            raise ApiError(PARAMERR, "page, perPage and jobGroupId must be integers") from err
        with self.state.lock:
            jobs = [j for j in self.jobs.values() if group is None or j.group_id == group]
            items = [j.detail() for j in jobs[(page - 1) * per_page : page * per_page]]
        return {"items": items, "total": len(jobs), "page": page, "perPage": per_page}
