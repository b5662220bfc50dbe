"""The shapes of the requests the Bohrium HTTP API takes (pure functions).

Each shape follows the evidence recorded in ``tests/cloud_emulator/README.md``: the
requests the original dpdispatcher 1.1.0 client sends (it works against the real
service) and the official ``bohrium-sdk`` package.

- login: ``{"email": <email or phone>, "password": ...}`` (a phone number goes
  under ``email``);
- every API call carries ``Authorization: jwt <token>`` and ``Brm-Ticket:
  <ticket>`` (each may be empty);
- job creation (``POST /brm/v2/job/add``): ``ossPath`` and ``jobResources`` are a
  **list** of ``<bucket URL><object key>``; ``command`` and ``cmd`` both hold the
  command; ``backwardFiles`` and ``outFiles`` both list the files to bring back;
  ``logFiles`` is a list; ``jobGroupId`` only when ``input_data.grouped`` is true
  and a group is known; the other ``input_data`` keys are camel-cased;
- job listing: query ``groupId``, ``page``, ``pageSize``;
- the job detail gives ``inputData`` as a JSON *string*.

Examples
--------
>>> body = job_add_body(project_id=7, oss_url="https://b.example/k.zip", cmd="bash .h.sub",
...     out_files=["o"], log_files=["log"], input_data={"job_type": "container"})
>>> body["ossPath"], body["jobResources"], body["command"] == body["cmd"]
(['https://b.example/k.zip'], ['https://b.example/k.zip'], True)
>>> "jobGroupId" in job_add_body(project_id=7, oss_url="u", cmd="c", out_files=[],
...     log_files=[], input_data={"grouped": False}, job_group_id=5)
False
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._models import camel_case

__all__ = [
    "auth_headers",
    "job_add_body",
    "list_query",
    "login_body",
    "oss_paths_of",
    "wants_group",
]


def login_body(identity: str, password: str) -> dict[str, str]:
    """The body of ``POST /account/login``: the account (email or phone) under ``email``."""
    return {"email": identity, "password": password}


def auth_headers(token: str | None, ticket: str | None) -> dict[str, str]:
    """The two headers of every API call (either value may be empty)."""
    return {"Authorization": f"jwt {token or ''}", "Brm-Ticket": ticket or ""}


def wants_group(input_data: Mapping[str, Any]) -> bool:
    """Whether the jobs of a submission share one job group (``input_data.grouped``)."""
    return bool(input_data.get("grouped"))


def _camel(key: str) -> str:
    """Camel-case a key; upper-case keys are kept as they are."""
    return key if key.isupper() or key.isdigit() else camel_case(key)


def job_add_body(
    *,
    project_id: int | str,
    oss_url: str,
    cmd: str,
    out_files: Sequence[str],
    log_files: Sequence[str],
    input_data: Mapping[str, Any],
    job_group_id: int | str | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /brm/v2/job/add`` (``input_data`` is not modified).

    ``input_data.job_resources`` (a list of URLs) gets ``oss_url`` appended and is
    sent as both ``jobResources`` and ``ossPath``; ``input_data.backward_files``
    adds to ``out_files``; ``input_data.log_file`` replaces ``log_files``;
    ``checkpoint_files: "sync_files"`` means every file (``["*"]``).
    """
    data = copy.deepcopy(dict(input_data))
    resources = [str(url) for url in data.pop("job_resources", None) or []] + [oss_url]
    backward = [str(p) for p in data.pop("backward_files", None) or []]
    outs = list(dict.fromkeys([*backward, *out_files]))
    custom_log = data.pop("log_file", None)
    logs = [str(custom_log)] if custom_log else list(log_files)
    if data.get("checkpoint_files") == "sync_files":
        data["checkpoint_files"] = ["*"]
    body: dict[str, Any] = {}
    job_type = data.pop("job_type", None)
    if job_type is not None:
        body["jobType"] = job_type
    body["ossPath"] = resources
    body["projectId"] = project_id
    if job_group_id not in (None, "", 0) and wants_group(input_data):
        body["jobGroupId"] = job_group_id
    for key in ("oss_path", "project_id", "job_group_id", "command", "cmd", "out_files"):
        data.pop(key, None)
    body.update({_camel(str(key)): value for key, value in data.items()})
    body.update(
        jobResources=list(resources),
        command=cmd,
        backwardFiles=outs,
        logFiles=logs,
        outFiles=list(outs),
        cmd=cmd,
    )
    return body


def list_query(page: int, page_size: int, group_id: int | str | None) -> dict[str, Any]:
    """The query of ``GET /brm/v1/job/list`` (``groupId`` only when there is a group)."""
    query: dict[str, Any] = {} if group_id in (None, "") else {"groupId": group_id}
    query.update(page=page, pageSize=page_size)
    return query


def oss_paths_of(item: Mapping[str, Any]) -> list[str]:
    """The ``ossPath`` URLs of a listed job, whose ``inputData`` is a JSON string.

    A dict ``inputData`` (or ``ossPath`` on the item itself) is accepted too; an
    unreadable one gives no path.
    """
    found: list[str] = []
    for holder in (item, item.get("inputData")):
        if isinstance(holder, str):
            try:
                holder = json.loads(holder)
            except ValueError:
                continue
        if not isinstance(holder, Mapping):
            continue
        value = holder.get("ossPath")
        found += [str(v) for v in value] if isinstance(value, list) else [str(value or "")]
    return [path for path in found if path]
