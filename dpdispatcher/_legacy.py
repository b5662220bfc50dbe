"""Submission hashes of the original dpdispatcher 1.0.x and 1.1.0, to adopt their job roots.

The original names a job root ``remote_root/<submission_hash>`` and keeps its state in
``<submission_hash>.json`` there. Its hash is the sha1 of the JSON of a static form that
differs between its releases (observed by running 1.0.3 and 1.1.0):

- 1.0.x: ``work_base`` as given, ``_abs_work_base`` (``os.path.abspath(work_base)``,
  i.e. against the process's working directory), the machine as
  ``batch_type, context_type, local_root, remote_root, remote_profile, retry_count,
  clean_asynchronously``, the resources, both common file lists, the jobs.
- 1.1.0: a relative ``work_base`` normalised (``work/`` and ``./work`` become ``work``),
  the machine as ``batch_type, context_type, local_root, remote_root,
  clean_asynchronously, [create_remote_root for SSH], remote_profile, retry_count``,
  otherwise the same.

``local_root`` and ``remote_root`` appear as the user wrote them; ``remote_profile`` is
the user's dictionary with the original's defaults appended in schema order (secrets
included: the original hashed them); ``clean_asynchronously`` is False except for SSH.
Everything here is pure except :func:`locate`, which looks for those job roots through
the context.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpdispatcher._script import names
from dpdispatcher._state import JobRuntime, checked_job_id
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import DPDispatcherError, RecoveryError
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.machine import Machine
    from dpdispatcher.submission import Submission

#: remote_profile defaults of the original, per context, in its schema order
PROFILE_DEFAULTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "LocalContext": (("symlink", True),),
    "SSHContext": (
        ("port", 22),
        ("key_filename", None),
        ("passphrase", None),
        ("timeout", 10),
        ("totp_secret", None),
        ("tar_compress", True),
        ("look_for_keys", True),
        ("execute_command", None),
        ("proxy_command", None),
    ),
}

#: remote_profile keys each original release knows, per context (others are ours only)
PROFILE_KEYS: dict[str, dict[str, frozenset[str]]] = {
    "1.0.x": {
        "LocalContext": frozenset({"symlink"}),
        "SSHContext": frozenset(
            {"hostname", "username", "password"} | {k for k, _ in PROFILE_DEFAULTS["SSHContext"]}
        ),
    },
    "1.1.0": {
        "LocalContext": frozenset({"symlink"}),
        "SSHContext": frozenset(
            {"hostname", "username", "password", "archive_chunk_size"}
            | {k for k, _ in PROFILE_DEFAULTS["SSHContext"]}
        ),
    },
}

RELEASES = ("1.1.0", "1.0.x")


@dataclass(frozen=True)
class LegacyMachine:
    """The machine fields the original hashed, as the user gave them."""

    batch_type: str
    context_type: str
    local_root: str | None
    remote_root: str | None
    remote_profile: dict[str, Any]
    retry_count: int
    clean_asynchronously: bool
    create_remote_root: bool


def legacy_profile(release: str, context_type: str, profile: dict[str, Any]) -> dict[str, Any]:
    """The remote profile as ``release`` stored it: known keys kept in order, defaults added."""
    known = PROFILE_KEYS[release].get(context_type)
    out = {k: v for k, v in profile.items() if known is None or k in known}
    if release == "1.1.0" and not out.get("archive_chunk_size", 1):
        out.pop("archive_chunk_size", None)  # 1.1.0 drops a 0 so that hashes do not change
    for key, default in PROFILE_DEFAULTS.get(context_type, ()):
        out.setdefault(key, default)
    return out


def legacy_machine_dict(
    release: str, m: LegacyMachine, profile: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The machine's part of ``release``'s static form, in its key order (``profile``:
    the ``remote_profile`` to show instead of the one ``release`` hashed)."""
    if profile is None:
        profile = legacy_profile(release, m.context_type, m.remote_profile)
    head: dict[str, Any] = {
        "batch_type": m.batch_type,
        "context_type": m.context_type,
        "local_root": m.local_root,
        "remote_root": m.remote_root,
    }
    if release == "1.0.x":
        return {
            **head,
            "remote_profile": profile,
            "retry_count": m.retry_count,
            "clean_asynchronously": m.clean_asynchronously,
        }
    tail: dict[str, Any] = {"clean_asynchronously": m.clean_asynchronously}
    if m.context_type == "SSHContext":
        tail["create_remote_root"] = m.create_remote_root
    return {**head, **tail, "remote_profile": profile, "retry_count": m.retry_count}


def legacy_work_base(release: str, work_base: str) -> str:
    """``work_base`` as ``release`` kept it (1.1.0 normalises a relative one)."""
    if release == "1.1.0" and not os.path.isabs(work_base):
        return posixpath.normpath(work_base)
    return work_base


