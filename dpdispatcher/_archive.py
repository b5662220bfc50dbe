"""Safe extraction of archives received from a remote (tar now, zip for the cloud).

An archive coming back from a cluster is data from another machine: each member is
checked by :mod:`dpdispatcher._archive_check` (names, links, device files) before it is
written.

Extraction goes to a fresh staging directory inside the target first. An unsafe member
is skipped with a WARNING naming it and why; the rest of the archive is extracted. Once
the whole archive has arrived, each member replaces the entry of the same name in the
target (:func:`dpdispatcher._replace.bring_back`): a result always wins over a stale
local file. Directories that only hold members (implicit parents) are merged.

Examples
--------
>>> import io, tarfile, tempfile
>>> buf = io.BytesIO()
>>> with tarfile.open(fileobj=buf, mode="w") as tar:
...     for name in ("../evil", "good"):
...         info = tarfile.TarInfo(name); info.size = 0
...         tar.addfile(info, io.BytesIO(b""))
>>> _ = buf.seek(0)
>>> safe_extract_tar(buf, tempfile.mkdtemp())   # logs a WARNING about '../evil'
['good']
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from typing import IO, Any, Literal, Protocol

from dpdispatcher._archive_check import ArchiveChecker, Kind, Member, Parts, member_parts
from dpdispatcher._replace import bring_back
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import UnsafeArchiveError

__all__ = ["safe_extract_tar", "safe_extract_zip"]

_COPY_BUFSIZE = 1 << 20
#: read size of tar streams: tarfile copies its whole buffer at each small read, so a
#: large one makes archives of many small files slow
_STREAM_BUFSIZE = 1 << 16


class Readable(Protocol):
    """What member data is read from."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes."""
        ...


# -- writing into a staging directory --------------------------------------------------
def _path(root: str, parts: Parts) -> str:
    return os.path.join(root, *parts)


def _write_file(root: str, parts: Parts, src: Readable | None, mode: int) -> None:
    path = _path(root, parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        if src is not None:
            shutil.copyfileobj(src, out, _COPY_BUFSIZE)
    os.chmod(path, (mode & 0o777) | 0o600)


def _make_entry(
    staging: str, parts: Parts, member: Member, mode: int, data: Readable | None
) -> None:
    if not parts:
        return
    path = _path(staging, parts)
    if member.kind is Kind.DIR:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, (mode & 0o777) | 0o700)
    elif member.kind is Kind.FILE:
        _write_file(staging, parts, data, mode)
    elif member.kind is Kind.SYMLINK:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(member.linkname, path)
    else:  # hard link to an earlier regular file of the archive
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.link(_path(staging, member_parts(member.linkname)), path)


def _skip(err: UnsafeArchiveError) -> None:
    dlog.warning("%s; skipped it (the rest of the archive is extracted)", err)


def _drop_unsafe_links(checker: ArchiveChecker, staging: str) -> None:
    """Remove staged links found to escape once the whole archive was read."""
    for parts, err in checker.unsafe_links():
        _skip(err)
        os.unlink(_path(staging, parts))
        del checker.kinds[parts]


def _merge(staging: str, dest: str, members: set[Parts], rel: Parts = ()) -> list[str]:
    """Move staged entries into ``dest``, each member replacing what is there.

    A directory that is not itself a member (the parent of members) is merged into an
    existing directory of the same name.
    """
    placed: list[str] = []
    for entry in sorted(os.listdir(_path(staging, rel))):
        parts = (*rel, entry)
        src, dst = _path(staging, parts), _path(dest, parts)
        if parts not in members and os.path.isdir(dst):
            placed.extend(_merge(staging, dest, members, parts))
            continue
        bring_back(src, dst)
        placed.append(os.path.join(*parts))
    return placed


class _Staging:
    """A fresh directory inside ``dest`` that is removed whatever happens."""

    def __init__(self, dest: str) -> None:
        os.makedirs(dest, exist_ok=True)
        self.dest = dest
        self.path = tempfile.mkdtemp(prefix=".dpdispatcher-extract-", dir=dest)

    def __enter__(self) -> _Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# -- tar -----------------------------------------------------------------------------
