"""The all-or-nothing archive API of 1.1.0 (``dpdispatcher.utils.archive``).

Expected behaviour: the original 1.1.0's own tests (tests/test_archive.py of its sdist),
which refuse a whole archive before writing when one member is unsafe, in contrast with
the transfers' tolerant extraction (tests/unit/test_archive.py).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile

import pytest

from dpdispatcher import _archive
from dpdispatcher.errors import UnsafeArchiveError
from dpdispatcher.utils.archive import safe_extract_tar, safe_extract_zip


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("bad", ["../x", "a/NUL.txt", "r.txt:ads", "C:x", "x\\y"])
def test_one_unsafe_member_refuses_the_whole_tar(tmp_path, bad):
    _tar(tmp_path / "a.tar", [("good.txt", b"g"), (bad, b"b")])
    with tarfile.open(tmp_path / "a.tar") as tar, pytest.raises(UnsafeArchiveError):
        safe_extract_tar(tar, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_tolerant_transfer_extraction_still_keeps_the_safe_members(tmp_path):
    _tar(tmp_path / "a.tar", [("good.txt", b"g"), ("../x", b"b")])
    with open(tmp_path / "a.tar", "rb") as f:
        assert _archive.safe_extract_tar(f, str(tmp_path / "out")) == ["good.txt"]


def test_symlink_member_and_symlinked_destination_are_refused(tmp_path):
    with tarfile.open(tmp_path / "l.tar", "w") as tar:
        link = tarfile.TarInfo("inside")
        link.type, link.linkname = tarfile.SYMTYPE, "target"
        tar.addfile(link)
    refused = pytest.raises(UnsafeArchiveError, match="link or special file")
    with tarfile.open(tmp_path / "l.tar") as tar, refused:
        safe_extract_tar(tar, str(tmp_path / "out"))
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "dest")
    _tar(tmp_path / "a.tar", [("r.txt", b"r")])
    with tarfile.open(tmp_path / "a.tar") as tar, pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract_tar(tar, str(tmp_path / "dest"))
    assert os.listdir(tmp_path / "elsewhere") == []


def test_zip_replaces_a_hard_link_and_restores_read_only_directories(tmp_path):
    out = tmp_path / "out"
    (out / "ro").mkdir(parents=True)
    (tmp_path / "outside").write_bytes(b"keep")
    os.link(tmp_path / "outside", out / "ro" / "r.txt")
    os.chmod(out / "ro", 0o500)
    try:
        with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
            z.writestr("ro/r.txt", b"new")
        with zipfile.ZipFile(tmp_path / "a.zip") as z:
            safe_extract_zip(z, str(out))
        assert stat.S_IMODE(os.stat(out / "ro").st_mode) == 0o500
    finally:
        os.chmod(out / "ro", 0o700)
    assert (out / "ro" / "r.txt").read_bytes() == b"new"
    assert (tmp_path / "outside").read_bytes() == b"keep"
