"""Return codes of the DP Cloud Server API and what the user should do about them.

Every answer of the service is ``{"code": ..., "data": ..., "message": ...}``; a
code other than :attr:`RETCODE.OK` (or the integer 0) is an error.
:func:`explain` turns a code into a sentence naming the fix.

Examples
--------
>>> from dpdispatcher.dpcloudserver.retcode import RETCODE, explain
>>> RETCODE.PWDERR
'2104'
>>> "password" in explain("2104")
True
"""

from __future__ import annotations

__all__ = ["RETCODE", "explain", "is_ok"]


class RETCODE:
    """The service's return codes (values as in the reference manual)."""

    OK = "0000"
    DBERR = "2000"
    THIRDERR = "2001"
    DATAERR = "2002"
    IOERR = "2003"
    LOGINERR = "2100"
    PARAMERR = "2101"
    USERERR = "2102"
    ROLEERR = "2103"
    PWDERR = "2104"
    VERIFYERR = "2105"
    REQERR = "2200"
    NODATA = "2300"
    UNDERDEBUG = "2301"
    UNKOWNERR = "2400"


_EXPLANATIONS: dict[str, str] = {
    RETCODE.OK: "success",
    RETCODE.DBERR: (
        "the service's database failed; this is on the service side, retry later "
        "and contact the service if it persists"
    ),
    RETCODE.THIRDERR: (
        "a third-party service used by the cloud (e.g. storage or compute provider) "
        "failed; retry later"
    ),
    RETCODE.DATAERR: (
        "the service rejected the submitted data; check `input_data` in remote_profile "
        "(image name, machine type, job type) and that the uploaded archive exists"
    ),
    RETCODE.IOERR: "the service could not read or write a file; retry later",
    RETCODE.LOGINERR: (
        "not logged in or the login token expired; check `email`/`phone` and `password` "
        "in remote_profile, or set a valid BOHR_TICKET"
    ),
    RETCODE.PARAMERR: (
        "a request parameter is missing or invalid; check `program_id` (alias "
        "`project_id`) and `input_data` in remote_profile"
    ),
    RETCODE.USERERR: (
        "the user account does not exist or is disabled; check `email` or `phone` in remote_profile"
    ),
    RETCODE.ROLEERR: (
        "the account has no permission for this operation; check that `program_id` in "
        "remote_profile is a project you are a member of"
    ),
    RETCODE.PWDERR: ("wrong password; check `password` in remote_profile (and `email`/`phone`)"),
    RETCODE.VERIFYERR: (
        "verification failed (e.g. a verification code is required or wrong); log in "
        "once on the web site, or use a BOHR_TICKET"
    ),
    RETCODE.REQERR: "the request was malformed or rejected by the service; retry later",
    RETCODE.NODATA: (
        "the requested object does not exist; check the job id (it may have been "
        "deleted on the service)"
    ),
    RETCODE.UNDERDEBUG: "the service is under maintenance; retry later",
    RETCODE.UNKOWNERR: "the service reported an unknown error; retry later",
}


def _normalise(code: object) -> str:
    text = str(code).strip()
    if text.isdigit() and len(text) < 4:
        text = text.zfill(4)
    return text


def is_ok(code: object) -> bool:
    """Whether a response ``code`` means success (``"0000"``, ``0`` or ``"0"``)."""
    return _normalise(code) == RETCODE.OK


def explain(code: object) -> str:
    """A human explanation of ``code`` naming what the user must fix.

    Accepts the code as a string or an integer; unknown codes get a generic text.
    """
    key = _normalise(code)
    try:
        return _EXPLANATIONS[key]
    except KeyError:
        return f"the service returned the unknown code {key}; retry later or contact the service"
