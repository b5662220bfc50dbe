"""``dpdispatcher.file_manager`` beyond the original 1.1.0 tests/test_file_manager.py.

Expected values come from outside this package: Python's own :mod:`glob` and
:mod:`tarfile`, and the behaviour of the original 1.1.0 observed on the same inputs
(noted at each test).
"""

from __future__ import annotations

import glob
import io
import os
import tarfile
import zipfile

import pytest

from dpdispatcher import Resources, Submission, Task
from dpdispatcher.errors import UnsafeArchiveError
from dpdispatcher.file_manager import (
    ArchiveBuilder,
    FileTransfer,
    ManifestBuilder,
    MissingEntry,
    PathPolicy,
    PathResolver,
    RemoteManifestBuilder,
    SafeArchiveExtractor,
    SubmissionStagingPlan,
)


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_unsafe_archive_error_is_a_value_error():
    # 1.1.0: UnsafeArchiveError.__mro__ == (UnsafeArchiveError, ValueError, Exception, ...)
    assert issubclass(UnsafeArchiveError, ValueError)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_with_a_link_member_is_refused_before_writing(tmp_path, kind):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tar:
        data = tarfile.TarInfo("a.txt")
        data.size = 1
        tar.addfile(data, io.BytesIO(b"a"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = kind, "a.txt"
        tar.addfile(link)
    with pytest.raises(ValueError):
        SafeArchiveExtractor(tmp_path / "out").extract_tar(archive)
    assert not (tmp_path / "out" / "a.txt").exists()


def test_extractors_return_the_file_names(tmp_path):
    # 1.1.0 returns the normalised names of the file members, directories left out
    _touch(tmp_path / "src", "d/f.txt", "x.txt")
    with tarfile.open(tmp_path / "t.tar", "w") as tar:
        tar.add(tmp_path / "src" / "d", "d")
        tar.add(tmp_path / "src" / "x.txt", "./x.txt")
    assert SafeArchiveExtractor(tmp_path / "t").extract_tar(tmp_path / "t.tar") == {
        "d/f.txt",
        "x.txt",
    }
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("d/", "")
        zf.writestr("d/f.txt", "f")
    assert SafeArchiveExtractor(tmp_path / "z").extract_zip(tmp_path / "z.zip") == {"d/f.txt"}
    assert (tmp_path / "z" / "d" / "f.txt").read_text() == "f"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a/./b/", "a/b"), ("a\\b", "a/b"), ("", "."), ("./.", "."), ("a//", "a")],
)
def test_normalize_relative_matches_1_1_0(value, expected):
    assert PathPolicy.normalize_relative(value) == expected


# 1.1.0 reads any "?:" prefix as a drive ("1:rel" refused, observed with 1.1.0 installed)
@pytest.mark.parametrize("value", ["C:rel", "1:rel", "\\\\srv\\x", "a/..", "a/b/../../.."])
def test_normalize_relative_refuses_like_1_1_0(value):
    with pytest.raises(ValueError):
        PathPolicy.normalize_relative(value)


PATTERNS = ["*.out", "**/*.out", "**", "sub/*", "*/b.out", ".*", "sub/.*", "?.out", "[ab].out"]
TREE = ["a.out", "b.out", ".h.out", "sub/b.out", "sub/.c.out", "sub/deep/c.out", ".hid/d.out"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_local_expansion_is_python_glob(tmp_path, pattern):
    root = tmp_path / "root[1]"
    _touch(root, *TREE)
    expected = sorted(root / p for p in glob.glob(pattern, root_dir=root, recursive=True))
    assert PathResolver(root).expand(pattern) == expected


@pytest.mark.parametrize("pattern", PATTERNS)
def test_remote_index_matches_like_python_glob(tmp_path, pattern):
    # 1.1.0 documents the remote matching as "mirroring local glob"
    _touch(tmp_path, *TREE)
    index = [
        os.path.relpath(os.path.join(d, n), tmp_path)
        for d, dirs, files in os.walk(tmp_path)
        for n in dirs + files
    ]
    expected = sorted(
        p.rstrip("/") for p in glob.glob(pattern, root_dir=tmp_path, recursive=True) if p != ""
    )
    manifest = RemoteManifestBuilder(index).add_paths(
        source_prefix=".", destination_prefix=".", patterns=[pattern]
    )
    assert [e.destination for e in manifest.build().entries] == expected


def test_remote_literal_that_is_only_an_implied_directory_is_missing():
    # 1.1.0: with assume_literals=False a path must be in the index (or pass ``exists``)
    built = (
        RemoteManifestBuilder(["task/nested/b.out"], assume_literals=False)
        .add_paths(source_prefix="task", destination_prefix="task", patterns=["nested", "*"])
        .build()
    )
    assert built.entries == []
    assert built.missing == [MissingEntry("nested", "task"), MissingEntry("*", "task")]


def test_no_overwrite_keeps_existing_data_and_merges_directories(tmp_path):
    # 1.1.0: overwrite=False keeps x.txt and d/old, adds d/f.txt; overwrite=True replaces
    src, dst = tmp_path / "src", tmp_path / "dst"
    _touch(src, "d/f.txt", "x.txt")
    _touch(dst, "p/d/old", "p/x.txt")
    manifest = ManifestBuilder().add_paths(
        source_root=src, destination_prefix="p", patterns=["d", "x.txt"]
    )
    FileTransfer(dst, overwrite=False).apply(manifest.build())
    assert (dst / "p/x.txt").read_text() == "p/x.txt"
    assert sorted(os.listdir(dst / "p/d")) == ["f.txt", "old"]
    FileTransfer(dst).apply(manifest.build())
    assert (dst / "p/x.txt").read_text() == "x.txt"
    assert sorted(os.listdir(dst / "p/d")) == ["f.txt"]


def test_symlink_mode_keeps_links_and_copy_mode_follows_them(tmp_path):
    src = tmp_path / "src"
    _touch(src, "d/f.txt", "x.txt")
    os.symlink("x.txt", src / "lnk")
    os.symlink("../x.txt", src / "d" / "inl")
    manifest = (
        ManifestBuilder().add_paths(source_root=src, destination_prefix=".", patterns=["d", "lnk"])
    ).build()
    FileTransfer(tmp_path / "sym", symlink=True).apply(manifest)
    assert os.readlink(tmp_path / "sym" / "lnk") == "x.txt"
    assert os.readlink(tmp_path / "sym" / "d" / "inl") == "../x.txt"
    FileTransfer(tmp_path / "copy").apply(manifest)
    assert not (tmp_path / "copy" / "lnk").is_symlink()
    assert (tmp_path / "copy" / "d" / "inl").read_text() == "x.txt"


def test_archive_builder_checks_every_pattern_before_writing(tmp_path):
    _touch(tmp_path / "src", "x.txt")
    with pytest.raises(FileNotFoundError):
        ArchiveBuilder(tmp_path / "src").build_zip(tmp_path / "a.zip", ["x.txt", "q*"])
    assert not (tmp_path / "a.zip").exists()


def test_submission_plan_lists_transfers_and_missing_files(tmp_path):
    # the manifests 1.1.0 builds for the same submission and files
    work, remote = tmp_path / "w", tmp_path / "remote"
    _touch(work, "c1", "t1/in.a", "t1/in.b", "t2/in.a")
    _touch(remote, "t1/out.x", "bc", "t2/error.log")
    tasks = [
        Task("x", "t1", forward_files=["in.*"], backward_files=["out.x", "missing.y"]),
        Task("x", "t2/", forward_files=["in.a", "nope"], backward_files=["*.x"]),
    ]
    submission = Submission(
        "w",
        resources=Resources(1, 1, 0, "q", 1),
        task_list=tasks,
        forward_common_files=["c1"],
        backward_common_files=["bc", "b*c", "nob"],
    )
    plan = SubmissionStagingPlan(work, submission)
    up = plan.upload_manifest()
    assert [e.destination for e in up.entries] == [
        "c1",
        "t1",
        "t1/in.a",
        "t1/in.b",
        "t2",
        "t2/in.a",
    ]
    assert up.missing == [MissingEntry("nope", "t2")]
    assert [e.destination for e in plan.upload_manifest(include_tasks=False).entries] == ["c1"]
    down = plan.download_manifest(remote, include_errors=True)
    assert [e.destination for e in down.entries] == ["bc", "t1/out.x", "t2/error.log"]
    assert down.missing == [
        MissingEntry("missing.y", "t1"),
        MissingEntry("*.x", "t2"),
        MissingEntry("nob", "."),
    ]
    _touch(work, "t1/missing.y")
    assert (
        MissingEntry("missing.y", "t1")
        not in plan.download_manifest(remote, fallback_root=work).missing
    )
