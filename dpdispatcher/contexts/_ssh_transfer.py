"""Local side of SSH transfers: what to pack, and packing it as one tar stream.

No paramiko here: the stream is written to any ``send(bytes)`` callable, in chunks of
about a megabyte, optionally gzip-compressed on the fly.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dpdispatcher._walk import walk_tree
from dpdispatcher.contexts._ssh_scripts import (
    GZIP_LEVEL,
    SAMPLE_BYTES,
    SAMPLE_MAX_FILES,
    SAMPLE_MIN_SIZE,
    Sample,
)
from dpdispatcher.errors import MissingInputError

CHUNK = 1 << 20


@dataclass(frozen=True)
class LocalEntry:
    """One member of the upload: ``rel`` in the archive, ``path`` on this machine."""

    rel: str
    path: str
    kind: str  # "file", "dir" or "symlink" (a dangling link, kept as a link)
    size: int = 0


def _posix(rel: str) -> str:
    return os.path.normpath(rel).replace(os.sep, "/")


def collect(
    local_root: str, files: Iterable[str], dirs: Iterable[str] = (), *, follow: bool = True
) -> list[LocalEntry]:
    """Every entry to upload: the files (directories recursed), then ``dirs`` themselves.

    With ``follow`` symbolic links are followed (the remote gets the content; a link
    loop is not descended twice); a dangling link, or any link without ``follow``, is
    sent as a link.
    """
    out: dict[str, LocalEntry] = {}
    for rel in files:
        path = os.path.join(local_root, rel)
        if not follow and os.path.islink(path):
            out.setdefault(_posix(rel), LocalEntry(_posix(rel), path, "symlink"))
        elif os.path.isdir(path):
            _walk(path, _posix(rel), out, follow)
        elif os.path.exists(path):
            out.setdefault(
                _posix(rel), LocalEntry(_posix(rel), path, "file", os.stat(path).st_size)
            )
        elif os.path.lexists(path):
            out.setdefault(_posix(rel), LocalEntry(_posix(rel), path, "symlink"))
        else:
            raise MissingInputError(f"forward file {rel!r} not found in {local_root}")
    for rel in dirs:
        out.setdefault(_posix(rel), LocalEntry(_posix(rel), os.path.join(local_root, rel), "dir"))
    return list(out.values())


def _walk(top: str, rel_top: str, out: dict[str, LocalEntry], follow: bool) -> None:
    for dirpath, below, dirnames, filenames in walk_tree(top, follow=follow):
        rel_dir = _posix(os.path.join(rel_top, below))
        out.setdefault(rel_dir, LocalEntry(rel_dir, dirpath, "dir"))
        if not follow:  # links to directories are sent as links
            filenames = sorted(
                filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            )
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = f"{rel_dir}/{name}"
            if os.path.exists(path) and (follow or not os.path.islink(path)):
                out.setdefault(rel, LocalEntry(rel, path, "file", os.stat(path).st_size))
            else:
                out.setdefault(rel, LocalEntry(rel, path, "symlink"))


def sha256(path: str) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def unchanged(entries: Sequence[LocalEntry], remote: dict[str, str]) -> set[str]:
    """The regular files whose remote SHA-256 equals the local one."""
    return {
        e.rel
        for e in entries
        if e.kind == "file" and e.rel in remote and sha256(e.path) == remote[e.rel]
    }


def samples(entries: Sequence[LocalEntry]) -> list[Sample]:
    """Compress a slice of each of the largest files, to decide whether gzip pays."""
    big = sorted(
        (e for e in entries if e.kind == "file" and e.size > SAMPLE_MIN_SIZE),
        key=lambda e: e.size,
        reverse=True,
    )[:SAMPLE_MAX_FILES]
    out = []
    for entry in big:
        with open(entry.path, "rb") as fh:
            data = fh.read(SAMPLE_BYTES)
        out.append(Sample(entry.size, len(data), len(zlib.compress(data, GZIP_LEVEL))))
    return out


class ChunkWriter:
    """A file-like sink buffering writes into ~1 MiB chunks handed to ``send``.

    With ``compress`` the bytes are gzip-compressed (level :data:`GZIP_LEVEL`) first.
    """

    def __init__(self, send: Callable[[bytes], None], compress: bool) -> None:
        self._send = send
        self._buf = bytearray()
        self._zip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if compress else None
        self.sent = 0

    def write(self, data: bytes) -> int:
        """Buffer ``data``; flush a chunk when enough is buffered."""
        if self._zip is not None:
            self._buf += self._zip.compress(data)
        elif not self._buf and len(data) >= CHUNK:
            self.sent += len(data)
            self._send(bytes(data))  # a whole block: no copy into the buffer
            return len(data)
        else:
            self._buf += data
        if len(self._buf) >= CHUNK:
            self._flush()
        return len(data)

    def read(self, size: int, /) -> bytes:
        """Not readable (present for the file-object protocol tarfile checks)."""
        raise io.UnsupportedOperation("ChunkWriter is write-only")

    def tell(self) -> int:
        """Bytes handed to ``send`` so far."""
        return self.sent

    def seek(self, pos: int, /) -> int:
        """Not seekable."""
        raise io.UnsupportedOperation("ChunkWriter is a stream")

    def _flush(self) -> None:
        if self._buf:
            chunk = bytes(self._buf)
            self._buf.clear()
            self.sent += len(chunk)
            self._send(chunk)

    def close(self) -> None:
        """Finish the gzip stream and send what is left."""
        if self._zip is not None:
            self._buf += self._zip.flush()
            self._zip = None
        self._flush()


def _tarinfo(entry: LocalEntry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.rel)
    if entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(entry.path)
        info.mode = 0o777
        return info
    if entry.kind == "dir" and not os.path.isdir(entry.path):  # a task dir made remotely only
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        return info
    st = os.stat(entry.path)
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode)
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode |= 0o700
    else:
        info.size = st.st_size
    return info


def write_tar(entries: Sequence[LocalEntry], sink: ChunkWriter) -> None:
    """Pack ``entries`` (in order) as a tar stream into ``sink`` and close it.

    Headers come from :meth:`tarfile.TarInfo.tobuf` (POSIX/pax format); file contents
    are read in 1 MiB blocks and handed on without further copies.
    """
    for entry in entries:
        info = _tarinfo(entry)
        sink.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if not info.isreg():
            continue
        remaining = info.size
        with open(entry.path, "rb") as fh:
            while remaining > 0:
                block = fh.read(min(CHUNK, remaining))
                if not block:
                    raise MissingInputError(f"{entry.path} shrank while it was being sent")
                sink.write(block)
                remaining -= len(block)
        if info.size % tarfile.BLOCKSIZE:
            sink.write(bytes(tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE))
    sink.write(bytes(2 * tarfile.BLOCKSIZE))  # end-of-archive marker
    sink.close()


def tar_bytes(files: dict[str, str]) -> bytes:
    """A small in-memory tar of text files (name -> content), for batched writes."""
    chunks: list[bytes] = []
    sink = ChunkWriter(chunks.append, compress=False)
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(_posix(name))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    sink.close()
    return b"".join(chunks)
