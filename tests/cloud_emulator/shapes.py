"""The request shapes the emulated service accepts, checked strictly.

Every rule comes from the evidence in ``README.md`` of this package: the requests
the original dpdispatcher 1.1.0 client sends (recorded from a live run) and the
official ``bohrium-sdk`` (0.15.0). A request that breaks a rule is answered with code
``2101`` (parameter error) and HTTP 400 naming the rule, so a client test fails at
the first wrong shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ShapeError",
    "check_auth_headers",
    "check_job_add",
    "check_kill",
    "check_login",
    "check_openapi_add",
    "check_query",
]

_CAMEL = re.compile(r"^[a-z][A-Za-z0-9]*$|^[A-Z0-9]+$")


class ShapeError(Exception):
    """A request that the real service would not take (message names the rule)."""


def check_login(body: Any) -> tuple[str, str]:
    """``{"email": <email or phone number>, "password": <str>}`` and nothing else."""
    if not isinstance(body, dict):
        raise ShapeError("login body must be a JSON object")
    if set(body) != {"email", "password"}:
        raise ShapeError(f"login body keys must be exactly email, password; got {sorted(body)}")
    if not all(isinstance(body[k], str) for k in ("email", "password")):
        raise ShapeError("login email and password must be strings")
    return body["email"], body["password"]


def check_auth_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """``Authorization: jwt <token>`` and ``Brm-Ticket: <ticket>``, both present (either
    value may be empty); returns ``(token, ticket)``."""
    auth = headers.get("authorization")
    if auth is None or not (auth == "jwt" or auth.startswith("jwt ")):
        raise ShapeError(f"Authorization header must be 'jwt <token>', got {auth!r}")
    if "brm-ticket" not in headers:
        raise ShapeError("Brm-Ticket header missing (send it empty when there is no ticket)")
    return auth[4:].strip(), headers["brm-ticket"]


def check_query(query: Mapping[str, str], allowed: set[str], what: str) -> None:
    """Only the query keys the service knows for ``what``, with integer values."""
    unknown = set(query) - allowed
    if unknown:
        raise ShapeError(f"{what}: unknown query keys {sorted(unknown)}; allowed {sorted(allowed)}")
    for key, value in query.items():
        if not re.fullmatch(r"-?[0-9]+", value):
            raise ShapeError(f"{what}: query {key}={value!r} must be an integer")


def _str_list(body: Mapping[str, Any], key: str, required: bool = False) -> list[str]:
    value = body.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ShapeError(f"{key} must be a list of non-empty strings, got {value!r}")
    return value


def _common_job_keys(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ShapeError("job body must be a JSON object")
    snake = [k for k in body if not _CAMEL.match(k)]
    if snake:
        raise ShapeError(f"job keys must be camelCase; got {snake}")
    if not isinstance(body.get("projectId"), int) or isinstance(body.get("projectId"), bool):
        raise ShapeError(f"projectId must be an integer, got {body.get('projectId')!r}")
    for key in ("outFiles", "backwardFiles", "logFiles"):
        _str_list(body, key)
    for key in ("jobType", "jobName", "imageName", "scassType", "platform"):
        if key in body and not isinstance(body[key], str):
            raise ShapeError(f"{key} must be a string")
    group = body.get("jobGroupId")
    if group is not None and (not isinstance(group, int) or isinstance(group, bool)):
        raise ShapeError(f"jobGroupId must be an integer, got {group!r}")
    return body


def check_job_add(body: Any, bucket_url: str) -> tuple[list[str], str]:
    """``POST /brm/v2/job/add``: returns (the object URLs of ``ossPath``, the command).

    ``ossPath`` (and ``jobResources`` when sent) is a list of URLs under the bucket
    URL; ``cmd`` or ``command`` (the same text when both are sent) is required.
    """
    body = _common_job_keys(body)
    urls = _str_list(body, "ossPath", required=True)
    for url in urls + _str_list(body, "jobResources"):
        if not url.startswith(bucket_url):
            raise ShapeError(f"ossPath entry {url!r} is not a URL of the bucket {bucket_url}")
    commands = {body[k] for k in ("cmd", "command") if k in body}
    if not commands or not all(isinstance(c, str) and c for c in commands):
        raise ShapeError("cmd (or command) must be a non-empty string")
    if len(commands) > 1:
        raise ShapeError("cmd and command differ")
    return urls, next(iter(commands))


def check_openapi_add(body: Any) -> tuple[list[str], str, int]:
    """``POST /openapi/v2/job/add`` (bohrium-sdk ``Job.insert``): returns (store paths, cmd,
    jobId)."""
    body = _common_job_keys(body)
    paths = _str_list(body, "ossPath", required=True)
    cmd = body.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise ShapeError("cmd must be a non-empty string")
    job_id = body.get("jobId")
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        raise ShapeError(f"jobId (from /openapi/v1/job/create) must be an integer, got {job_id!r}")
    return paths, cmd, job_id


def check_kill(body: bytes, content_type: str) -> None:
    """A kill carries the JSON body ``{}``."""
    if not content_type.startswith("application/json") or body.strip() != b"{}":
        raise ShapeError(f"kill body must be the JSON {{}}, got {body[:40]!r} ({content_type!r})")
