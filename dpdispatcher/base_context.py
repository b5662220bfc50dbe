"""BaseContext: how files and commands reach the place where jobs run."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher._registry import Registered
from dpdispatcher._script.quoting import sh
from dpdispatcher.errors import (
    CommandError,
    ConfigurationError,
    JobRootConflictError,
    MissingStateError,
    RecoveryError,
)

if TYPE_CHECKING:
    from dpdispatcher.submission import Submission


@dataclass(frozen=True)
class CommandResult:
    """Outcome of a command run through a context. A non-zero exit is not an exception."""

    exit_code: int
    stdout: str
    stderr: str
    cmd: str = ""

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0

    def check(self) -> CommandResult:
        """Return self, or raise :class:`~dpdispatcher.errors.CommandError` on failure."""
        if self.exit_code != 0:
            raise CommandError(self.cmd, self.exit_code, self.stderr)
        return self


class SPRetObj:
    """File-like view of captured output: ``read()`` gives bytes, ``readlines()`` str lines."""

    def __init__(self, ret: str | bytes) -> None:
        self._data = ret.encode("utf-8") if isinstance(ret, str) else ret

    def read(self) -> bytes:
        """All the output as bytes."""
        return self._data

    def readlines(self) -> list[str]:
        """The output as a list of lines, each with its newline."""
        return self._data.decode("utf-8", errors="replace").splitlines(keepends=True)


class BaseContext(Registered):
    """Moves bytes and runs commands for a submission; subclasses register themselves.

    ``BaseContext(context_type="LocalContext", local_root=..., remote_root=...)`` builds
    the registered subclass (names are case-insensitive; ``Local`` works too).
    """

    subclasses_dict: ClassVar[dict[str, type[Any]]] = {}
    _canonical: ClassVar[dict[str, type[Any]]] = {}
    _registry_kind = "context_type"
    _registry_suffix = "Context"
    _abstract = True
    #: remote_profile keys that are secrets: never persisted, hashed or logged
    secret_keys: ClassVar[tuple[str, ...]] = ()
    #: whether ``remote_root`` is a path on this machine (then made absolute when loaded,
    #: relative to the working directory, as ``local_root`` is)
    remote_root_is_local: ClassVar[bool] = False

    def __init__(
        self,
        local_root: str,
        remote_root: str | None = None,
        remote_profile: dict[str, Any] | None = None,
        *,
        context_type: str | None = None,
        clean_asynchronously: bool = False,
        **kwargs: Any,
    ) -> None:
        # both roots as written: the original hashed them so (dpdispatcher._legacy)
        self.given_local_root, self.given_remote_root = local_root, remote_root
        self.init_local_root = os.path.abspath(os.path.expanduser(local_root))
        if remote_root and self.remote_root_is_local:
            remote_root = os.path.abspath(os.path.expanduser(remote_root))
        self.init_remote_root = remote_root
        self.remote_profile = dict(remote_profile or {})
        self.clean_asynchronously = clean_asynchronously
        self.local_root = self.init_local_root
        self.remote_root = remote_root or self.init_local_root
        self.submission: Submission | None = None

    # -- construction -------------------------------------------------------------
    @classmethod
    def machine_subfields(cls) -> list[Any]:
        """dargs fields this context adds to the machine dict (its ``remote_profile``)."""
        from dargs import Argument

        return [Argument("remote_profile", dict, [], optional=True, default={})]

    @classmethod
    def load_from_dict(cls, context_dict: dict[str, Any]) -> BaseContext:
        """Build the context described by a machine dictionary."""
        ctx_cls = cls.get_class(context_dict["context_type"]) if cls is BaseContext else cls
        return ctx_cls(
            local_root=context_dict["local_root"],
            remote_root=context_dict.get("remote_root"),
            remote_profile=context_dict.get("remote_profile") or {},
            clean_asynchronously=context_dict.get("clean_asynchronously", False),
            **{k: context_dict[k] for k in ("create_remote_root",) if k in context_dict},
        )

    def public_profile(self) -> dict[str, Any]:
        """The remote profile without secrets (what is persisted and hashed)."""
        return {k: v for k, v in self.remote_profile.items() if k not in self.secret_keys}

    # -- binding ------------------------------------------------------------------
    def bind_submission(self, submission: Submission) -> None:
        """Point the context at a submission's local work base and its job root."""
        self.submission = submission
        self.local_root = os.path.join(self.init_local_root, submission.work_base)
        self.remote_root = self.job_root_for(submission)

    def binds_offline(self) -> bool:
        """Whether :meth:`bind_submission` works without a connection (so a submission
        binds this context as soon as it has a hash, as 1.1.0 does): when the job root
        is known, i.e. ``remote_root`` was given."""
        return bool(self.init_remote_root)

    @property
    def temp_remote_root(self) -> str | None:
        """The ``remote_root`` job roots are made in (1.1.0's name for it)."""
        return self.init_remote_root

    @temp_remote_root.setter
    def temp_remote_root(self, value: str | None) -> None:
        self.init_remote_root = value

    @property
    def temp_local_root(self) -> str:
        """The absolute ``local_root`` work bases are in (1.1.0's name for it)."""
        return self.init_local_root

    @temp_local_root.setter
    def temp_local_root(self, value: str) -> None:
        self.init_local_root = value

    def job_root_for(self, submission: Submission) -> str:
        """Where the jobs of ``submission`` run: ``remote_root/<submission_hash>``."""
        if not self.init_remote_root:
            raise ConfigurationError(f"machine/remote_root is required for {type(self).__name__}")
        return os.path.join(self.init_remote_root, submission.submission_hash)

    def get_job_root(self) -> str:
        """The bound job root."""
        return self.remote_root

    def migrate_recovery_root(self, old_root: str, new_root: str) -> bool:
        """Rename the job root ``old_root`` to ``new_root`` (``previous_submission_hash``).

        Returns True when it was moved, False when ``new_root`` exists and ``old_root``
        does not (an earlier attempt moved it). Raises :class:`JobRootConflictError` (a
        FileExistsError) when both exist, and :class:`MissingStateError` when neither
        does. The default runs one shell command through :meth:`run_in` (``mv -T``, a
        rename: atomic on one file system).
        """
        old, new = sh(old_root), sh(new_root)
        res = self.run_in(
            "/",
            f"if [ -e {new} ] || [ -L {new} ]; then "
            f"if [ -e {old} ] || [ -L {old} ]; then exit 11; fi; exit 10; fi; "
            f"[ -e {old} ] || exit 12; mv -T -- {old} {new}",
        )
        return migration_outcome(res.exit_code, old_root, new_root, res.stderr)

    # -- primitives every context implements --------------------------------------
    def run(
        self, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run a shell command in the job root; never raises for a non-zero exit.

        ``idempotent=True`` tells a context whose connection can drop that the command
        may simply be run again (a status query); otherwise it must not be repeated
        blindly (a submission).
        """
        raise NotImplementedError

    def run_in(
        self, directory: str, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run a shell command in ``directory`` rather than the job root, which is neither
        needed nor changed; never raises for a non-zero exit (see :meth:`run`).

        The default enters ``directory`` with ``cd`` at the start of a command run by
        :meth:`run` (so the job root must be enterable); contexts whose commands can start
        anywhere override it.
        """
        return self.run(f"cd {sh(directory)} || exit; {cmd}", timeout, idempotent=idempotent)

    def write_file(self, fname: str, write_str: str) -> str:
        """Write ``write_str`` to ``fname`` in the job root, atomically."""
        raise NotImplementedError

    def write_file_chunks(self, fname: str, chunks: Iterable[str]) -> str:
        """Write the text made of ``chunks`` to ``fname`` in the job root, atomically.

        Contexts that can stream to the file override this; the default joins the pieces.
        """
        return self.write_file(fname, "".join(chunks))

    def append_file(self, fname: str, text: str) -> bool:
        """Append ``text`` to ``fname`` in the job root, flushed, where that is cheap and
        safe (the job root is on this machine); False, and nothing written, elsewhere.

        The state journal (:mod:`dpdispatcher._journal`) is kept only where this is True.
        """
        return False

    def read_appended(self, fname: str) -> str:
        """The text :meth:`append_file` left in ``fname`` ("" if none, or where nothing
        is ever appended)."""
        return ""

    def remove_appended(self, fname: str) -> None:
        """Remove ``fname`` if :meth:`append_file` wrote it (nothing to do elsewhere)."""

    def file_on_this_host(self, fname: str) -> str | None:
        """The local path of ``fname`` in the job root when the job root is on this
        machine (so it can be linked rather than written again), else None."""
        return None

    def read_file(self, fname: str) -> str:
        """Read ``fname`` from the job root."""
        raise NotImplementedError

    def check_file_exists(self, fname: str) -> bool:
        """Whether ``fname`` (relative to the job root) exists."""
        raise NotImplementedError

    def upload(self, submission: Submission) -> None:
        """Send every forward and common file of ``submission`` to the job root."""
        raise NotImplementedError

    def download(
        self,
        submission: Submission,
        check_exists: bool = False,
        mark_failure: bool = True,
        back_error: bool = False,
    ) -> None:
        """Bring back every backward and backward-common file of ``submission``."""
        raise NotImplementedError

    def clean(self) -> None:
        """Remove the job root."""
        raise NotImplementedError

    # -- batched forms; contexts with costly round trips override these ------------
    def files_exist(self, fnames: list[str]) -> set[str]:
        """The subset of ``fnames`` (relative to the job root) that exist."""
        return {f for f in fnames if self.check_file_exists(f)}

    def write_files(self, files: dict[str, str]) -> None:
        """Write several files (relative to the job root)."""
        for fname, text in files.items():
            self.write_file(fname, text)

    def read_files(self, fnames: list[str]) -> dict[str, str]:
        """Read the files of ``fnames`` that exist."""
        return {f: self.read_file(f) for f in self.files_exist(fnames)}

    # -- the same, relative to a directory given explicitly -------------------------
    # (another job root than the bound one: the context is neither re-pointed nor bound)
    def files_exist_in(self, directory: str, fnames: list[str]) -> set[str]:
        """The subset of ``fnames`` (relative to ``directory``) that exist."""
        raise NotImplementedError(f"{type(self).__name__} cannot look outside its job root")

    def read_files_in(self, directory: str, fnames: list[str]) -> dict[str, str]:
        """Read the files of ``fnames`` (relative to ``directory``) that exist."""
        raise NotImplementedError(f"{type(self).__name__} cannot read outside its job root")

    # -- compatibility adapters over run() ----------------------------------------
    def block_call(self, cmd: str) -> tuple[int, None, SPRetObj, SPRetObj]:
        """Run ``cmd``; return ``(exit_status, stdin, stdout, stderr)`` like the original."""
        res = self.run(cmd)
        return res.exit_code, None, SPRetObj(res.stdout), SPRetObj(res.stderr)

    def block_checkcall(self, cmd: str) -> tuple[None, SPRetObj, SPRetObj]:
        """Run ``cmd``; raise :class:`CommandError` (a RuntimeError) unless it exits 0."""
        res = self.run(cmd).check()
        return None, SPRetObj(res.stdout), SPRetObj(res.stderr)

    def close(self) -> None:
        """Release connections (nothing to do for local contexts)."""

    def local_path(self, *parts: str) -> Path:
        """A path under the bound local work base."""
        return Path(self.local_root, *parts)


def migration_outcome(code: int, old_root: str, new_root: str, detail: str = "") -> bool:
    """What :meth:`BaseContext.migrate_recovery_root` reports for a probe's outcome:
    0 moved, 10 already moved, 11 both roots exist, 12 neither exists, else failed."""
    if code == 0:
        return True
    if code == 10:
        return False
    if code == 11:
        raise JobRootConflictError(
            f"cannot move the job root {old_root} to {new_root}: both old and new job roots "
            "exist; move the stale one away"
        )
    if code == 12:
        raise MissingStateError(f"Previous submission state not found: no job root {old_root}")
    raise RecoveryError(f"cannot move {old_root} to {new_root}: {detail.strip()}")
