"""Downloads split into parts (``remote_profile.archive_chunk_size``, as in 1.1.0).

The remote side writes the archive of the backward files through ``split -b N -d -a 6``
into ``.dpdispatcher-archive-<id>-NNNNNN`` parts in the job root and lists their SHA-256.
Each part is fetched on its own into a local staging directory and checked; a part
already received intact is not fetched again, so a transfer interrupted by a dropped
connection resumes where it stopped (``<id>`` depends only on what is fetched). Once
every part is here the parts are read back to back and extracted safely; then both
sides are tidied.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

from dpdispatcher._script.quoting import sh
from dpdispatcher.contexts import _ssh_scripts as scripts
from dpdispatcher.contexts._ssh_errors import SSHError

if TYPE_CHECKING:
    from dpdispatcher.contexts._ssh_session import SSHSession

PREFIX = ".dpdispatcher-archive-"


def archive_id(root: str, names: Sequence[str], compress: bool, chunk_size: int) -> str:
    """The same id for the same download, so a retry finds the parts already made."""
    digest = hashlib.sha1(repr((root, list(names), compress, chunk_size)).encode("utf-8"))
    return digest.hexdigest()[:16]


def split_script(root: str, compress: bool, chunk_size: int, prefix: str) -> str:
    """Archive the names on stdin into parts of ``chunk_size`` bytes (once), list them."""
    gzip = f" | gzip -{scripts.GZIP_LEVEL} -c" if compress else ""
    listing = sh(prefix + "list")
    return (
        f"set -o pipefail; cd {sh(root)} || exit; "
        f"if [ ! -e {listing} ]; then "
        f"rm -f -- {sh(prefix)}[0-9]*; "
        f"tar -cf - --null -T -{gzip} | split -b {int(chunk_size)} -d -a 6 - {sh(prefix)} "
        "|| exit; "
        f"sha256sum -- {sh(prefix)}[0-9]* > {listing}.tmp && mv -f {listing}.tmp {listing}; "
        f"fi; cat {listing}"
    )


def parse_listing(text: str) -> list[tuple[str, str]]:
    """``(sha256, part name)`` lines of ``sha256sum``, in part order."""
    parts = []
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            parts.append((digest.strip(), name.strip()))
    return sorted(parts, key=lambda p: p[1])


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Parts(io.RawIOBase):
    """The staged parts read back to back as one stream."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = list(paths)
        self._fh: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while True:
            if self._fh is None:
                if not self._paths:
                    return 0
                self._fh = open(self._paths.pop(0), "rb")  # noqa: SIM115 - closed below
            n = self._fh.readinto(buffer)
            if n:
                return n
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        super().close()


def fetch_parts(
    session: SSHSession,
    root: str,
    names: Sequence[str],
    *,
    compress: bool,
    chunk_size: int,
    extract: Callable[[IO[bytes]], None],
) -> int:
    """Fetch ``names`` from ``root`` as parts of at most ``chunk_size`` bytes; extract.

    Returns the number of parts. Raises :class:`SSHError` when the remote cannot make
    the parts or a part arrives damaged.
    """
    ident = archive_id(root, names, compress, chunk_size)
    prefix = PREFIX + ident + "-"
    made = session.run_raw(
        split_script(root, compress, chunk_size, prefix), stdin=scripts.nul_list(names)
    )
    if made.exit_code != 0:
        raise SSHError(
            f"cannot split the download archive in {root} (is `split` installed?): "
            + made.stderr.decode("utf-8", "replace").strip()
        )
    parts = parse_listing(made.stdout.decode("utf-8", "replace"))
    staging = os.path.join(tempfile.gettempdir(), f"dpdispatcher-download-{ident}")
    os.makedirs(staging, exist_ok=True)
    paths = [
        _staged(staging, digest, name) or _fetch_part(session, root, staging, digest, name)
        for digest, name in parts
    ]
    with io.BufferedReader(_Parts(paths)) as stream:
        extract(stream)
    session.run_raw(f"cd {sh(root)} && rm -f -- {sh(prefix)}[0-9]* {sh(prefix + 'list')}")
    shutil.rmtree(staging, ignore_errors=True)
    return len(parts)


def _staged(staging: str, digest: str, name: str) -> str | None:
    """The local copy of a part received intact before a dropped connection, if any."""
    path = os.path.join(staging, name)
    return path if os.path.exists(path) and _sha256(path) == digest else None


def _fetch_part(session: SSHSession, root: str, staging: str, digest: str, name: str) -> str:
    path = os.path.join(staging, name)
    tmp = path + ".partial"
    with open(tmp, "wb") as out:
        res = session.run_raw(
            f"cat -- {sh(root + '/' + name)}",
            consumer=lambda stream: shutil.copyfileobj(stream, out, 1 << 20),
        )
    if res.exit_code != 0 or _sha256(tmp) != digest:
        os.remove(tmp)
        raise SSHError(f"part {name} of the download from {root} arrived damaged")
    os.replace(tmp, path)
    return path
