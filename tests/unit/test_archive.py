"""Safe extraction of archives from a remote: a hostile member is skipped with a warning
naming it, the rest is extracted, and each member replaces the local entry of its name."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from dpdispatcher._archive import safe_extract_tar, safe_extract_zip
from dpdispatcher._archive_check import Kind, Member, check_members, member_parts
from dpdispatcher.errors import ContextError, UnsafeArchiveError


# -- building archives ---------------------------------------------------------------
def _tar(*members: tuple[str, str, str | bytes], gz: bool = False) -> io.BytesIO:
    """Members as (kind, name, data-or-linkname); kinds: file dir sym link fifo chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            data = b""
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
            tar.addfile(info, io.BytesIO(data) if data else None)
    buf.seek(0)
    return buf


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- names ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../x", "a/../../x", "a/..", "C:/x", "a\\..\\x", "a\0b"]
)
def test_member_name_refused(name: str) -> None:
    with pytest.raises(UnsafeArchiveError):
        member_parts(name)


@pytest.mark.parametrize(
    ("name", "parts"), [("./a//b/", ("a", "b")), ("a", ("a",)), (".", ()), ("a/./b", ("a", "b"))]
)
def test_member_name_normalised(name: str, parts: tuple[str, ...]) -> None:
    assert member_parts(name) == parts


def test_unsafe_archive_error_is_a_context_error() -> None:
    assert issubclass(UnsafeArchiveError, ContextError)


# -- pure whole-archive checks (shared with zip) ---------------------------------------
@pytest.mark.parametrize(
    "members",
    [
        [Member("l", Kind.SYMLINK, "/etc")],
        [Member("l", Kind.SYMLINK, "..")],
        [Member("a/l", Kind.SYMLINK, "../../x")],
        # a link through a link: "a/s" -> "..", then "a/l" -> "s/../x" leaves the root
        [Member("a/s", Kind.SYMLINK, ".."), Member("a/l", Kind.SYMLINK, "s/../x")],
        # the same with the inner link arriving later
        [Member("a/l", Kind.SYMLINK, "s/../x"), Member("a/s", Kind.SYMLINK, "..")],
        # writing through a link member
        [Member("d", Kind.SYMLINK, "sub"), Member("d/x", Kind.FILE)],
        [Member("l", Kind.SYMLINK, "l2"), Member("l2", Kind.SYMLINK, "l")],  # loop
        [Member("h", Kind.HARDLINK, "/etc/passwd")],
        [Member("h", Kind.HARDLINK, "../x")],
        [Member("h", Kind.HARDLINK, "not-in-archive")],
        [Member("f", Kind.FILE), Member("f/x", Kind.FILE)],
        [Member("f", Kind.FILE), Member("f", Kind.SYMLINK, "g")],
        [Member("dev", Kind.OTHER)],
        [Member("", Kind.FILE)],
    ],
)
def test_check_members_refuses(members: list[Member]) -> None:
    with pytest.raises(UnsafeArchiveError):
        check_members(members)


def test_check_members_accepts_inner_links() -> None:
    members = [
        Member("a", Kind.DIR),
        Member("a/f", Kind.FILE),
        Member("a/l", Kind.SYMLINK, "f"),
        Member("b", Kind.SYMLINK, "a/../a/f"),
        Member("c", Kind.SYMLINK, "."),
        Member("h", Kind.HARDLINK, "a/f"),
        Member("a/f", Kind.FILE),
    ]  # a duplicate regular file: the later one wins
    assert len(check_members(members)) == len(members)


