"""SSHContext: run jobs on a remote host reached over SSH (paramiko, imported lazily).

Every file transfer is one tar stream over one channel; every batched file operation
(write, read, exists) is one round trip; every command runs in the job root through
bash. A dropped connection is reopened and the operation repeated: uploads and
downloads are idempotent (an upload resumes by sending only what differs, a download
extracts nothing until the whole archive arrived), and commands are *journaled* on the
remote side so that a command whose connection broke is never run twice — its
recorded outcome is fetched instead (see :meth:`SSHContext.run`).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher import _files
from dpdispatcher._script.quoting import sh
from dpdispatcher.base_context import BaseContext, CommandResult, SPRetObj
from dpdispatcher.contexts import _ssh_scripts as scripts
from dpdispatcher.contexts import _ssh_transfer as transfer
from dpdispatcher.contexts._ssh_channel import decode
from dpdispatcher.contexts._ssh_errors import (
    AmbiguousCommandError,
    HostKeyChangedError,
    HostKeyError,
    SSHAuthenticationError,
    SSHConnectionError,
    SSHError,
    SSHTimeoutError,
    UnknownHostKeyError,
)
from dpdispatcher.contexts._ssh_files import (
    download_once,
    read_files_once,
    upload_once,
    write_file_once,
)
from dpdispatcher.contexts._ssh_profile import make_session, remote_profile_fields
from dpdispatcher.contexts._ssh_retry import Reconnecting
from dpdispatcher.contexts._ssh_session import SSHSession
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import CommandError, ConfigurationError

if TYPE_CHECKING:
    import paramiko

    from dpdispatcher.submission import Submission

__all__ = [
    "AmbiguousCommandError",
    "HostKeyChangedError",
    "HostKeyError",
    "SSHAuthenticationError",
    "SSHConnectionError",
    "SSHContext",
    "SSHError",
    "SSHSession",
    "SSHTimeoutError",
    "UnknownHostKeyError",
    "remote_profile_fields",
]


class SSHContext(Reconnecting, BaseContext):
    """Jobs run in ``remote_root/<submission_hash>`` on a host reached over SSH.

    Parameters
    ----------
    local_root : str
        Local directory holding the submission's work base.
    remote_root : str
        Remote directory where job roots are created (``~`` and relative paths are
        taken from the remote home).
    remote_profile : dict
        Connection settings: see :func:`remote_profile_fields` / :class:`SSHSession`.
    clean_asynchronously : bool
        Remove the job root in the background.
    create_remote_root : bool
        Create ``remote_root`` if missing (otherwise a missing one is an error).

    Examples
    --------
    >>> ctx = SSHContext("/tmp", "/scratch/alice", {"hostname": "hpc.example.org",
    ...                  "username": "alice", "password": "secret"})
    >>> ctx
    SSHContext(alice@hpc.example.org:22, remote_root='/scratch/alice')
    >>> "password" in ctx.public_profile()
    False
    """

    secret_keys: ClassVar[tuple[str, ...]] = ("password", "passphrase", "totp_secret")

    def __init__(
        self,
        local_root: str,
        remote_root: str | None = None,
        remote_profile: dict[str, Any] | None = None,
        *,
        clean_asynchronously: bool = False,
        create_remote_root: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            local_root,
            remote_root,
            remote_profile,
            clean_asynchronously=clean_asynchronously,
            **kwargs,
        )
        self.create_remote_root = create_remote_root
        self.ssh_session = make_session(self.remote_profile)
        self.tar_compress = bool(self.remote_profile.get("tar_compress", True))
        self._done_tokens: list[str] = []
        self._purged_connection = -1
        self._home: str | None = None

    def __repr__(self) -> str:
        s = self.ssh_session
        return f"SSHContext({s.username}@{s.hostname}:{s.port}, remote_root={self.remote_root!r})"

    @classmethod
    def machine_subfields(cls) -> list[Any]:
        """The ``remote_profile`` of an SSH machine."""
        from dargs import Argument

        return [
            Argument(
                "remote_profile",
                dict,
                remote_profile_fields(),
                doc="How to reach the remote host over SSH.",
            )
        ]

    def public_profile(self) -> dict[str, Any]:
        """The profile without secrets (a secret left unset stays, as None)."""
        return {
            k: v
            for k, v in self.remote_profile.items()
            if (k not in self.secret_keys or v is None)
            and not (k == "archive_chunk_size" and not v)  # as 1.1.0: 0 leaves hashes alone
        }

    # -- compatibility properties ------------------------------------------------------
    @property
    def ssh(self) -> SSHSession:
        """The SSH session (its ``exec_command`` works like paramiko's SSHClient's)."""
        return self.ssh_session

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """An SFTP client on the live connection."""
        return self._call("open SFTP", lambda s: s.sftp)

    def close(self) -> None:
        """Close the connection (first deleting the journal entries already received)."""
        session = self.ssh_session
        if self._done_tokens and session.is_alive():
            try:
                session.run_raw(scripts.forget_script(self._done_tokens))
                self._done_tokens = []
            except Exception as err:  # noqa: BLE001 - best effort: purged after a day anyway
                dlog.debug("could not tidy the command journal: %s", err)
        session.close()

    # -- binding ---------------------------------------------------------------------------
    def bind_submission(self, submission: Submission) -> None:
        """Bind, and make the job root absolute (``~`` = the remote home)."""
        super().bind_submission(submission)
        self.remote_root = self._absolute(self.remote_root)

    def binds_offline(self) -> bool:
        """Only an absolute remote root (or a known home) binds without connecting."""
        return posixpath.isabs(self.init_remote_root or "") or self._home is not None

    def migrate_recovery_root(self, old_root: str, new_root: str) -> bool:
        """Rename a job root on the host (see :meth:`BaseContext.migrate_recovery_root`);
        ``~`` and relative roots are taken from the remote home."""
        return super().migrate_recovery_root(self._absolute(old_root), self._absolute(new_root))

    def _absolute(self, path: str) -> str:
        if posixpath.isabs(path):
            return posixpath.normpath(path)
        if self._home is None:
            res = self._call("find the remote home", lambda s: s.run_raw(scripts.home_script()))
            self._home = decode(res.stdout).strip() or "/"
        rel = path[1:].lstrip("/") if path == "~" or path.startswith("~/") else path
        return posixpath.normpath(posixpath.join(self._home, rel))

    def _root(self) -> str:
        """The job root (or, before binding, the remote root), made absolute."""
        if not posixpath.isabs(self.remote_root):
            self.remote_root = self._absolute(self.remote_root)
        return self.remote_root

    def _abs(self, fname: str) -> str:
        return posixpath.join(self._root(), fname)

    # -- commands --------------------------------------------------------------------------
    def run(
        self, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run ``cmd`` with bash in the job root; a non-zero exit is not an exception.

        By default the command is *journaled*: it runs detached from the connection and
        its outcome is kept remotely until received, so if the connection drops the
        command is neither killed nor repeated — after reconnecting, its recorded
        outcome is returned (waiting up to :attr:`journal_wait` s if it is still
        running). Pass ``idempotent=True`` for commands that may simply be repeated
        (a status query): they skip the journal.

        Raises
        ------
        AmbiguousCommandError
            The outcome of a journaled command could not be established.
        SSHConnectionError
            The host stayed unreachable through every reconnection attempt.
        SSHTimeoutError
            ``timeout`` seconds passed.
        """
        return self.run_in(self._root(), cmd, timeout, idempotent=idempotent)

    def run_in(
        self, directory: str, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run ``cmd`` with bash in ``directory`` on the host (``~`` and relative paths
        taken from the remote home), as :meth:`run` does in the job root."""
        script = scripts.in_root(self._absolute(directory), cmd)
        what = f"command {cmd[:60]!r}"
        if idempotent:
            raw = self._call(what, lambda s: s.run_raw(script, timeout=timeout))
        else:
            raw = self._run_journaled(what, script, timeout)
        return CommandResult(raw.exit_code, decode(raw.stdout), decode(raw.stderr), cmd)

    def block_checkcall(
        self, cmd: str, asynchronously: bool = False, stderr_whitelist: list[str] | None = None
    ) -> tuple[None, SPRetObj, SPRetObj]:
        """Run ``cmd``; raise unless it exits 0 (or its stderr contains a whitelisted text).

        With ``asynchronously`` the command is started with nohup in the background.
        """
        if asynchronously:
            cmd = f"nohup bash -c {sh(cmd)} >/dev/null 2>&1 &"
        res = self.run(cmd)
        if not res.ok and not any(w in res.stderr for w in stderr_whitelist or []):
            raise CommandError(cmd, res.exit_code, res.stderr)
        return None, SPRetObj(res.stdout), SPRetObj(res.stderr)

    # -- files -----------------------------------------------------------------------------
    def write_file(self, fname: str, write_str: str) -> str:
        """Write ``fname`` in the job root atomically (temporary name + posix_rename)."""
        path = self._abs(fname)
        data = write_str.encode("utf-8")
        self._call(f"write {fname}", lambda s: write_file_once(s, path, data))
        return path

    def write_files(self, files: dict[str, str]) -> None:
        """Write several files atomically in one round trip."""
        if not files:
            return
        archive, root = transfer.tar_bytes(files), self._root()
        res = self._call(
            "write files",
            lambda s: s.run_raw(scripts.write_files_script(root), stdin=archive),
        )
        if res.exit_code != 0:
            raise SSHError(
                f"writing {len(files)} files in {root} failed: {decode(res.stderr).strip()}"
            )

    def read_file(self, fname: str) -> str:
        """Read ``fname`` from the job root (FileNotFoundError if it does not exist)."""

        path = self._abs(fname)

        def op(session: SSHSession) -> bytes:
            with session.sftp.open(path, "rb") as fh:
                return bytes(fh.read())

        return decode(self._call(f"read {fname}", op))

    def read_files(self, fnames: list[str]) -> dict[str, str]:
        """Read the existing regular files among ``fnames``, in one round trip."""
        return self.read_files_in(self._root(), fnames)

    def read_files_in(self, directory: str, fnames: list[str]) -> dict[str, str]:
        """Read the existing regular files among ``fnames`` in ``directory`` on the host
        (``~`` and relative paths taken from the remote home), in one round trip."""
        if not fnames:
            return {}
        root = self._absolute(directory)
        return self._call("read files", lambda s: read_files_once(s, root, fnames))

    def files_exist(self, fnames: list[str]) -> set[str]:
        """Which of ``fnames`` exist in the job root, in one round trip."""
        return self.files_exist_in(self._root(), fnames)

    def files_exist_in(self, directory: str, fnames: list[str]) -> set[str]:
        """Which of ``fnames`` exist in ``directory`` on the host (``~`` and relative
        paths taken from the remote home), in one round trip."""
        if not fnames:
            return set()
        script = scripts.exists_script(self._absolute(directory))
        res = self._call("check files", lambda s: s.run_raw(script, stdin=scripts.nul_list(fnames)))
        return set(scripts.split_nul(res.stdout)) & set(fnames)

    def check_file_exists(self, fname: str) -> bool:
        """Whether ``fname`` exists in the job root."""
        return fname in self.files_exist([fname])

    # -- transfers -------------------------------------------------------------------------
    def upload(self, submission: Submission, dereference: bool = True) -> None:
        """Send every forward and common file as one tar stream, extracted remotely.

        When the job root already exists (a resumed run), one remote ``sha256sum``
        tells which files are already there, and only the others are sent.
        """
        entries = transfer.collect(
            self.local_root,
            _files.forward_files(submission, self.local_root),
            _files.task_dirs(submission),
            follow=dereference,
        )
        root = self._root()
        self._call(
            "upload",
            lambda s: upload_once(
                s,
                root,
                entries,
                create_remote_root=self.create_remote_root,
                tar_compress=self.tar_compress,
            ),
        )

    def download(
        self,
        submission: Submission,
        check_exists: bool = False,
        mark_failure: bool = True,
        back_error: bool = False,
    ) -> None:
        """Fetch every backward file as one remote tar, extracted safely here.

        Patterns are expanded remotely; files already present locally are not fetched.
        Missing files raise :class:`RemoteFileNotFoundError` (after the others were
        fetched) unless ``check_exists``, which with ``mark_failure`` writes a
        ``tag_failure_download_*`` marker instead.
        """
        requests = list(_files.backward_requests(submission, back_error))
        if requests:
            root = self._root()
            self._call(
                "download",
                lambda s: download_once(
                    s,
                    root,
                    self.local_root,
                    requests,
                    check_exists=check_exists,
                    mark_failure=mark_failure,
                    tar_compress=self.tar_compress,
                    chunk_size=self.ssh_session.archive_chunk_size,
                ),
            )

    def clean(self) -> None:
        """Remove the job root (in the background with ``clean_asynchronously``)."""
        root = posixpath.normpath(self._root())
        if root in ("/", ".", "") or (self._home is not None and root == self._home):
            raise ConfigurationError(f"refusing to remove {root!r}")
        script = scripts.clean_script(root, self.clean_asynchronously)
        if self._done_tokens:
            script = scripts.forget_script(self._done_tokens) + "; " + script
        self._call("clean", lambda s: s.run_raw(script))
        self._done_tokens = []

    # -- asynchronous commands (compatibility) ---------------------------------------------
    def call(self, cmd: str) -> dict[str, Any]:
        """Start ``cmd`` in the job root without waiting; see :meth:`check_finish`."""
        request = scripts.exec_string(scripts.in_root(self._root(), cmd))
        stdin, stdout, stderr = self._call("start command", lambda s: s.exec_command(request))
        return {"stdin": stdin, "stdout": stdout, "stderr": stderr}

    @staticmethod
    def check_finish(cmd_pipes: dict[str, Any]) -> bool:
        """Whether a command started by :meth:`call` has finished."""
        return bool(cmd_pipes["stdout"].channel.exit_status_ready())

    @staticmethod
    def get_return(cmd_pipes: dict[str, Any]) -> tuple[int, None, SPRetObj, SPRetObj]:
        """``(exit_code, None, stdout, stderr)`` of a command started by :meth:`call`."""
        out = scripts.strip_marker(cmd_pipes["stdout"].read())
        err = scripts.strip_marker(cmd_pipes["stderr"].read())
        code = cmd_pipes["stdout"].channel.recv_exit_status()
        return int(code), None, SPRetObj(out), SPRetObj(err)

    @staticmethod
    def kill(cmd_pipes: dict[str, Any]) -> None:
        """Abandon a command started by :meth:`call` (closes its channel)."""
        cmd_pipes["stdout"].channel.close()
