"""All-or-nothing extraction of untrusted archives (the 1.1.0 ``dpdispatcher.utils.archive`` API).

The transfers of dpdispatcher use :mod:`dpdispatcher._archive`, which skips an unsafe
member with a warning and extracts the rest. This module is the stricter profile 1.1.0
exposed publicly: the whole archive is validated first and *any* problem raises
:class:`~dpdispatcher.errors.UnsafeArchiveError` before a single byte is written.
Member names go through the same check as the transfers
(:func:`dpdispatcher._archive_check.member_parts`), and additionally:

- links, devices and FIFOs are refused (``link or special file``);
- names that are not portable to Windows are refused (``:`` in a component, reserved
  device names such as ``NUL.txt``);
- two members naming the same path (after ``.``/``//`` and Unicode NFC normalisation),
  and a member below a member that is a file, are refused;
- the destination, or the nearest existing directory it would be created in, may not be
  a symbolic link, and no existing entry on a member's path below it may be one.

Files are written to a temporary name and renamed over the old entry, so an existing
hard link is broken, never written through. Directory modes of the archive are applied
at the end, deepest first; existing directories that must be entered are made writable
for the time of the extraction and get their mode back afterwards, also on error.

Examples
--------
>>> import io, tarfile, tempfile
>>> buf = io.BytesIO()
>>> with tarfile.open(fileobj=buf, mode="w") as tar:
...     info = tarfile.TarInfo("../evil"); info.size = 0
...     tar.addfile(info, io.BytesIO(b""))
>>> _ = buf.seek(0)
>>> with tarfile.open(fileobj=buf) as tar:
...     safe_extract_tar(tar, tempfile.mkdtemp())
Traceback (most recent call last):
...
dpdispatcher.errors.UnsafeArchiveError: archive member '../evil': climbs out of the target with '..'
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from typing import IO

from dpdispatcher._archive import _tar_member, _zip_member
from dpdispatcher._archive_check import Kind, Member, Parts, member_parts, unsafe_member
from dpdispatcher.errors import UnsafeArchiveError

__all__ = ["UnsafeArchiveError", "safe_extract_tar", "safe_extract_zip"]

_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)]
)
_USER_RWX = stat.S_IRWXU

#: (index in the archive, member name, is a directory, permission bits)
Candidate = tuple[int, str, bool, int]
#: (index in the archive, normalised path, is a directory, permission bits)
Entry = tuple[int, Parts, bool, int]


def _portable_parts(name: str) -> Parts:
    parts = member_parts(name)
    for part in parts:
        if ":" in part:
            raise unsafe_member(
                name, "contains ':' (a drive or an alternate data stream on Windows)"
            )
        if part.split(".")[0].strip().upper() in _RESERVED:
            raise unsafe_member(name, f"uses the reserved device name {part!r}")
    return parts


def _validate_manifest(candidates: Iterable[Candidate]) -> list[Entry]:
    """Check the member list as a whole; linear in the number of members."""
    entries: list[Entry] = []
    seen: dict[Parts, bool] = {}
    for index, name, is_dir, mode in candidates:
        parts = _portable_parts(name)
        if not parts:
            if is_dir:
                continue
            raise unsafe_member(name, "has an empty name")
        key = tuple(unicodedata.normalize("NFC", p) for p in parts)
        if key in seen and not (is_dir and seen[key]):
            raise unsafe_member(name, "names the same path as an earlier member")
        seen[key] = is_dir
        entries.append((index, parts, is_dir, mode))
    for _index, parts, _is_dir, _mode in entries:
        key = tuple(unicodedata.normalize("NFC", p) for p in parts)
        for depth in range(1, len(key)):
            if seen.get(key[:depth]) is False:
                raise unsafe_member("/".join(parts), "is below a member that is a file")
    return entries


def _checked_root(output_dir: str) -> str:
    """The real path of ``output_dir``; refuse it (or its nearest existing parent) as a link."""
    path = os.path.abspath(output_dir)
    probe = path
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if os.path.islink(probe):
        raise UnsafeArchiveError(
            f"archive destination {output_dir!r}: {probe!r} is a symbolic link or junction"
        )
    return os.path.join(os.path.realpath(probe), os.path.relpath(path, probe))


def _check_existing(root: str, entries: Sequence[Entry]) -> list[str]:
    """Refuse a symlink on any member's path; return the existing directories to enter."""
    checked: set[Parts] = set()
    existing_dirs: list[str] = [root] if os.path.isdir(root) else []
    for _index, parts, _is_dir, _mode in entries:
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            if prefix in checked:
                continue
            checked.add(prefix)
            path = os.path.join(root, *prefix)
            if os.path.islink(path) or _is_junction(path):
                raise unsafe_member("/".join(parts), f"{path!r} is an existing symlink or junction")
            if os.path.isdir(path):
                existing_dirs.append(path)
    return existing_dirs


