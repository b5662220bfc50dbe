"""Zip archives for the cloud: pack a job's files, unpack its results safely.

:func:`unzip_file` checks every entry *before* writing anything: an absolute
name, a ``..`` component, or a symbolic link (``S_IFLNK`` in the entry's external
attributes) that resolves outside the target directory makes it raise
:class:`~dpdispatcher.errors.UnsafeArchiveError` with nothing extracted.

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

import os
import shutil
import stat
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from dpdispatcher.errors import UnsafeArchiveError

__all__ = ["UnsafeArchiveError", "unzip_file", "zip_file_list"]

_MAX_LINK_HOPS = 40


def zip_file_list(
    root_path: str | os.PathLike[str],
    zip_filename: str | os.PathLike[str],
    file_list: Iterable[str | os.PathLike[str]] = (),
) -> str:
    """Pack ``file_list`` (paths relative to ``root_path``) into a zip archive.

    Directories are recursed; symbolic links in the sources are followed (the
    archive holds the content). An empty ``file_list`` packs everything under
    ``root_path``. A relative ``zip_filename`` is taken relative to ``root_path``;
    the archive never contains itself.

    Returns
    -------
    str
        The path of the written archive.
    """
    root = Path(root_path)
    target = Path(zip_filename)
    if not target.is_absolute():
        target = root / target
    names = [os.fspath(name) for name in file_list] or sorted(os.listdir(root))
    target.parent.mkdir(parents=True, exist_ok=True)
    skip = os.path.realpath(target)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            _check_member_name(name, what="file list entry")
            for path, arcname in _walk(root / name, PurePosixPath(Path(name).as_posix())):
                if os.path.realpath(path) != skip:
                    archive.write(path, arcname.as_posix())
    return os.fspath(target)


def _walk(path: Path, arcname: PurePosixPath) -> Iterator[tuple[Path, PurePosixPath]]:
    """Yield ``(file on disk, name in archive)``; directories become entries too."""
    if not path.exists():
        raise FileNotFoundError(f"cannot zip {path}: no such file or directory")
    if not path.is_dir():
        yield path, arcname
        return
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop: do not descend twice
            dirnames[:] = []
            continue
        seen.add(real)
        rel = PurePosixPath(Path(dirpath).relative_to(path).as_posix())
        here = arcname / rel if str(rel) != "." else arcname
        if str(here) != ".":
            yield Path(dirpath), here
        dirnames.sort()
        for filename in sorted(filenames):
            yield Path(dirpath) / filename, here / filename


def _split(name: str) -> list[str]:
    return [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]


def _check_member_name(name: str, *, what: str = "archive entry") -> list[str]:
    """Return the components of ``name``; raise if it is absolute or climbs out."""
    posix = name.replace("\\", "/")
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"refusing {what} with an empty or NUL-containing name")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(f"refusing {what} with an absolute path: {name!r}")
    parts = _split(name)
    if ".." in parts:
        raise UnsafeArchiveError(f"refusing {what} with a '..' component: {name!r}")
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _resolves_inside(start: list[str], target: str, links: dict[str, str]) -> bool:
    """Follow ``target`` from directory ``start`` through the archive's own links.

    Works on names only (nothing is on disk yet); ``False`` when the walk climbs
    above the root, meets an absolute target, or loops.
    """
    if target.replace("\\", "/").startswith("/"):
        return False
    stack = list(start)
    pending = _split(target)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not stack:
                return False
            stack.pop()
            continue
        stack.append(part)
        link = links.get("/".join(stack))
        if link is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS or link.replace("\\", "/").startswith("/"):
                return False
            stack.pop()
            pending = _split(link) + pending
    return True


def _plan(archive: zipfile.ZipFile) -> tuple[list[zipfile.ZipInfo], dict[str, str]]:
    """Validate every entry; return the regular entries and the links (name → target)."""
    regular: list[zipfile.ZipInfo] = []
    links: dict[str, str] = {}
    for info in archive.infolist():
        parts = _check_member_name(info.filename)
        if not parts:
            continue
        if _is_symlink(info):
            links["/".join(parts)] = archive.read(info).decode("utf-8", "surrogateescape")
        else:
            regular.append(info)
    for name, target in links.items():
        if not _resolves_inside(_split(name)[:-1], target, links):
            raise UnsafeArchiveError(
                f"refusing symbolic link {name!r} -> {target!r}: it points outside the "
                "extraction directory"
            )
    for info in regular:
        parts = _split(info.filename)
        for depth in range(1, len(parts) + 1):
            if "/".join(parts[:depth]) in links:
                raise UnsafeArchiveError(
                    f"refusing entry {info.filename!r}: it would be written through the "
                    f"archive's symbolic link {'/'.join(parts[:depth])!r}"
                )
    return regular, links


def _replace_link(dest: Path) -> None:
    """Never write through a symlink already present at ``dest``: drop the link."""
    if dest.is_symlink():
        dest.unlink()


def unzip_file(zip_file: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "./") -> None:
    """Extract ``zip_file`` into ``out_dir``, refusing entries that would escape it.

    All entries are checked first; on any unsafe entry
    :class:`~dpdispatcher.errors.UnsafeArchiveError` is raised and nothing is
    written. Regular files keep their permission bits (without set-id bits); links
    from the archive are created last, so no file is ever written through one, and
    an existing symlink at a destination is replaced rather than followed.
    """
    out = Path(out_dir)
    with zipfile.ZipFile(zip_file) as archive:
        regular, links = _plan(archive)
        out.mkdir(parents=True, exist_ok=True)
        for info in regular:
            dest = out.joinpath(*_split(info.filename))
            if info.is_dir():
                _replace_link(dest)
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            _replace_link(dest)
            with archive.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                dest.chmod(mode)
        for name, target in links.items():
            dest = out.joinpath(*_split(name))
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.is_file():
                dest.unlink()
            os.symlink(target, dest)
