"""The one walk of a local directory tree that is packed for sending (zip or tar).

:func:`walk_tree` is :func:`os.walk` top-down in name order (the order the archives
list their members in), visiting each real directory once: with ``follow`` a symbolic
link to a directory is descended, but a directory already visited under another name (a
link loop, or a second link to it) is skipped with all it holds.

Examples
--------
>>> import os, tempfile
>>> top = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(top, "b", "c"))
>>> _ = open(os.path.join(top, "b", "x"), "w").write("x")
>>> os.symlink(top, os.path.join(top, "b", "loop"))
>>> [(rel, dirs, files) for _, rel, dirs, files in walk_tree(top)]
[('.', ['b'], []), ('b', ['c', 'loop'], ['x']), ('b/c', [], [])]
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["walk_tree"]


def walk_tree(top: str, *, follow: bool = True) -> Iterator[tuple[str, str, list[str], list[str]]]:
    """Walk the directory ``top`` top-down, in name order, each real directory once.

    Yields ``(dirpath, rel, dirnames, filenames)``: ``dirpath``, ``dirnames`` and
    ``filenames`` as :func:`os.walk` gives them (``followlinks=follow``; the names
    sorted, and changing the yielded lists does not steer the walk), ``rel`` the
    directory relative to ``top``, ``/``-separated (``"."`` for ``top`` itself, as
    :func:`os.path.relpath` says). A directory whose real path was visited already is
    not yielded, nor anything below it.
    """
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=follow):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
        yield dirpath, rel, list(dirnames), sorted(filenames)