def _is_junction(path: str) -> bool:
    isjunction: Callable[[str], bool] | None = getattr(os.path, "isjunction", None)
    return bool(isjunction(path)) if isjunction is not None else False


def _relax(dirs: Iterable[str]) -> dict[str, int]:
    """Give the user rwx on existing directories that lack it; return their old modes."""
    saved: dict[str, int] = {}
    for path in dirs:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & _USER_RWX != _USER_RWX:
            saved[path] = mode
            os.chmod(path, mode | _USER_RWX)
    return saved


def _write(path: str, data: IO[bytes], mode: int) -> None:
    """Write ``data`` to a temporary name next to ``path`` and rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=".dpdispatcher-extract-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data, out)
            os.fchmod(out.fileno(), (mode & 0o777) or 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _extract(
    output_dir: str, entries: list[Entry], open_member: Callable[[int], IO[bytes]]
) -> None:
    root = _checked_root(output_dir)
    existing = _check_existing(root, entries)
    saved = _relax(existing)
    dir_modes: dict[str, int] = {}
    try:
        os.makedirs(root, exist_ok=True)
        for index, parts, is_dir, mode in entries:
            path = os.path.join(root, *parts)
            if is_dir:
                os.makedirs(path, exist_ok=True)
                if mode & 0o777:
                    dir_modes[path] = mode & 0o777
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open_member(index) as data:
                _write(path, data, mode)
    finally:
        for path, mode in saved.items():
            os.chmod(path, mode)
    for path in sorted(dir_modes, key=lambda p: p.count(os.sep), reverse=True):
        os.chmod(path, dir_modes[path])


def _refuse_links(members: Iterable[Member]) -> None:
    for member in members:
        if member.kind not in (Kind.FILE, Kind.DIR):
            raise unsafe_member(member.name, "is a link or special file")


def safe_extract_tar(archive: tarfile.TarFile, output_dir: str) -> None:
    """Extract an open tar archive into ``output_dir``, or raise before writing anything.

    Parameters
    ----------
    archive : tarfile.TarFile
        An archive opened for reading.
    output_dir : str
        Destination directory (created if needed).

    Raises
    ------
    UnsafeArchiveError
        A member is a link or special file, escapes ``output_dir``, is not portable,
        collides with another member, or would be written through a symbolic link.
    """
    infos = archive.getmembers()
    _refuse_links(_tar_member(info) for info in infos)
    entries = _validate_manifest(
        (i, info.name, info.isdir(), info.mode) for i, info in enumerate(infos)
    )

    def open_member(index: int) -> IO[bytes]:
        data = archive.extractfile(infos[index])
        if data is None:  # pragma: no cover - regular files always have data
            raise unsafe_member(infos[index].name, "has no data")
        return data

    _extract(output_dir, entries, open_member)


def safe_extract_zip(archive: zipfile.ZipFile, output_dir: str) -> None:
    """Extract an open zip archive into ``output_dir`` with the rules of :func:`safe_extract_tar`.

    A member whose Unix mode marks a symbolic link or special file raises
    :class:`~dpdispatcher.errors.UnsafeArchiveError` like a tar link does.

    Parameters
    ----------
    archive : zipfile.ZipFile
        An archive opened for reading.
    output_dir : str
        Where the members go; created if needed.
    """
    infos = archive.infolist()
    members = [_zip_member(info, archive) for info in infos]
    _refuse_links(members)
    entries = _validate_manifest(
        (i, info.filename, members[i].kind is Kind.DIR, info.external_attr >> 16)
        for i, info in enumerate(infos)
    )
    _extract(output_dir, entries, lambda index: archive.open(infos[index]))
