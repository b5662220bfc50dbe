"""Context operations in a directory given explicitly (not the bound job root).

``previous_submission_hash`` reads the state file of another job root and renames it;
these operations must neither need nor re-point the bound job root. Expected values come
from bash (``pwd -P``), ``os.path.lexists`` and ``Path.read_text``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dpdispatcher._previous import read_previous_state
from dpdispatcher._script import names
from dpdispatcher.contexts.lazy_local_context import LazyLocalContext
from dpdispatcher.contexts.local_context import LocalContext
from dpdispatcher.errors import JobRootConflictError, MissingStateError

NAMES = ["state.json", "sub/tag", "sub/dir", "dangling", "missing", "sub/missing", "nodir/x"]


@pytest.fixture(params=[LocalContext, LazyLocalContext])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> LocalContext | LazyLocalContext:
    context = request.param(str(tmp_path / "local"), str(tmp_path / "remote"))
    context.remote_root = str(tmp_path / "remote" / "BOUND")  # not made: nothing needs it
    return context


@pytest.fixture
def other(tmp_path: Path) -> Path:
    root = tmp_path / "other root"
    (root / "sub" / "dir").mkdir(parents=True)
    (root / "state.json").write_text('{"a": "é"}\n', encoding="utf-8")
    (root / "sub" / "tag").write_text("")
    os.symlink(root / "nowhere", root / "dangling")
    return root


def test_run_in_runs_in_the_directory_given(ctx: LocalContext, other: Path) -> None:
    res = ctx.run_in(str(other), "pwd -P; exit 3")
    assert (res.exit_code, res.stdout) == (3, os.path.realpath(other) + "\n")
    assert ctx.remote_root.endswith("BOUND")


def test_files_exist_in_is_lexists_in_the_directory_given(ctx: LocalContext, other: Path) -> None:
    expected = {n for n in NAMES if os.path.lexists(other / n)}
    assert expected == {"state.json", "sub/tag", "sub/dir", "dangling"}
    assert ctx.files_exist_in(str(other), NAMES) == expected
    assert ctx.files_exist_in(str(other / "no such root"), NAMES) == set()
    assert ctx.remote_root.endswith("BOUND")


def test_read_files_in_reads_the_existing_files(ctx: LocalContext, other: Path) -> None:
    names_ = [n for n in NAMES if n not in ("dangling", "sub/dir")]
    assert ctx.read_files_in(str(other), names_) == {
        n: (other / n).read_text(encoding="utf-8") for n in names_ if (other / n).is_file()
    }
    assert ctx.remote_root.endswith("BOUND")


def test_the_bound_forms_are_the_same_in_the_job_root(ctx: LocalContext, other: Path) -> None:
    ctx.remote_root = str(other)
    assert ctx.files_exist(NAMES) == ctx.files_exist_in(str(other), NAMES)
    assert ctx.read_files(["state.json", "missing"]) == {"state.json": '{"a": "é"}\n'}
    assert ctx.run("pwd -P").stdout == os.path.realpath(other) + "\n"


def test_read_previous_state_leaves_the_context_alone(tmp_path: Path, other: Path) -> None:
    ctx = LocalContext(str(tmp_path / "local"), str(tmp_path / "remote"))
    ctx.remote_root = bound = str(tmp_path / "remote" / "BOUND")
    fname = names.state_file("PREV")
    (other / fname).write_text("{}")
    new = str(tmp_path / "remote" / "NEW")
    assert read_previous_state(ctx, "PREV", new, str(other)) == ("{}", str(other))
    with pytest.raises(MissingStateError, match="PREV"):
        read_previous_state(ctx, "PREV", new, str(tmp_path / "nowhere"))
    assert ctx.remote_root == bound


def test_migrate_recovery_root_renames_as_mv_does(tmp_path: Path) -> None:
    ctx = LocalContext(str(tmp_path / "local"), str(tmp_path / "remote"))
    ctx.remote_root = bound = str(tmp_path / "remote" / "BOUND")
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    (old / "f").write_text("x")
    assert ctx.migrate_recovery_root(str(old), str(new)) is True
    assert not old.exists() and (new / "f").read_text() == "x"
    assert ctx.migrate_recovery_root(str(old), str(new)) is False  # moved already
    old.mkdir()
    with pytest.raises(JobRootConflictError):
        ctx.migrate_recovery_root(str(old), str(new))
    assert ctx.remote_root == bound
