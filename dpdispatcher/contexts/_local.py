"""Shared primitives of the contexts that run on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable

from dpdispatcher.base_context import BaseContext, CommandResult
from dpdispatcher.errors import ContextError


def atomic_write(path: str, text: str | Iterable[str]) -> None:
    """Write ``text`` (a string or pieces of one) to ``path`` through a unique temporary
    file and a rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp.", suffix="." + os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_path(path: str) -> None:
    """Remove a file, link or directory tree if it exists."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


class LocalShellContext(BaseContext):
    """Runs commands with a local bash and reads/writes files directly."""

    _abstract = True
    remote_root_is_local = True

    def run(
        self, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        """Run ``cmd`` with bash in the job root (or the current directory before binding)."""
        cwd = self.remote_root if os.path.isdir(self.remote_root) else None
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

    def _abs(self, fname: str) -> str:
        return os.path.join(self.remote_root, fname)

    def write_file(self, fname: str, write_str: str) -> str:
        """Write a file in the job root atomically; return its path."""
        path = self._abs(fname)
        atomic_write(path, write_str)
        return path

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
        with open(self._abs(fname), encoding="utf-8") as fh:
            return fh.read()

    def check_file_exists(self, fname: str) -> bool:
        """Whether a file exists in the job root."""
        return os.path.lexists(self._abs(fname))
