"""``remote_profile.archive_chunk_size`` against the real sshd of ``tests/infra/up.sh``.

As 1.1.0 documents it: a positive value splits the download archive remotely (``split``)
and bounds each transfer to that many bytes. Here each part is fetched on its own and
checked; a connection dropped (the serving sshd SIGKILLed) in the middle resumes with the
parts not yet received, and the parts are removed on both sides afterwards.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher.contexts import _ssh_chunks
from dpdispatcher.errors import ConfigurationError
from tests.integration.test_ssh_real import (
    _fast_reconnect,
    check_results,
    counters,  # noqa: F401 - fixture
    drop_connection,
    make_machine,
    make_submission,
    remote,  # noqa: F401 - fixture
)
from tests.integration.test_ssh_real import _sshd as _sshd

pytestmark = pytest.mark.ssh

BIG = "mkdir -p res; head -c 300000 /dev/urandom > res/big.bin; sha256sum res/big.bin > res/sum; "
CHUNK = 64 * 1024


def fetched_parts(monkeypatch: pytest.MonkeyPatch, drop_at: int | None = None) -> list[str]:
    """Record each part fetched; with ``drop_at``, drop the connection at that fetch once."""
    seen: list[str] = []
    original = _ssh_chunks._fetch_part

    def spy(session: Any, root: str, staging: str, digest: str, name: str) -> str:
        seen.append(name)
        if drop_at is not None and len(seen) == drop_at:
            assert drop_connection(session) >= 1
            deadline = time.monotonic() + 10
            while session.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)  # let paramiko notice, so that this very fetch breaks
        return original(session, root, staging, digest, name)

    monkeypatch.setattr(_ssh_chunks, "_fetch_part", spy)
    return seen


def check_big(tmp_path: Path, n: int) -> None:
    for i in range(n):
        res = tmp_path / "local" / "work" / f"t{i}" / "res"
        digest = hashlib.sha256((res / "big.bin").read_bytes()).hexdigest()
        assert (res / "sum").read_text().split()[0] == digest


def test_download_in_parts_bounded_by_archive_chunk_size(
    tmp_path: Path,
    remote: Path,  # noqa: F811
    counters: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine = make_machine(tmp_path, remote, archive_chunk_size=CHUNK)
    sub = make_submission(tmp_path, machine, counters, command=BIG)
    for task in sub.belonging_tasks:
        task.backward_files.append("res")
    parts = fetched_parts(monkeypatch)
    sub.run_submission(check_interval=1, clean=False)
    # 4 x 300 kB of random data do not compress: at least 1.2 MB / 64 kB parts
    assert len(parts) >= 4 * 300000 // CHUNK
    assert len(set(parts)) == len(parts)
    assert all(p.startswith(".dpdispatcher-archive-") for p in parts)
    check_results(tmp_path, 4, counters)
    check_big(tmp_path, 4)
    job_root = remote / sub.submission_hash
    assert not list(job_root.glob(".dpdispatcher-archive-*"))  # tidied remotely


def test_a_dropped_connection_resumes_with_the_missing_parts(
    tmp_path: Path,
    remote: Path,  # noqa: F811
    counters: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine = make_machine(tmp_path, remote, archive_chunk_size=CHUNK)
    ctx = _fast_reconnect(machine)
    sub = make_submission(tmp_path, machine, counters, command=BIG)
    for task in sub.belonging_tasks:
        task.backward_files.append("res")
    parts = fetched_parts(monkeypatch, drop_at=5)
    sub.run_submission(check_interval=1)
    assert ctx.ssh_session.connections >= 2
    # the 4 parts received before the drop were not fetched again; at most the 5th, whose
    # fetch met the broken connection, was fetched once more (when the session did not
    # reopen the connection by itself first)
    assert all(parts.count(p) == 1 for p in parts[:4])
    assert len(parts) - len(set(parts)) <= 1 and all(parts.count(p) <= 2 for p in parts)
    check_results(tmp_path, 4, counters)
    check_big(tmp_path, 4)


def test_archive_chunk_size_zero_is_one_stream_and_leaves_the_hash_alone(
    tmp_path: Path,
    remote: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = make_machine(tmp_path, remote)
    zero = make_machine(tmp_path, remote, archive_chunk_size=0)
    assert plain.serialize() == zero.serialize()
    sub = make_submission(tmp_path, zero, None)
    parts = fetched_parts(monkeypatch)
    sub.run_submission(check_interval=1)
    assert parts == []
    check_results(tmp_path, 4)


@pytest.mark.parametrize("bad", [-1, "64k", 1.5])
def test_a_bad_archive_chunk_size_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="archive_chunk_size"):
        make_machine(tmp_path, tmp_path / "r", archive_chunk_size=bad)
