"""Shared primitives of the contexts that run on this machine."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from dpdispatcher.base_context import BaseContext, CommandResult
from dpdispatcher.errors import ContextError


def atomic_write(path: str, text: str | Iterable[str]) -> None:
    """Write ``text`` (a string or pieces of one) to ``path`` through a unique temporary
    file and a rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp.", suffix="." + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            for block in _blocks([text] if isinstance(text, str) else text):
                fh.write(block.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_link(source: str, path: str) -> bool:
    """Make ``path`` a hard link to ``source``, atomically replacing what was there.

    Returns False (and changes nothing) where a link cannot be made, e.g. across file
    systems. Every writer replaces files by rename, so the two names never see a
    half-written or in-place change.
    """
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp.{os.getpid()}.{os.path.basename(path)}")
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        return False
    return True


def _blocks(pieces: Iterable[str], size: int = 1 << 20) -> Iterator[str]:
    """``pieces`` joined into blocks of about ``size`` characters (few, large writes
    without ever holding the whole text)."""
    buffer: list[str] = []
    held = 0
    for piece in pieces:
        if len(piece) >= size // 4:  # large already: written as it is, not copied again
            if buffer:
                yield "".join(buffer)
                buffer, held = [], 0
            yield piece
            continue
        buffer.append(piece)
        held += len(piece)
        if held >= size:
            yield "".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield "".join(buffer)


class LocalShellContext(BaseContext):
    """Runs commands with a local bash and reads/writes files directly."""

    _abstract = True
    remote_root_is_local = True

    def run(
        self, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run ``cmd`` with bash in the job root (or the current directory before binding)."""
        return self.run_in(self.remote_root, cmd, timeout, idempotent=idempotent)

    def run_in(
        self, directory: str, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run ``cmd`` with bash in ``directory`` (the current directory if it is none)."""
        cwd = directory if os.path.isdir(directory) else None
        try:
            proc = subprocess.run(
                ["bash", "-c", cmd],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ContextError(f"could not run {cmd!r}: {err}") from err
        return CommandResult(proc.returncode, proc.stdout, proc.stderr, cmd)

    # -- asynchronous commands (1.1.0 compatibility) --------------------------------------
    def call(self, cmd: str) -> subprocess.Popen[bytes]:
        """Start ``cmd`` with bash in the job root without waiting; see :meth:`check_finish`."""
        cwd = self.remote_root if os.path.isdir(self.remote_root) else None
        try:
            return subprocess.Popen(
                ["bash", "-c", cmd],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as err:
            raise ContextError(f"could not run {cmd!r}: {err}") from err

    @staticmethod
    def check_finish(proc: subprocess.Popen[bytes]) -> bool:
        """Whether a command started by :meth:`call` has finished."""
        return proc.poll() is not None

    @staticmethod
    def get_return(proc: subprocess.Popen[bytes]) -> tuple[int, Any, Any]:
        """``(exit_code, stdout, stderr)`` of a command started by :meth:`call`; the two
        streams are its pipes (``.read()`` gives bytes). Waits for it to finish."""
        code = proc.wait()
        return code, proc.stdout, proc.stderr

    def _abs(self, fname: str) -> str:
        return os.path.join(self.remote_root, fname)

    def write_file(self, fname: str, write_str: str) -> str:
        """Write a file in the job root atomically; return its path."""
        path = self._abs(fname)
        atomic_write(path, write_str)
        return path

    def append_file(self, fname: str, text: str) -> bool:
        """Append ``text`` to ``fname`` in the job root and flush it; True."""
        with open(self._abs(fname), "a", encoding="utf-8") as fh:
            fh.write(text)
        return True

    def read_appended(self, fname: str) -> str:
        """The text of ``fname`` in the job root, "" if there is none."""
        try:
            with open(self._abs(fname), encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def remove_appended(self, fname: str) -> None:
        """Remove ``fname`` from the job root if it is there."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._abs(fname))

    def file_on_this_host(self, fname: str) -> str | None:
        """The path of ``fname`` in the job root (it is on this machine)."""
        return self._abs(fname)

    def write_file_chunks(self, fname: str, chunks: Iterable[str]) -> str:
        """Write a file made of ``chunks`` in the job root atomically, streamed; its path."""
        path = self._abs(fname)
        atomic_write(path, chunks)
        return path

    def write_files(self, files: dict[str, str]) -> None:
        """Write several files; new ones directly, existing ones by atomic replacement.

        A file that did not exist cannot be read half-written by a running job, and a
        crash mid-write leaves content that differs from the next run's, so it is
        rewritten then; only replacing a file needs the temporary name and rename.
        """
        for fname, text in files.items():
            path = self._abs(fname)
            try:
                with open(path, "x", encoding="utf-8") as fh:
                    fh.write(text)
            except FileExistsError:
                atomic_write(path, text)
            except FileNotFoundError:
                atomic_write(path, text)  # creates the missing directory

    def read_file(self, fname: str) -> str:
        """Read a file from the job root."""
        return _read_text(self._abs(fname))

    def read_files(self, fnames: list[str]) -> dict[str, str]:
        """Read the files of ``fnames`` that exist in the job root."""
        return self.read_files_in(self.remote_root, fnames)

    def read_files_in(self, directory: str, fnames: list[str]) -> dict[str, str]:
        """Read the files of ``fnames`` that exist in ``directory``."""
        found = self.files_exist_in(directory, fnames)
        return {f: _read_text(os.path.join(directory, f)) for f in fnames if f in found}

    def check_file_exists(self, fname: str) -> bool:
        """Whether a file exists in the job root."""
        return os.path.lexists(self._abs(fname))

    def files_exist(self, fnames: list[str]) -> set[str]:
        """The subset of ``fnames`` that exist in the job root (see :meth:`files_exist_in`)."""
        return self.files_exist_in(self.remote_root, fnames)

    def files_exist_in(self, directory: str, fnames: list[str]) -> set[str]:
        """The subset of ``fnames`` that exist in ``directory`` (as ``os.path.lexists`` says).

        Each name is one ``faccessat`` relative to the open job root: the cost grows with
        the names asked, never with what else the root holds. (A listing was cheaper only
        for a root holding little but the names asked; a real job root holds five files
        and a task directory per job, and listing it at every poll that asks a few
        dozen finish tags cost as much as the whole root.)
        """
        try:
            if not _ACCESS_AT:
                raise OSError("os.access takes no dir_fd here")
            root = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:  # no such root (or no dir_fd on this platform): ask each by path
            return {f for f in fnames if os.path.lexists(os.path.join(directory, f))}
        access, exists = os.access, os.F_OK
        try:
            # "" is the root itself, as for lexists(join(root, ""))
            return {
                f for f in fnames if access(f or ".", exists, dir_fd=root, follow_symlinks=False)
            }
        finally:
            os.close(root)


def _read_text(path: str) -> str:
    """The text of the file at ``path`` (UTF-8)."""
    with open(path, encoding="utf-8") as fh:
        return fh.read()


#: whether :meth:`LocalShellContext.files_exist_in` can ask names relative to an open root
_ACCESS_AT = os.access in os.supports_dir_fd and os.access in os.supports_follow_symlinks
