"""``HDFS``: the ``hadoop fs`` commands the HDFS context and DistributedShell need.

Every command is run as an argument vector (never through a shell), so a path with
blanks or shell characters stays one argument; an operand that is not a non-empty
string, starts with ``-`` (an option) or holds a NUL is refused before Hadoop starts.
A failure is a :class:`~dpdispatcher.errors.ContextError` (a ``RuntimeError``); a path
Hadoop reports missing is the subclass :class:`HDFSMissingPathError`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from dpdispatcher.errors import ContextError, HDFSMissingPathError

__all__ = ["HDFS", "HDFSMissingPathError", "parse_ls", "run_cmd_with_all_output"]

#: Hadoop's wordings of "that path does not exist"
_MISSING = ("No such file or directory", "FileNotFoundException", "does not exist")


def run_cmd_with_all_output(
    cmd: str | Sequence[str], shell: bool = True
) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` on this machine; return ``(exit code, stdout, stderr)`` as bytes.

    A string is run by ``/bin/sh`` when ``shell`` is true; a sequence is an argument
    vector (``shell=False``).
    """
    proc = subprocess.run(
        cmd if shell else list(cmd),
        shell=shell,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _operand(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"HDFS path must be a string, got {type(value).__name__}")
    if not value or value.startswith("-") or "\0" in value:
        raise ValueError(f"refusing HDFS path {value!r} (empty, an option, or holds NUL)")
    return value


def _fs(*args: str) -> tuple[int, bytes, bytes]:
    """``hadoop fs <args>`` as an argument vector."""
    return run_cmd_with_all_output(["hadoop", "fs", *args], shell=False)


def _failed(op: str, paths: Sequence[str], code: int, err: bytes) -> ContextError:
    text = err.decode("utf-8", errors="replace").strip()
    message = f"hadoop fs {op} {' '.join(paths)} failed (exit code {code}): {text}"
    if any(word in text for word in _MISSING):
        return HDFSMissingPathError(message)
    return ContextError(message)


def parse_ls(stdout: str) -> list[str]:
    """The paths ``hadoop fs -ls`` listed (``Found N items``, then one line per entry
    whose last field is the path).

    >>> parse_ls("Found 1 items\\n-rw-r--r--   1 u supergroup  0 2015-03-25 15:18 /tmp/a b\\n")
    ['/tmp/a b']
    """
    out = []
    for line in stdout.splitlines():
        fields = line.split(None, 7)
        if len(fields) == 8 and fields[0][:1] in "-dl":
            out.append(fields[7])
    return out


class HDFS:
    """Static wrappers of ``hadoop fs`` (the original's ``dpdispatcher.utils.hdfs_cli.HDFS``).

    Examples
    --------
    >>> HDFS.exists("-Dfs.defaultFS=evil")
    Traceback (most recent call last):
    ...
    ValueError: refusing HDFS path '-Dfs.defaultFS=evil' (empty, an option, or holds NUL)
    """

    @staticmethod
    def exists(uri: str) -> bool:
        """Whether ``uri`` exists (``-test -e``: exit 0 yes, 1 no, else an error)."""
        code, _, err = _fs("-test", "-e", _operand(uri))
        if code in (0, 1):
            return code == 0
        raise _failed("-test -e", [uri], code, err)

    @staticmethod
    def remove(uri: str) -> bool:
        """Remove ``uri`` recursively (``-rm -r``)."""
        code, _, err = _fs("-rm", "-r", _operand(uri))
        if code:
            raise _failed("-rm -r", [uri], code, err)
        return True

    @staticmethod
    def mkdir(uri: str) -> bool:
        """Create directory ``uri`` and its parents (``-mkdir -p``)."""
        code, _, err = _fs("-mkdir", "-p", _operand(uri))
        if code:
            raise _failed("-mkdir -p", [uri], code, err)
        return True

    @staticmethod
    def copy_from_local(local_path: str, to_uri: str) -> tuple[bool, bytes]:
        """Copy a local file to ``to_uri``, replacing it (``-copyFromLocal -f``)."""
        code, out, err = _fs("-copyFromLocal", "-f", _operand(local_path), _operand(to_uri))
        if code:
            raise _failed("-copyFromLocal -f", [local_path, to_uri], code, err)
        return True, out

    @staticmethod
    def copy_to_local(from_uri: str | list[str] | tuple[str, ...], local_path: str) -> bool:
        """Copy one or more HDFS paths (globs allowed) to ``local_path`` (``-copyToLocal``)."""
        sources = [from_uri] if isinstance(from_uri, str) else list(from_uri)
        if not sources:
            raise ValueError("copy_to_local needs at least one HDFS path")
        args = [_operand(s) for s in sources] + [_operand(local_path)]
        code, _, err = _fs("-copyToLocal", *args)
        if code:
            raise _failed("-copyToLocal", args, code, err)
        return True

    @staticmethod
    def read_hdfs_file(uri: str) -> bytes:
        """The content of ``uri`` (``-text``)."""
        code, out, err = _fs("-text", _operand(uri))
        if code:
            raise _failed("-text", [uri], code, err)
        return out

    @staticmethod
    def list_dir(uri: str) -> list[str]:
        """The paths in directory ``uri`` (``-ls``), as Hadoop prints them."""
        code, out, err = _fs("-ls", _operand(uri))
        if code:
            raise _failed("-ls", [uri], code, err)
        return parse_ls(out.decode("utf-8", errors="replace"))

    @staticmethod
    def move(from_uri: str, to_uri: str) -> bool:
        """Rename ``from_uri`` to ``to_uri`` (``-mv``)."""
        code, _, err = _fs("-mv", _operand(from_uri), _operand(to_uri))
        if code:
            raise _failed("-mv", [from_uri, to_uri], code, err)
        return True