def legacy_static_form(
    release: str,
    work_base: str,
    abs_work_base: str,
    machine: LegacyMachine,
    rest: dict[str, Any],
) -> dict[str, Any]:
    """The static form ``release`` hashed; ``rest`` holds resources, common files, jobs."""
    return {
        "work_base": legacy_work_base(release, work_base),
        "_abs_work_base": abs_work_base,
        "machine": legacy_machine_dict(release, machine),
        "resources": rest["resources"],
        "forward_common_files": rest["forward_common_files"],
        "backward_common_files": rest["backward_common_files"],
        "belonging_jobs": rest["belonging_jobs"],
    }


def sha1_json(obj: Any) -> str:
    """sha1 of ``json.dumps(obj)`` with the default separators (every release's recipe)."""
    return hashlib.sha1(json.dumps(obj).encode("utf-8")).hexdigest()


def legacy_machine(machine: Machine) -> LegacyMachine:
    """The machine fields the original hashed (and its ``Machine.serialize`` returned).

    A context built as a 1.1.0 subclass may set only 1.1.0's ``init_*_root`` attributes.
    """
    ctx = machine.context
    return LegacyMachine(
        batch_type=type(machine).__name__,
        context_type=type(ctx).__name__,
        local_root=getattr(ctx, "given_local_root", ctx.init_local_root),
        remote_root=getattr(ctx, "given_remote_root", ctx.init_remote_root),
        remote_profile=copy.deepcopy(ctx.remote_profile),
        retry_count=machine.retry_count,
        # only the original's SSHContext kept the flag; its other contexts report False
        clean_asynchronously=ctx.clean_asynchronously and type(ctx).__name__ == "SSHContext",
        create_remote_root=bool(getattr(ctx, "create_remote_root", False)),
    )


def legacy_hashes(submission: Submission) -> list[tuple[str, str]]:
    """``(release, submission_hash)`` the original releases give this submission.

    ``_abs_work_base`` is taken against the working directory (as the original did) and,
    as a second candidate, against ``local_root``.
    """
    ours = submission.serialize(if_static=True)
    machine = legacy_machine(submission._bound_machine())
    ctx = submission._bound_machine().context
    abs_bases = [os.path.abspath(submission.work_base)]
    abs_bases.append(
        os.path.abspath(os.path.join(ctx.given_local_root or ".", submission.work_base))
    )
    out: list[tuple[str, str]] = []
    for release in RELEASES:
        for abs_base in dict.fromkeys(abs_bases):
            form = legacy_static_form(release, submission.work_base, abs_base, machine, ours)
            digest = sha1_json(form)
            if (release, digest) not in out:
                out.append((release, digest))
    return out


def parse_legacy_state(text: str, where: str, job_hashes: list[str]) -> dict[str, JobRuntime]:
    """The runtime of each job in a state file the original wrote for these jobs.

    The file's name is the hash of its static form, so only its job hashes are checked
    against ours; ids (an int for Shell in 1.1.0) are read as text and checked.
    """
    try:
        data = json.loads(text)
        jobs = {h: body for job in data["belonging_jobs"] for h, body in job.items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise RecoveryError(f"{where}: not a state file of dpdispatcher 1.x ({err!r})") from err
    if sorted(jobs) != sorted(job_hashes):
        raise RecoveryError(f"{where} describes other jobs than this submission's")
    return {
        h: JobRuntime(
            JobStatus(int(body.get("job_state") or JobStatus.unsubmitted)),
            checked_job_id(body.get("job_id"), where),
            int(body.get("fail_count") or 0),
        )
        for h, body in jobs.items()
    }


def candidate_roots(submission: Submission) -> list[tuple[str, str, str]]:
    """``(release, job root, state file name)`` where the original may have left state."""
    ctx = submission._bound_machine().context
    out: list[tuple[str, str, str]] = []
    for release, digest in legacy_hashes(submission):
        shadow = copy.copy(submission)
        shadow.submission_hash = digest
        out.append((release, ctx.job_root_for(shadow), names.state_file(digest)))
    return out


def locate(submission: Submission) -> tuple[str, str] | None:
    """Point the context at a job root the original left for this submission, if any.

    Looks in each candidate root for our own state file (written when we adopted it
    earlier) and then the original's. Returns ``(release or "ours", file name)`` with the
    context re-pointed there, or None with the context untouched.
    """
    ctx = submission._bound_machine().context
    ours = names.state_file(submission.submission_hash)
    for release, root, theirs in candidate_roots(submission):
        try:
            present = ctx.files_exist_in(root, [ours, theirs])
        except (OSError, DPDispatcherError) as err:
            dlog.debug("no dpdispatcher %s job root at %s: %s", release, root, err)
            present = set()
        for fname, kind in ((ours, "ours"), (theirs, release)):
            if fname in present:
                dlog.info("found the job root of dpdispatcher %s at %s", release, root)
                ctx.remote_root = root
                return kind, fname
    return None
