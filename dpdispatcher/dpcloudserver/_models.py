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
    "RequestInfoException",
    "StsToken",
    "camel_case",
    "camelize",
    "describe_cloud_error",
    "is_transient",
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


class RequestInfoException(CloudAPIError):
    """A request to the service failed for good (the name dpdispatcher 1.1.0 raises).

    Raised once the retries of a call are spent, or when the service answers with an
    error code; dflow's ``retry_on_submission_error`` catches it (importable from
    :mod:`dpdispatcher.dpcloudserver.client` as in 1.1.0).
    """


class CloudAuthError(RequestInfoException):
    """Logging in failed, or the service rejected the credentials or the ticket."""


# -- what the user must fix -------------------------------------------------------------
_LOGIN_FIELDS = (
    "remote_profile/email (or remote_profile/phone) and remote_profile/password, "
    "or the BOHR_TICKET environment variable"
)
_FIX_BY_CODE = {
    "2100": _LOGIN_FIELDS,
    "2105": _LOGIN_FIELDS,
    "2104": "remote_profile/password",
    "2102": "remote_profile/email or remote_profile/phone",
    "2103": "remote_profile/program_id (a project your account belongs to)",
    "2101": "remote_profile/program_id and remote_profile/input_data",
    "2002": "remote_profile/input_data (job_type, image_name, machine type, ...)",
}
_QUOTA_WORDS = ("quota", "balance", "insufficient", "exceed", "limit")


def describe_cloud_error(err: CloudAPIError, action: str) -> CloudAPIError:
    """The same error with ``action`` and the remote_profile field to fix in its text.

    The client already removed secrets from the service's messages; nothing of the
    remote profile is added here besides field names.
    """
    fix = _FIX_BY_CODE.get(err.code or "")
    text = str(err)
    if fix is None and any(word in text.lower() for word in _QUOTA_WORDS):
        fix = "the quota or balance of the program named by remote_profile/program_id"
    if fix is None and isinstance(err, CloudAuthError):
        fix = _LOGIN_FIELDS
    message = f"{action} failed: {text}"
    if fix:
        message += f" -- what to fix: {fix}"
    kind = CloudAuthError if isinstance(err, CloudAuthError) else type(err)
    return kind(message, code=err.code, http_status=err.http_status, explanation=err.explanation)


def is_transient(err: CloudAPIError) -> bool:
    """Whether a cloud error may go away by itself (no answer, 429 or 5xx)."""
    if isinstance(err, CloudAuthError):
        return False
    return err.http_status is None or err.http_status == 429 or err.http_status >= 500


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
