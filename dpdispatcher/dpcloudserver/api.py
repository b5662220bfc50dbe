"""The reference manual's module functions, over a default :class:`Client`.

:func:`login`, :func:`get`, :func:`post`, :func:`job_create`, :func:`get_jobs`,
:func:`get_tasks`, :func:`upload` and :func:`download` delegate to a module-level
client (:func:`default_client`; replace it with :func:`set_default_client`).
:class:`Client` itself lives in :mod:`.client` and is re-exported here with its
errors and value types.

``requests`` and ``oss2`` are imported only when a call needs them. Passwords,
tokens and tickets never appear in log messages or exception texts.

Examples
--------
>>> from dpdispatcher.dpcloudserver import api
>>> token = api.login("password", email="me@example.com")  # doctest: +SKIP
>>> api.upload("program/1/uuid/job.zip", "job.zip", None, None)  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ._http import TOKEN_REJECTED_CODES
from ._models import (
    CloudAPIError,
    CloudAuthError,
    CreatedJob,
    JobDetail,
    StsToken,
    camel_case,
    camelize,
)
from .client import Client
from .retcode import RETCODE, explain

__all__ = [
    "TOKEN_REJECTED_CODES",
    "Client",
    "CloudAPIError",
    "CloudAuthError",
    "CreatedJob",
    "JobDetail",
    "StsToken",
    "camel_case",
    "camelize",
    "default_client",
    "download",
    "get",
    "get_jobs",
    "get_tasks",
    "job_create",
    "login",
    "post",
    "set_default_client",
    "upload",
]

_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The client the module functions use (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def set_default_client(client: Client | None) -> None:
    """Replace (or with ``None``, forget) the module-level client."""
    global _default
    with _default_lock:
        _default = client


def login(
    password: str,
    email: str | None = None,
    username: str | None = None,
    phone: str | None = None,
) -> str:
    """Log the default client in; returns the token (reference API)."""
    client = default_client()
    client.login(password=password, email=email, username=username, phone=phone)
    return client.token or ""


def get(url: str, params: Mapping[str, Any] | None = None) -> Any:
    """``GET`` an API path with the default client; returns ``data``."""
    return default_client().get(url, params)


def post(url: str, params: Any = None) -> Any:
    """``POST`` a JSON body to an API path with the default client; returns ``data``."""
    return default_client().post(url, params)


def job_create(
    job_type: str,
    oss_path: str,
    input_data: Mapping[str, Any],
    program_id: int | str | None = None,
) -> dict[str, Any]:
    """Create a job with the default client; returns ``{"jobId", "jobGroupId"}``.

    ``program_id`` falls back to ``input_data["program_id"]``/``["project_id"]``;
    the command is ``input_data["cmd"]`` or ``input_data["command"]``.
    """
    data = dict(input_data)
    if job_type and "job_type" not in data and "jobType" not in data:
        data["job_type"] = job_type
    project = program_id if program_id is not None else data.pop("program_id", None)
    project = project if project is not None else data.pop("project_id", None)
    if project is None:
        raise CloudAPIError(
            "job_create needs a program id: give `program_id` (alias `project_id`)",
            code=RETCODE.PARAMERR,
            explanation=explain(RETCODE.PARAMERR),
        )
    cmd = data.pop("cmd", None) or data.pop("command", None) or ""
    created = default_client().create_job(
        project_id=project, oss_path=oss_path, cmd=cmd, input_data=data
    )
    return {"jobId": created.job_id, "jobGroupId": created.job_group_id}


def get_jobs(page: int = 0, per_page: int = 30) -> Any:
    """One page of the user's jobs."""
    return default_client().list_jobs(page, per_page)


def get_tasks(job_id: int | str, page: int = 0, per_page: int = 30) -> Any:
    """One page of the jobs ("tasks") of job group ``job_id``."""
    return default_client().list_jobs(page, per_page, job_group_id=job_id)


def upload(
    oss_task_zip: str, zip_task_file: str, endpoint: str | None, bucket_name: str | None
) -> None:
    """Upload local ``zip_task_file`` to object ``oss_task_zip`` (multipart when large)."""
    default_client().upload_file(
        zip_task_file, oss_task_zip, endpoint=endpoint, bucket_name=bucket_name
    )


def download(oss_file: str, save_file: str, endpoint: str | None, bucket_name: str | None) -> str:
    """Download object ``oss_file`` to ``save_file``; returns ``save_file``."""
    default_client().download_file(oss_file, save_file, endpoint=endpoint, bucket_name=bucket_name)
    return save_file
