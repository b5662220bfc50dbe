"""Errors and value types of the cloud client (re-exported by :mod:`.api`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from dpdispatcher.errors import ContextError

__all__ = [
    "CloudAPIError",
    "CloudAuthError",
    "CreatedJob",
    "JobDetail",
    "StsToken",
    "camel_case",
    "camelize",
]


class CloudAPIError(ContextError):
    """The cloud service answered with an error, or could not be reached.

    Attributes
    ----------
    code : str or None
        The service's return code (see :mod:`~dpdispatcher.dpcloudserver.retcode`).
    http_status : int or None
        The HTTP status of the last answer, if there was one.
    explanation : str
        What the user should do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        explanation: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.explanation = explanation


class CloudAuthError(CloudAPIError):
    """Logging in failed, or the service rejected the credentials or the ticket."""


@dataclass(frozen=True)
class StsToken:
    """Temporary OSS credentials from ``GET /data/get_sts_token``."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: str = ""

    def expires_within(self, seconds: float) -> bool:
        """Whether the credentials expire in less than ``seconds`` (unknown: yes)."""
        try:
            when = datetime.fromisoformat(self.expiration.replace("Z", "+00:00"))
        except ValueError:
            return True
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when - datetime.now(timezone.utc) < timedelta(seconds=seconds)


@dataclass(frozen=True)
class CreatedJob:
    """Identifiers returned by ``POST /brm/v2/job/add``."""

    job_id: int | str
    job_group_id: int | str | None = None


@dataclass(frozen=True)
class JobDetail:
    """The useful part of ``GET /brm/v1/job/{id}``; ``raw`` keeps all fields.

    ``status``: -1 failed, 0 waiting, 1 running, 2 finished (the service also uses
    3/9 waiting, 4/6 running, 5 terminated).
    """

    job_id: int | str
    status: int
    exit_code: int | None
    result_url: str
    raw: Mapping[str, Any] = field(repr=False)


def camel_case(name: str) -> str:
    """``"job_group_id"`` → ``"jobGroupId"``; names without ``_`` are kept."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camelize(data: Mapping[str, Any]) -> dict[str, Any]:
    """Camel-case the top-level keys of ``data`` (values are left alone)."""
    return {camel_case(key): value for key, value in data.items()}
