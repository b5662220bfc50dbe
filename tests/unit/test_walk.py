"""``walk_tree``: the walk both archive writers (zip, SSH tar) pack a directory with.

Expected values come from :func:`os.walk` itself (top-down, steered into name order by
sorting ``dirnames`` in place, as its documentation suggests) and from what
:mod:`tarfile` puts in an archive of the same tree (it recurses in name order too).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from dpdispatcher._walk import walk_tree


def tree(root: Path) -> Path:
    """Directories and files created out of name order, a link to a file and one to a
    directory outside the tree, and a dangling link."""
    top = root / "top"
    for d in ("z/y", "a/c", "a/b", "m"):
        (top / d).mkdir(parents=True)
    for f in ("z/y/2", "z/1", "a/c/k", "a/b/j", "a/i", "h", "b"):
        (top / f).write_text(f)
    (root / "outside" / "d").mkdir(parents=True)
    (root / "outside" / "d" / "o").write_text("o")
    os.symlink(root / "outside", top / "m" / "to_dir")
    os.symlink(top / "h", top / "a" / "to_file")
    os.symlink(root / "nowhere", top / "dangling")
    return top


def sorted_os_walk(top: Path, follow: bool) -> list[tuple[str, str, list[str], list[str]]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=follow):
        dirnames.sort()
        out.append((dirpath, os.path.relpath(dirpath, top), list(dirnames), sorted(filenames)))
    return out


def tar_names(top: Path, follow: bool) -> set[str]:
    """The member names tarfile writes for ``top`` (``.`` for top itself)."""
    with tarfile.open(os.devnull, "w", dereference=follow) as tar:
        tar.add(top, ".")
        return {os.path.normpath(m.name) for m in tar.getmembers()}


@pytest.mark.parametrize("follow", [True, False])
def test_without_loops_it_is_os_walk_in_name_order(tmp_path: Path, follow: bool) -> None:
    top = tree(tmp_path)
    walked = list(walk_tree(str(top), follow=follow))
    assert walked == sorted_os_walk(top, follow)
    assert [rel for _, rel, _, _ in walked][:4] == [".", "a", "a/b", "a/c"]


@pytest.mark.parametrize("follow", [True, False])
def test_it_names_what_tarfile_archives(tmp_path: Path, follow: bool) -> None:
    top = tree(tmp_path)
    (top / "dangling").unlink()  # tarfile cannot dereference it
    names = set()
    for _, rel, dirnames, filenames in walk_tree(str(top), follow=follow):
        names.add(rel)
        here = "" if rel == "." else rel + "/"
        names.update(here + n for n in filenames)
        if not follow:  # a link to a directory: a member of its own, not descended
            names.update(here + n for n in dirnames if (top / here / n).is_symlink())
    assert names == tar_names(top, follow)
    assert ("m/to_dir/d/o" in names) is follow


def test_each_real_directory_once_and_a_loop_ends(tmp_path: Path) -> None:
    top = tree(tmp_path)
    os.symlink(top, top / "a" / "b" / "up")  # a loop
    os.symlink(top / "z", top / "m" / "z_again")  # a second name for a directory
    walked = list(walk_tree(str(top)))
    reals = [os.path.realpath(dirpath) for dirpath, _, _, _ in walked]
    real_dirs = {os.path.realpath(d) for d, _, _ in os.walk(top)} | {
        os.path.realpath(d) for d, _, _ in os.walk(tmp_path / "outside")
    }
    assert len(reals) == len(set(reals)) and set(reals) == real_dirs
    rels = [rel for _, rel, _, _ in walked]
    # the first name in the walk's order wins: m/z_again comes before z
    assert {"m/z_again", "m/z_again/y"} <= set(rels)
    assert not any(r == "z" or r.startswith(("z/", "a/b/up")) for r in rels)


def test_changing_the_yielded_lists_does_not_steer_the_walk(tmp_path: Path) -> None:
    top = tree(tmp_path)
    seen = []
    for _, rel, dirnames, filenames in walk_tree(str(top)):
        seen.append(rel)
        dirnames.clear()
        filenames.append("extra")
    assert seen == [rel for _, rel, _, _ in sorted_os_walk(top, True)]