def _tar_member(info: tarfile.TarInfo) -> Member:
    if info.isdir():
        return Member(info.name, Kind.DIR)
    if info.issym():
        return Member(info.name, Kind.SYMLINK, info.linkname)
    if info.islnk():
        return Member(info.name, Kind.HARDLINK, info.linkname)
    if info.isreg():
        return Member(info.name, Kind.FILE)
    return Member(info.name, Kind.OTHER)


_TAR_MODES: dict[str, Literal["r|*", "r|", "r|gz"]] = {"*": "r|*", "": "r|", "gz": "r|gz"}


class _DirectReader:
    """Reads a member's data straight from the tar stream (no per-member buffering)."""

    def __init__(self, stream: Any, size: int) -> None:
        self._stream = stream
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes of the member (all that is left when negative)."""
        n = self._left if size < 0 else min(size, self._left)
        if n <= 0:
            return b""
        data: bytes = self._stream.read(n)
        if len(data) < n:
            raise tarfile.ReadError("unexpected end of data")
        self._left -= n
        return data


def _member_data(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Readable | None:
    stream = tar.fileobj
    if not info.issparse() and stream is not None and stream.tell() == info.offset_data:
        return _DirectReader(stream, info.size)
    return tar.extractfile(info)


def safe_extract_tar(fileobj: IO[bytes], dest: str, *, compression: str = "*") -> list[str]:
    """Extract a tar stream into ``dest``, skipping unsafe members with a warning.

    Parameters
    ----------
    fileobj : binary file object
        Read sequentially (a socket or channel works; nothing is seeked).
    dest : str
        Target directory (created if needed).
    compression : str
        ``"*"`` detects gzip/bz2/xz, ``""`` reads a plain tar, ``"gz"`` forces gzip.

    Returns
    -------
    list of str
        Top-most paths (relative to ``dest``) that were placed, each replacing the
        entry of the same name in ``dest``.

    Raises
    ------
    tarfile.TarError
        The stream is not a (complete) tar archive; nothing is placed then.

    Notes
    -----
    A member that is absolute, climbs with ``..``, is a link leaving ``dest`` or
    passing through another link, or is a device/FIFO is skipped and logged at
    WARNING with its name.
    """
    mode = _TAR_MODES[compression]
    checker = ArchiveChecker()
    with _Staging(dest) as staging:
        with tarfile.open(fileobj=fileobj, mode=mode, bufsize=_STREAM_BUFSIZE) as tar:
            for info in tar:
                member = _tar_member(info)
                try:
                    parts = checker.check(member)
                except UnsafeArchiveError as err:
                    _skip(err)
                    continue
                data = _member_data(tar, info) if member.kind is Kind.FILE else None
                _make_entry(staging.path, parts, member, info.mode, data)
        _drop_unsafe_links(checker, staging.path)
        return _merge(staging.path, dest, set(checker.kinds))


# -- zip -----------------------------------------------------------------------------
def _zip_member(info: zipfile.ZipInfo, archive: zipfile.ZipFile) -> Member:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return Member(info.filename, Kind.SYMLINK, archive.read(info).decode("utf-8"))
    if info.is_dir() or stat.S_ISDIR(mode):
        return Member(info.filename, Kind.DIR)
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # no type bits (writestr, MS-DOS): a file
        return Member(info.filename, Kind.OTHER)
    return Member(info.filename, Kind.FILE)


def safe_extract_zip(path: str, dest: str) -> list[str]:
    """Extract a zip archive into ``dest`` with the rules of :func:`safe_extract_tar`."""
    checker = ArchiveChecker()
    with zipfile.ZipFile(path) as archive, _Staging(dest) as staging:
        for info in archive.infolist():
            member = _zip_member(info, archive)
            try:
                parts = checker.check(member)
            except UnsafeArchiveError as err:
                _skip(err)
                continue
            mode = (info.external_attr >> 16) or 0o644
            if member.kind is Kind.FILE:
                with archive.open(info) as data:
                    _make_entry(staging.path, parts, member, mode, data)
            else:
                _make_entry(staging.path, parts, member, mode, None)
        _drop_unsafe_links(checker, staging.path)
        return _merge(staging.path, dest, set(checker.kinds))
