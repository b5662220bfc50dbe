"""The Bohrium OpenAPI routes (``/openapi/...``) and the Tiefblue storage (``/api/...``).

Shapes from bohrium-sdk 0.15.0 (see ``README.md``): every OpenAPI call carries
``Authorization: Bearer <access key>`` and the query ``accessKey=<access key>``;
``POST /openapi/v1/job/create`` (``{"projectId", "name"?, "bohrGroupId"?}``) answers
``{jobId, jobGroupId, storePath, token, storeHost}``; the archive goes to Tiefblue
(``POST /api/upload/binary`` with ``X-Storage-Param`` = base64 JSON ``{"path", ...}``, or
the multipart trio) under ``storePath``; ``POST /openapi/v2/job/add`` (``Job.insert``)
takes the camel-cased job with ``ossPath`` a list and the ``jobId`` of the created job;
``GET /openapi/v1/job/{id}`` is the detail; ``GET /openapi/v1/job/{id}/log`` answers
``{"log": <text>}``; ``POST /openapi/v1/job/kill/{id}``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from .jobs import Job, JobRunner
from .oss import Response
from .shapes import ShapeError, check_openapi_add
from .state import State

__all__ = ["OpenApi"]

_JOB = re.compile(r"/openapi/v1/job/(?P<id>[0-9]+)(?P<rest>/log)?")
_KILL = re.compile(r"/openapi/v1/job/kill/(?P<id>[0-9]+)")


def _reply(data: Any = None, *, code: int = 0, message: str = "", status: int = 200) -> Response:
    body = json.dumps({"code": code, "data": {} if data is None else data, "message": message})
    return Response(status, body.encode(), {"Content-Type": "application/json"})


class OpenApi:
    """Handlers of the OpenAPI and Tiefblue routes (the jobs are shared with the API)."""

    def __init__(
        self,
        state: State,
        runner: JobRunner,
        jobs: dict[int, Job],
        scratch: Path,
        base_url: Callable[[], str],
    ) -> None:
        self.state = state
        self.runner = runner
        self.jobs = jobs
        self.scratch = scratch
        self.base_url = base_url
        self.access_keys: set[str] = set()
        self.created: dict[int, dict[str, Any]] = {}  # job id -> the job/create answer
        self._ids = itertools.count(5001)
        self._groups = itertools.count(9001)

    @staticmethod
    def owns(path: str) -> bool:
        return path.startswith(("/openapi/", "/api/upload/"))

    def route_key(self, method: str, path: str) -> str:
        path = re.sub(r"/[0-9]+(?=/|$)", "/{id}", path)
        return f"{method} {path}"

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        try:
            if path.startswith("/api/upload/"):
                return self._tiefblue(path, headers, body)
            self._authenticate(query, headers)
            payload = json.loads(body) if body.strip() else None
            if method == "POST" and path == "/openapi/v1/job/create":
                return _reply(self._create(payload))
            if method == "POST" and path == "/openapi/v2/job/add":
                return _reply(self._add(payload))
            found = _KILL.fullmatch(path)
            if method == "POST" and found:
                self.runner.kill(self._job(int(found["id"])))
                return _reply({})
            found = _JOB.fullmatch(path)
            if method == "GET" and found:
                job = self._job(int(found["id"]))
                with self.state.lock:
                    if found["rest"]:
                        text = job.log_path.read_text() if job.log_path.exists() else ""
                        return _reply({"log": text})
                    return _reply(job.detail(self.base_url()))
            return _reply(code=404, message=f"no route {method} {path}", status=404)
        except ShapeError as err:
            with self.state.lock:
                self.state.rejected.append(f"{self.route_key(method, path)}: {err}")
            return _reply(code=400, message=str(err), status=400)
        except LookupError as err:
            return _reply(code=404, message=str(err), status=404)

    def _authenticate(self, query: Mapping[str, str], headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization", "")
        key = query.get("accessKey", "")
        if not auth.startswith("Bearer ") or auth[7:] != key:
            raise ShapeError("OpenAPI calls carry Authorization: Bearer <ak> and ?accessKey=<ak>")
        if key not in self.access_keys:
            raise ShapeError("unknown access key")

    def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("projectId"), int):
            raise ShapeError(f"job/create takes {{projectId: int, name?, bohrGroupId?}}: {body!r}")
        unknown = set(body) - {"projectId", "name", "bohrGroupId"}
        if unknown:
            raise ShapeError(f"job/create: unknown keys {sorted(unknown)}")
        with self.state.lock:
            job_id = next(self._ids)
            group = body.get("bohrGroupId") or next(self._groups)
            answer = {
                "jobId": job_id,
                "jobGroupId": group,
                "storePath": f"openapi/{body['projectId']}/{job_id}/",
                "token": "tb-" + secrets.token_hex(8),
                "storeHost": self.base_url(),
            }
            self.created[job_id] = answer
        return answer

    def _add(self, body: Any) -> dict[str, Any]:
        paths, cmd, job_id = check_openapi_add(body)
        with self.state.lock:
            created = self.created.get(job_id)
            if created is None:
                raise ShapeError(f"jobId {job_id} was not created by /openapi/v1/job/create")
            if job_id in self.jobs:
                raise ShapeError(f"job {job_id} was already added")
        for path in paths:
            if not path.startswith(created["storePath"]):
                raise ShapeError(f"ossPath {path!r} is not under the job's storePath")
            if self.state.get_object(self.state.bucket, path) is None:
                raise ShapeError(f"ossPath {path!r}: no such object was uploaded")
        job = Job(
            job_id=job_id,
            group_id=int(created["jobGroupId"]),
            project_id=body["projectId"],
            oss_key=paths[-1],
            cmd=cmd,
            out_files=list(body.get("outFiles", [])),
            log_files=list(body.get("logFiles", [])),
            body=dict(body),
            workdir=self.scratch / f"job_{job_id}" / "work",
        )
        with self.state.lock:
            self.jobs[job_id] = job
        self.runner.start(job)
        return {"jobId": job_id, "jobGroupId": job.group_id}

    def _job(self, job_id: int) -> Job:
        with self.state.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        return job

    def _tiefblue(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Tiefblue storage: the binary upload (and the multipart trio)."""
        tokens = {c["token"] for c in self.created.values()}
        auth = headers.get("authorization", "")
        if auth[7:] not in tokens:
            raise ShapeError("Tiefblue uploads carry Authorization: Bearer <job/create token>")
        if path == "/api/upload/binary":
            try:
                param = json.loads(base64.b64decode(headers.get("x-storage-param", "")))
            except ValueError as err:
                raise ShapeError("X-Storage-Param must be base64 JSON") from err
            if not isinstance(param, dict) or not param.get("path"):
                raise ShapeError("X-Storage-Param needs a path")
            self.state.put_object(self.state.bucket, str(param["path"]), body)
            return _reply({"path": param["path"]})
        raise ShapeError(f"{path}: only the binary upload is emulated")
