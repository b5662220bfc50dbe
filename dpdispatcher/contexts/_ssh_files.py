"""File operations over one SSH session: uploads and downloads (each one tar stream), an
atomic write and a batched read.

Uploads and downloads are safe to repeat after a dropped connection: an upload resends
only files whose remote SHA-256 differs; a download extracts nothing until its whole
archive arrived.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import uuid
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from dpdispatcher import _files
from dpdispatcher._archive import safe_extract_tar
from dpdispatcher._script.quoting import sh
from dpdispatcher.contexts import _ssh_chunks
from dpdispatcher.contexts import _ssh_scripts as scripts
from dpdispatcher.contexts import _ssh_transfer as transfer
from dpdispatcher.contexts._ssh_channel import decode
from dpdispatcher.contexts._ssh_errors import SSHError
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import RemoteFileNotFoundError

if TYPE_CHECKING:
    from dpdispatcher.contexts._ssh_session import SSHSession


def write_file_once(session: SSHSession, path: str, data: bytes) -> None:
    """Write ``path`` atomically over SFTP: a temporary name, then ``posix_rename``
    (``mv -f``, which is rename(2), on a server without that extension)."""
    sftp = session.sftp
    directory = posixpath.dirname(path)
    tmp = posixpath.join(directory, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        fh = sftp.open(tmp, "wb")
    except FileNotFoundError:
        session.run_raw(scripts.mkdir_script(directory))
        fh = sftp.open(tmp, "wb")
    with fh:
        fh.write(data)
    try:
        sftp.posix_rename(tmp, path)
    except OSError:
        res = session.run_raw(f"mv -f -- {sh(tmp)} {sh(path)}")
        if res.exit_code != 0:
            raise SSHError(f"cannot write {path}: {decode(res.stderr).strip()}") from None


def read_files_once(session: SSHSession, root: str, fnames: Sequence[str]) -> dict[str, str]:
    """The existing regular files among ``fnames`` (relative to ``root``): one round trip
    bringing them back as a tar stream."""
    found: dict[str, str] = {}

    def consume(stream: Any) -> None:
        found.clear()
        data = stream.read()
        if not data:
            return
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                member = tar.extractfile(info)
                if member is not None:
                    found[posixpath.normpath(info.name)] = decode(member.read())

    session.run_raw(
        scripts.read_files_script(root), stdin=scripts.nul_list(fnames), consumer=consume
    )
    return {f: found[posixpath.normpath(f)] for f in fnames if posixpath.normpath(f) in found}


def upload_once(
    session: SSHSession,
    root: str,
    entries: Sequence[transfer.LocalEntry],
    *,
    create_remote_root: bool,
    tar_compress: bool,
) -> None:
    """Send ``entries`` not already identical in the job root ``root``: one tar stream.

    A first round trip checks ``remote_root`` and, if the job root exists (a resumed
    run), gets the SHA-256 of the files already there; unchanged ones are skipped.
    """
    regular = [e.rel for e in entries if e.kind == "file"]
    probe = session.run_raw(
        scripts.upload_probe(root, posixpath.dirname(root), create_remote_root),
        stdin=scripts.nul_list("./" + r for r in regular),
    )
    if probe.exit_code != 0:
        raise SSHError(decode(probe.stderr).strip() or f"cannot prepare {root}")
    exists, remote = scripts.parse_sha256sum(decode(probe.stdout))
    same = transfer.unchanged(entries, remote) if exists else set()
    todo = [e for e in entries if e.rel not in same]
    compress = tar_compress and scripts.should_compress(transfer.samples(todo))
    sent: list[int] = []

    def produce(send: Callable[[bytes], None]) -> None:
        sink = transfer.ChunkWriter(send, compress)
        transfer.write_tar(todo, sink)
        sent.append(sink.sent)

    res = session.run_raw(scripts.extract_script(root, compress), producer=produce)
    if res.exit_code != 0:
        raise SSHError(f"upload to {session.endpoint}:{root} failed: {decode(res.stderr).strip()}")
    dlog.info(
        "uploaded %d entries (%.1f MB%s) to %s; %d unchanged files skipped",
        len(todo),
        sum(sent) / 1e6,
        ", gzip" if compress else "",
        root,
        len(same),
    )


def download_once(
    session: SSHSession,
    root: str,
    local_root: str,
    requests: Sequence[_files.BackwardRequest],
    *,
    check_exists: bool,
    mark_failure: bool,
    tar_compress: bool,
    chunk_size: int = 0,
) -> None:
    """Fetch what ``requests`` match in ``root`` into ``local_root``: one tar stream.

    With ``chunk_size`` > 0 the archive is split remotely and fetched in parts of at
    most that many bytes (see :mod:`_ssh_chunks`).

    A first round trip expands the patterns remotely (and samples large files to
    decide on gzip). Every match is fetched and replaces the local path of the same
    name; a pattern matching nothing counts as downloaded when present locally.
    """
    res = session.run_raw(
        scripts.glob_script(root),
        stdin=scripts.encode_requests([(r.directory, r.pattern) for r in requests]),
    )
    matches, samples = scripts.parse_glob_output(res.stdout)
    names = _matched_names(requests, matches)
    missing: list[str] = []
    for index, req in enumerate(requests):
        if not matches.get(index):
            local_dir = os.path.join(local_root, req.directory)
            report = _files.unmatched(req, local_dir, check_exists, mark_failure)
            missing += [report] if report else []
    if names:
        _fetch(
            session,
            root,
            local_root,
            names,
            tar_compress and scripts.should_compress(samples),
            chunk_size,
        )
    if missing:
        raise RemoteFileNotFoundError(
            f"backward files not found in {root} on {session.endpoint.hostname}: "
            f"{', '.join(missing)} (set check_exists=True to tolerate missing files)"
        )


def _matched_names(
    requests: Sequence[_files.BackwardRequest], matches: dict[int, list[str]]
) -> list[str]:
    """The remote matches of every request (``matches`` by request index), relative to
    the job root, each once, in request order."""
    names: dict[str, None] = {}
    for index, req in enumerate(requests):
        for match in matches.get(index, []):
            names.setdefault(posixpath.normpath(posixpath.join(req.directory, match)))
    return list(names)


def _fetch(
    session: SSHSession,
    root: str,
    local_root: str,
    names: list[str],
    compress: bool,
    chunk_size: int,
) -> None:
    """Bring ``names`` (relative to ``root``) into ``local_root``: one stream, or parts."""

    def extract(stream: IO[bytes]) -> None:
        safe_extract_tar(stream, local_root)

    listed = ["./" + n for n in names]
    if chunk_size > 0:
        count = _ssh_chunks.fetch_parts(
            session, root, listed, compress=compress, chunk_size=chunk_size, extract=extract
        )
        dlog.info("downloaded %d paths from %s in %d parts", len(names), root, count)
        return
    res = session.run_raw(
        scripts.tar_script(root, compress), stdin=scripts.nul_list(listed), consumer=extract
    )
    if res.exit_code != 0:
        raise SSHError(
            f"download from {session.endpoint}:{root} failed: {decode(res.stderr).strip()}"
        )
    dlog.info("downloaded %d paths from %s%s", len(names), root, " (gzip)" if compress else "")