# -- tar -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        ("file", "/abs/evil", "x"),
        ("file", "../evil", "x"),
        ("file", "ok/../../evil", "x"),
        ("sym", "link", "/etc/passwd"),
        ("sym", "link", "../../outside"),
        ("link", "hard", "/etc/passwd"),
        ("fifo", "pipe", ""),
        ("chr", "dev", ""),
    ],
)
def test_tar_one_bad_member_is_skipped_with_a_warning_naming_it(
    tmp_path: Path, bad: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    dest = tmp_path / "dest"
    archive = _tar(
        ("file", "good1", "1"),
        ("dir", "d", ""),
        ("file", "d/good2", "2"),
        bad,
        ("file", "good3", "3"),
    )
    with caplog.at_level("WARNING", logger="dpdispatcher"):
        placed = safe_extract_tar(archive, str(dest))
    assert sorted(placed) == ["d", "good1", "good3"]
    assert _tree(dest) == ["d", "d/good2", "good1", "good3"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and repr(bad[1]) in warnings[0] and "skipped" in warnings[0]
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


def test_absolute_symlink_member_skipped_rest_extracted(tmp_path: Path) -> None:
    """B8: one link to a shared absolute path must not refuse the whole download."""
    archive = _tar(
        ("dir", "t1", ""),
        ("file", "t1/out", "r1"),
        ("sym", "t2/potential.pb", "/shared/models/graph.pb"),
        ("file", "t2/out", "r2"),
    )
    safe_extract_tar(archive, str(tmp_path / "dest"))
    assert _tree(tmp_path / "dest") == ["t1", "t1/out", "t2", "t2/out"]


def test_tar_symlink_then_write_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _tar(("sym", "esc", str(outside)), ("file", "esc/pwned", "x"), ("file", "ok", "1"))
    safe_extract_tar(archive, str(tmp_path / "dest"))
    assert list(outside.iterdir()) == []
    assert _tree(tmp_path / "dest") == ["esc", "esc/pwned", "ok"]  # a plain directory now
    assert not (tmp_path / "dest/esc").is_symlink()


def test_tar_link_chain_escape_drops_the_escaping_link(tmp_path: Path) -> None:
    archive = _tar(("dir", "a", ""), ("sym", "a/s", ".."), ("sym", "a/l", "s/../secret"))
    safe_extract_tar(archive, str(tmp_path / "dest"))
    assert _tree(tmp_path / "dest") == ["a", "a/s"]  # a/s stays inside; a/l would leave


def test_tar_good_archive(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    archive = _tar(
        ("dir", "./t1", ""),
        ("file", "./t1/out.txt", "result"),
        ("sym", "t1/link", "out.txt"),
        ("link", "t1/hard", "./t1/out.txt"),
        ("file", "top.bin", b"\0\1\2"),
        gz=True,
    )
    placed = safe_extract_tar(archive, str(dest))
    assert sorted(placed) == ["t1", "top.bin"]
    assert (dest / "t1/out.txt").read_text() == "result"
    assert os.readlink(dest / "t1/link") == "out.txt"
    assert (dest / "t1/hard").read_text() == "result"
    assert (dest / "top.bin").read_bytes() == b"\0\1\2"
    assert not [p for p in dest.iterdir() if p.name.startswith(".dpdispatcher-extract")]


def test_tar_members_replace_local_entries(tmp_path: Path) -> None:
    """B1: a result replaces the stale local file; an implicit parent is merged."""
    dest = tmp_path / "dest"
    (dest / "t1").mkdir(parents=True)
    (dest / "t1/out.txt").write_text("local copy")
    (dest / "t1/input").write_text("kept")
    archive = _tar(("file", "t1/out.txt", "remote copy"), ("file", "t1/new.txt", "new"))
    placed = safe_extract_tar(archive, str(dest))
    assert (dest / "t1/out.txt").read_text() == "remote copy"
    assert (dest / "t1/new.txt").read_text() == "new"
    assert (dest / "t1/input").read_text() == "kept"
    assert sorted(placed) == [os.path.join("t1", "new.txt"), os.path.join("t1", "out.txt")]
    assert _tree(dest) == ["t1", "t1/input", "t1/new.txt", "t1/out.txt"]


def test_tar_directory_member_replaces_local_directory(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "t1/res").mkdir(parents=True)
    (dest / "t1/res/stale").write_text("old")
    archive = _tar(("dir", "t1/res", ""), ("file", "t1/res/a", "new"))
    safe_extract_tar(archive, str(dest))
    assert _tree(dest) == ["t1", "t1/res", "t1/res/a"]


def test_tar_truncated_raises_tar_error_and_leaves_nothing(tmp_path: Path) -> None:
    data = _tar(("file", "a", "x" * 5000), ("file", "b", "y" * 5000)).getvalue()
    with pytest.raises(tarfile.TarError):
        safe_extract_tar(io.BytesIO(data[:3000]), str(tmp_path / "dest"))
    assert _tree(tmp_path / "dest") == []


def test_tar_modes_are_kept_but_owner_can_write(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("run.sh")
        info.size, info.mode = 2, 0o555
        tar.addfile(info, io.BytesIO(b"hi"))
    buf.seek(0)
    safe_extract_tar(buf, str(tmp_path))
    mode = stat.S_IMODE(os.stat(tmp_path / "run.sh").st_mode)
    assert mode & 0o111 == 0o111 and mode & 0o200


def test_tar_large_member_is_streamed(tmp_path: Path) -> None:
    big = os.urandom(3 << 20)
    archive = _tar(("file", "small", "s"), ("file", "big.bin", big), ("file", "after", "a"))
    safe_extract_tar(archive, str(tmp_path))
    assert (tmp_path / "big.bin").read_bytes() == big
    assert (tmp_path / "after").read_text() == "a"


# -- zip -----------------------------------------------------------------------------
def _zip(path: Path, entries: list[tuple[str, bytes, int]]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return str(path)


def test_zip_good(tmp_path: Path) -> None:
    path = _zip(
        tmp_path / "a.zip",
        [("d/f.txt", b"hello", stat.S_IFREG | 0o644), ("d/l", b"f.txt", stat.S_IFLNK | 0o777)],
    )
    safe_extract_zip(path, str(tmp_path / "out"))
    assert (tmp_path / "out/d/f.txt").read_text() == "hello"
    assert os.readlink(tmp_path / "out/d/l") == "f.txt"


@pytest.mark.parametrize(
    "entry",
    [
        ("../evil", b"x", stat.S_IFREG | 0o644),
        ("/abs", b"x", stat.S_IFREG | 0o644),
        ("l", b"/etc", stat.S_IFLNK | 0o777),
        ("l", b"../..", stat.S_IFLNK | 0o777),
    ],
)
def test_zip_bad_member_skipped(
    tmp_path: Path, entry: tuple[str, bytes, int], caplog: pytest.LogCaptureFixture
) -> None:
    path = _zip(tmp_path / "a.zip", [("good", b"1", stat.S_IFREG | 0o644), entry])
    with caplog.at_level("WARNING", logger="dpdispatcher"):
        safe_extract_zip(path, str(tmp_path / "out"))
    assert _tree(tmp_path / "out") == ["good"]
    assert any(repr(entry[0]) in r.getMessage() for r in caplog.records)
