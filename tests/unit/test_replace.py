"""A result replaces the local file: staged beside it, renamed into place (B1)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from dpdispatcher import _replace
from dpdispatcher._replace import bring_back, staged_name


class Killed(BaseException):
    """Stands for the process being killed."""


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text() if p.is_file() else "<dir>"
        for p in sorted(root.rglob("*"))
    }


def test_file_replaces_file(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("new")
    (tmp_path / "dst").write_text("old")
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert _tree(tmp_path) == {"dst": "new"}


def test_directory_replaces_directory_and_file(tmp_path: Path) -> None:
    (tmp_path / "src/sub").mkdir(parents=True)
    (tmp_path / "src/sub/a").write_text("a")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst/stale").write_text("old")
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert _tree(tmp_path) == {"dst": "<dir>", "dst/sub": "<dir>", "dst/sub/a": "a"}
    (tmp_path / "f").write_text("file now")
    bring_back(str(tmp_path / "f"), str(tmp_path / "dst"))
    assert _tree(tmp_path) == {"dst": "file now"}


def test_parents_are_created(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("x")
    bring_back(str(tmp_path / "src"), str(tmp_path / "a/b/dst"))
    assert (tmp_path / "a/b/dst").read_text() == "x"


def test_link_to_the_target_itself_leaves_it_alone(tmp_path: Path) -> None:
    (tmp_path / "dst").write_text("written through the link")
    os.symlink(tmp_path / "dst", tmp_path / "src")
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert not (tmp_path / "dst").is_symlink()
    assert (tmp_path / "dst").read_text() == "written through the link"


def test_links_into_the_replaced_directory_become_copies(tmp_path: Path) -> None:
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst/in").write_text("input")
    (tmp_path / "src").mkdir()
    os.symlink(tmp_path / "dst/in", tmp_path / "src/in")
    (tmp_path / "src/out").write_text("output")
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert _tree(tmp_path) == {"dst": "<dir>", "dst/in": "input", "dst/out": "output"}
    assert not (tmp_path / "dst/in").is_symlink()


def _cross_device(monkeypatch: pytest.MonkeyPatch, src: Path) -> None:
    """Renames out of ``src`` fail as they do between filesystems."""
    real = os.replace

    def fake(a: str, b: str) -> None:
        if os.path.abspath(a) == str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(a, b)

    monkeypatch.setattr(_replace.os, "replace", fake)


def test_across_filesystems_copies_then_renames_then_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").write_text("new")
    (tmp_path / "dst").write_text("old")
    _cross_device(monkeypatch, tmp_path / "src")
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert _tree(tmp_path) == {"dst": "new"}


def test_a_copy_killed_midway_leaves_the_old_target_and_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No truncated file under the target's name, and the next try completes."""
    (tmp_path / "src").write_text("new result")
    (tmp_path / "dst").write_text("old")
    _cross_device(monkeypatch, tmp_path / "src")
    real_copy2 = shutil.copy2

    def half_copy(src: str, dst: str, **kw: object) -> None:
        Path(dst).write_text(Path(src).read_text()[:3])
        raise Killed  # the process dies here

    monkeypatch.setattr(_replace.shutil, "copy2", half_copy)
    with pytest.raises(Killed):
        bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_text() == "old"
    assert (tmp_path / "src").read_text() == "new result"
    monkeypatch.setattr(_replace.shutil, "copy2", real_copy2)
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert _tree(tmp_path) == {"dst": "new result"}  # the staged leftover is gone too


def test_keep_source_copies(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a").write_text("a")
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"), keep_source=True)
    assert _tree(tmp_path) == {"dst": "<dir>", "dst/a": "a", "src": "<dir>", "src/a": "a"}


def test_a_leftover_aside_copy_is_removed_on_the_next_replace(tmp_path: Path) -> None:
    (tmp_path / "dst").mkdir()
    aside = Path(staged_name(str(tmp_path / "dst"), "old"))
    aside.mkdir()
    (aside / "x").write_text("left by a killed run")
    (tmp_path / "src").mkdir()
    bring_back(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert _tree(tmp_path) == {"dst": "<dir>"}


def test_a_link_to_a_file_comes_back_as_a_copy_of_the_file(tmp_path: Path) -> None:
    # observed on 1.1.0: LocalContext.download of a backward file that is a link (into the
    # job root or elsewhere) leaves a regular file with the target's content locally
    (tmp_path / "root").mkdir()
    (tmp_path / "root/real").write_text("result")
    os.symlink(tmp_path / "root/real", tmp_path / "root/link")
    bring_back(str(tmp_path / "root/link"), str(tmp_path / "back"))
    (tmp_path / "root/real").unlink()  # the job root is cleaned afterwards
    assert not (tmp_path / "back").is_symlink()
    assert (tmp_path / "back").read_text() == "result"
    assert not (tmp_path / "root/link").is_symlink()  # the source is gone, as for a move
