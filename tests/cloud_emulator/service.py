"""The JSON API of the emulator (``/account``, ``/data``, ``/brm``).

Every answer is ``{"code", "data", "message"}`` with code ``"0000"`` on success,
the service's codes otherwise. Requests are checked against :mod:`.shapes` (a wrong
shape gets HTTP 400, code ``2101``). Authenticated routes need both headers the
service's clients send, ``Authorization: jwt <token>`` and ``Brm-Ticket: <ticket>``,
with a valid token or ticket; a rejected token gets HTTP 401 (or, in ``"code"``
mode, HTTP 200 with code ``"2100"``). A job detail gives ``inputData`` as a JSON
string and no ``jobId`` key (as bohrium-sdk's detail type); a job's log is a list of
``logFiles`` URLs.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .jobs import Job, JobRunner
from .oss import Response
from .shapes import (
    ShapeError,
    check_auth_headers,
    check_job_add,
    check_kill,
    check_login,
    check_query,
)
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

    def __init__(
        self,
        state: State,
        runner: JobRunner,
        scratch: Path,
        base_url: Callable[[], str],
        bucket_url: Callable[[], str],
    ):
        self.state = state
        self.runner = runner
        self.scratch = scratch
        self.base_url = base_url
        self.bucket_url = bucket_url
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
        try:
            if route.auth:
                rejected = self._authenticate(route.key, headers)
                if rejected is not None:
                    return rejected
            if route.key == "POST /brm/v1/job/kill/{id}":
                check_kill(body, headers.get("content-type", ""))
            elif route.method == "GET" and body:
                raise ShapeError(f"{route.key} takes no body")
            try:
                payload = json.loads(body) if body.strip() else None
            except ValueError as err:
                raise ShapeError("request body is not JSON") from err
            return reply(route.handler(found, query, payload))
        except ShapeError as err:
            self.state.rejected.append(f"{route.key}: {err}")
            return reply(code=PARAMERR, message=str(err), status=400)
        except ApiError as err:
            return reply(code=err.code, message=err.message, status=err.status)

    def _authenticate(self, route_key: str, headers: Mapping[str, str]) -> Response | None:
        token, ticket = check_auth_headers(headers)
        with self.state.lock:
            if token and token in self.state.tokens:
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
        identity, password = check_login(body)  # a phone number comes under "email"
        verdict = self.state.check_login(identity, password)
        if verdict == "user":
            raise ApiError(USERERR, "user does not exist")
        if verdict == "password":
            raise ApiError(PWDERR, "password error")
        return {"token": self.state.new_token()}

    def sts(self, _m: re.Match[str], query: Mapping[str, str], _body: Any) -> Any:
        check_query(query, set(), "GET /data/get_sts_token")
        return self.state.new_sts()

    def add_job(self, _m: re.Match[str], query: Mapping[str, str], body: Any) -> Any:
        check_query(query, set(), "POST /brm/v2/job/add")
        urls, cmd = check_job_add(body, self.bucket_url())
        allowed = self.state.allowed_projects
        if allowed is not None and body["projectId"] not in allowed:
            raise ApiError(ROLEERR, "no permission for this project")
        keys = [url[len(self.bucket_url()) :] for url in urls]
        for key in keys:
            if self.state.get_object(self.state.bucket, key) is None:
                raise ApiError(DATAERR, f"ossPath {key} not found")
        with self.state.lock:
            job_id = next(self._job_ids)
            group = body.get("jobGroupId") or next(self._group_ids)
            job = Job(
                job_id=job_id,
                group_id=int(group),
                project_id=body["projectId"],
                oss_key=keys[-1],
                cmd=cmd,
                out_files=list(
                    dict.fromkeys(body.get("outFiles", []) + body.get("backwardFiles", []))
                ),
                log_files=list(body.get("logFiles", [])),
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

    def detail(self, found: re.Match[str], query: Mapping[str, str], _body: Any) -> Any:
        check_query(query, set(), "GET /brm/v1/job/{id}")
        job = self._job(found)
        with self.state.lock:
            return job.detail(self.base_url())

    def log(self, found: re.Match[str], query: Mapping[str, str], _body: Any) -> Any:
        check_query(query, {"page", "pageSize"}, "GET /brm/v1/job/{id}/log")
        job = self._job(found)
        with self.state.lock:
            return {"logFiles": job.log_files_info(self.base_url())}

    def kill(self, found: re.Match[str], query: Mapping[str, str], _body: Any) -> Any:
        check_query(query, set(), "POST /brm/v1/job/kill/{id}")
        self.runner.kill(self._job(found))
        return {}

    def list_jobs(self, _m: re.Match[str], query: Mapping[str, str], _body: Any) -> Any:
        check_query(query, {"groupId", "page", "pageSize"}, "GET /brm/v1/job/list")
        page = int(query.get("page", "0"))  # pages count from 0, as 1.1.0 asks them
        per_page = int(query.get("pageSize", "10"))
        if page < 0 or per_page < 1:
            raise ShapeError(f"page must be >= 0 and pageSize >= 1, got {page}, {per_page}")
        group = int(query["groupId"]) if "groupId" in query else None
        with self.state.lock:
            jobs = [j for j in self.jobs.values() if group is None or j.group_id == group]
            chosen = jobs[page * per_page : (page + 1) * per_page]
            items = [j.detail(self.base_url()) for j in chosen]
        return {"items": items, "total": len(jobs), "page": page, "pageSize": per_page}
