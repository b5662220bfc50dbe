"""Lexical path rules of staging: :class:`PathPolicy` and :class:`PathResolver`.

A staging path (a forward or backward file, a destination in a manifest) is a path
*relative to a root*. It may not be absolute (``/x``, ``C:x``, ``\\\\server\\x``), climb out
with ``..``, or hold a NUL; a backslash counts as a separator, so the rules are the same
on every platform (the rule of :mod:`dpdispatcher._relpath`, shared with archive
members). Glob characters are refused unless the caller expects a pattern.

Examples
--------
>>> PathPolicy.normalize_relative("./task//input")
'task/input'
>>> PathPolicy.join_relative("task", "*.out")
'task/*.out'
>>> PathPolicy.normalize_relative("../outside")
Traceback (most recent call last):
...
dpdispatcher.errors.StagingPathError: parent-directory traversal is not allowed: '../outside'
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from dpdispatcher._files import has_magic
from dpdispatcher._relpath import Breach, relative_parts
from dpdispatcher.errors import ConfigurationTypeError, StagingPathError

__all__ = ["PathPolicy", "PathResolver", "StrPath"]

#: what the staging classes accept as a path
StrPath = str | os.PathLike[str]


def _text(value: object) -> str:
    """``value`` as a string path; refuse anything that is not a ``str`` path."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ConfigurationTypeError(
            f"a staging path must be a str or os.PathLike[str], not {type(value).__name__}"
        )
    return value


_WHY = {
    Breach.NUL: "NUL characters are not allowed in staging paths",
    Breach.ABSOLUTE: "absolute paths are not allowed in staging entries",
    Breach.PARENT: "parent-directory traversal is not allowed",
}


def _refuse(breach: Breach, text: str) -> StagingPathError:
    """The error for a staging path breaking the rule of :mod:`dpdispatcher._relpath`."""
    return StagingPathError(f"{_WHY[breach]}: {text!r}")


class PathPolicy:
    """Validate and normalise paths relative to a staging root.

    Task and submission paths are lexical: refusing absolute paths and ``..`` here keeps
    ``os.path.join(root, value)`` inside the submission directory for every context.
    """

    @staticmethod
    def normalize_relative(value: StrPath, *, allow_glob: bool = False) -> str:
        """The canonical form of ``value``: ``/``-separated, without ``.`` or empty parts.

        Parameters
        ----------
        value : str or os.PathLike
            A relative path (``\\`` counts as a separator).
        allow_glob : bool
            Accept glob characters (``*``, ``?``, ``[``); refused by default.

        Returns
        -------
        str
            The normalised path, ``"."`` for the root itself.

        Raises
        ------
        TypeError
            ``value`` is not a string path (a :class:`~dpdispatcher.errors.ConfigurationTypeError`).
        ValueError
            ``value`` is absolute, contains ``..`` or a NUL, or (without ``allow_glob``) a
            glob character (a :class:`~dpdispatcher.errors.StagingPathError`).
        """
        text = _text(value)
        parts = relative_parts(text, _refuse, backslash_separates=True)
        normalized = "/".join(parts) or "."
        if not allow_glob and has_magic(normalized):
            shown = text.replace("\\", "/")
            raise StagingPathError(f"glob patterns are not allowed here: {shown!r}")
        return normalized

    @classmethod
    def join_relative(cls, prefix: str, suffix: str) -> str:
        """Join a relative ``prefix`` (no globs) and ``suffix`` (globs allowed), normalised.

        Examples
        --------
        >>> PathPolicy.join_relative("prefix", "."), PathPolicy.join_relative(".", "x")
        ('prefix', 'x')
        """
        head = cls.normalize_relative(prefix)
        tail = cls.normalize_relative(suffix, allow_glob=True)
        if head == ".":
            return tail
        return head if tail == "." else f"{head}/{tail}"


class PathResolver:
    """Resolve validated relative paths and glob patterns under one ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        The staging root (made absolute; it need not exist).
    """

    def __init__(self, root: StrPath) -> None:
        self.root = Path(os.path.abspath(_text(root)))

    def _inside(self, path: str) -> str:
        """``path`` (absolute) relative to the root, after normalisation; raise if outside."""
        normalized = os.path.normpath(os.path.abspath(path))
        rel = os.path.relpath(normalized, self.root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            raise StagingPathError(f"path {path} is outside staging root {self.root}")
        return rel

    def _join(self, rel: str) -> Path:
        return self.root if rel == "." else self.root / rel

    def resolve(
        self, value: StrPath, *, allow_glob: bool = False, allow_absolute: bool = False
    ) -> Path:
        """The absolute path of ``value`` under the root.

        Parameters
        ----------
        value : str or os.PathLike
            A relative path, or (with ``allow_absolute``) an absolute one inside the root.
        allow_glob : bool
            Accept glob characters.
        allow_absolute : bool
            Accept an absolute path; it is normalised (``..`` collapsed) before the
            containment check.

        Raises
        ------
        ValueError
            The path is absolute (without ``allow_absolute``) or outside the root.
        """
        text = _text(value)
        if allow_absolute and os.path.isabs(text):
            if "\0" in text:
                raise _refuse(Breach.NUL, text)
            text = self._inside(text)
        return self._join(PathPolicy.normalize_relative(text, allow_glob=allow_glob))

    def relative(self, value: StrPath) -> str:
        """The canonical path of ``value`` (relative to the working directory, or
        absolute) relative to the root; raise when it lies outside."""
        rel = self._inside(os.path.abspath(_text(value)))
        return PathPolicy.normalize_relative(rel, allow_glob=True)

    def expand(self, pattern: StrPath) -> list[Path]:
        """What ``pattern`` names under the root, sorted (``[]`` when nothing).

        A glob is matched with :func:`glob.glob` in the root (``root_dir``, so the root's
        own ``[`` or ``*`` stay literal): ``**`` is recursive and does not name the root
        itself, ``*`` skips dot files. A literal path is returned when it exists, a
        dangling symbolic link included.
        """
        rel = PathPolicy.normalize_relative(pattern, allow_glob=True)
        if has_magic(rel):
            found = glob.glob(rel, root_dir=self.root, recursive=True)
            return sorted(self.root / path for path in found)
        path = self._join(rel)
        return [path] if os.path.lexists(path) else []
