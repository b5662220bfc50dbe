"""Zip archives for the cloud: pack a job's files, unpack its results safely.

The reference manual's two functions over the package's one zip writer
(:func:`dpdispatcher._archive_write.write_zip`) and one safe extractor
(:func:`dpdispatcher._archive.safe_extract_zip`): a member with an absolute name, a
``..`` component, or a symbolic link leading out of the target (or one written through
a link) is skipped with a WARNING naming it; the rest is extracted, each member
replacing what is in the target.

Examples
--------
>>> import pathlib, tempfile
>>> from dpdispatcher.dpcloudserver.zip_file import unzip_file, zip_file_list
>>> src = pathlib.Path(tempfile.mkdtemp())
>>> _ = (src / "a.txt").write_text("hello")
>>> archive = zip_file_list(str(src), "job.zip", file_list=["a.txt"])
>>> out = tempfile.mkdtemp()
>>> unzip_file(archive, out)
>>> (pathlib.Path(out) / "a.txt").read_text()
'hello'
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from dpdispatcher._archive import safe_extract_zip
from dpdispatcher._archive_check import member_parts
from dpdispatcher._archive_write import write_zip
from dpdispatcher.errors import UnsafeArchiveError

__all__ = ["UnsafeArchiveError", "unzip_file", "zip_file_list"]


def zip_file_list(
    root_path: str | os.PathLike[str],
    zip_filename: str | os.PathLike[str],
    file_list: Iterable[str | os.PathLike[str]] | None = None,
) -> str:
    """Pack ``file_list`` (paths or glob patterns relative to ``root_path``) into a zip.

    Directories are recursed; symbolic links in the sources are followed (the archive
    holds the content). An empty ``file_list`` packs everything under ``root_path``. A
    relative ``zip_filename`` is taken relative to ``root_path``; the archive never
    contains itself. A name that is absolute or climbs out with ``..`` raises
    :class:`UnsafeArchiveError`; a missing one, ``FileNotFoundError``.

    Returns
    -------
    str
        The path of the written archive.
    """
    root = Path(root_path)
    target = Path(zip_filename)
    if not target.is_absolute():
        target = root / target
    names = [os.fspath(name) for name in file_list or ()] or sorted(os.listdir(root))
    skip = os.path.realpath(target)
    entries: dict[str, str | None] = {}
    for pattern in names:
        member_parts(pattern)  # refuses absolute names and '..'
        matches = sorted(glob.glob(pattern, root_dir=root)) if glob.has_magic(pattern) else []
        for name in matches or [pattern]:
            path = root / name
            if not path.exists():
                raise FileNotFoundError(f"cannot zip {path}: no such file or directory")
            if os.path.realpath(path) != skip:
                entries[PurePosixPath(Path(name).as_posix()).as_posix()] = os.fspath(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_zip(os.fspath(target), entries, skip=skip)
    return os.fspath(target)


def unzip_file(
    zip_file: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "./"
) -> set[str]:
    """Extract ``zip_file`` into ``out_dir`` safely (see the module documentation);
    return the names extracted (relative to ``out_dir``), as 1.1.0 did."""
    os.makedirs(out_dir, exist_ok=True)
    placed = safe_extract_zip(os.fspath(zip_file), os.fspath(out_dir))
    return files_under(os.fspath(out_dir), placed)


def files_under(root: str, names: Iterable[str]) -> set[str]:
    """``names`` (relative to ``root``) with each directory replaced by the regular files
    below it (relative, ``/``-separated)."""
    files: set[str] = set()
    for name in names:
        top = os.path.join(root, name)
        if not os.path.isdir(top) or os.path.islink(top):
            files.add(name)
            continue
        for dirpath, _dirs, fnames in os.walk(top):
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            files.update(f"{rel}/{f}" for f in fnames)
    return files
