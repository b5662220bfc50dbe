"""What an SSH upload packs (local side, no server)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from dpdispatcher.contexts import _ssh_transfer as transfer
from dpdispatcher.errors import MissingInputError


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "t1/sub").mkdir(parents=True)
    (root / "t1/in.txt").write_text("in")
    (root / "t1/sub/deep.txt").write_text("deep")
    (root / "data.bin").write_bytes(b"\1" * 100)
    (root / "t1/link.bin").symlink_to("../data.bin")
    (root / "t1/dangling").symlink_to("nowhere")
    (root / "t1/sub/loop").symlink_to("..")  # a loop back to t1
    return root


def _names(entries: list[transfer.LocalEntry]) -> dict[str, str]:
    return {e.rel: e.kind for e in entries}


def test_collect_follows_links_once(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    entries = transfer.collect(str(root), ["t1", "data.bin", "data.bin"], ["t1", "t2"])
    names = _names(entries)
    assert names["t1/link.bin"] == "file" and names["t1/dangling"] == "symlink"
    assert names["t2"] == "dir" and names["data.bin"] == "file"
    assert not any(n.startswith("t1/sub/loop/sub") for n in names)  # no endless descent
    assert len(entries) == len(names)  # no duplicates


def test_collect_without_following(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    names = _names(transfer.collect(str(root), ["t1"], follow=False))
    assert names["t1/link.bin"] == "symlink" and names["t1/sub/loop"] == "symlink"


def test_collect_missing(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError):
        transfer.collect(str(tmp_path), ["absent"])


def test_write_tar_is_a_valid_archive(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    entries = transfer.collect(str(root), ["t1", "data.bin"], ["t9"])
    for compress in (False, True):
        chunks: list[bytes] = []
        sink = transfer.ChunkWriter(chunks.append, compress)
        transfer.write_tar(entries, sink)
        data = b"".join(chunks)
        assert sink.sent == len(data)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            members = {m.name: m for m in tar}
            assert members["t1/link.bin"].isfile()
            assert tar.extractfile(members["t1/link.bin"]).read() == b"\1" * 100  # type: ignore[union-attr]
            assert members["t1/dangling"].issym() and members["t9"].isdir()


def test_unchanged_and_samples(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "big.bin").write_bytes(os.urandom(2 << 20))
    entries = transfer.collect(str(root), ["t1", "data.bin", "big.bin"])
    digest = hashlib.sha256(b"\1" * 100).hexdigest()
    same = transfer.unchanged(entries, {"data.bin": digest, "t1/in.txt": "0" * 64})
    assert same == {"data.bin"}
    samples = transfer.samples(entries)
    assert len(samples) == 1 and samples[0].size == 2 << 20


def test_tar_bytes(tmp_path: Path) -> None:
    data = transfer.tar_bytes({"a": "x", "d/b": "é"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert {m.name: tar.extractfile(m).read() for m in tar} == {  # type: ignore[union-attr]
            "a": b"x",
            "d/b": "é".encode(),
        }
