"""The job script fails closed (B4) and roots are made absolute when loaded (B3).

The rendered script is run with the real bash: when its job root or its ``.run`` body is
missing, no job tag may appear and the script must exit non-zero.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dpdispatcher import Job, Machine, Resources, Submission, Task
from dpdispatcher._script import names


def _setup(tmp_path: Path, job_root: str) -> tuple[Machine, Job]:
    machine = Machine(
        batch_type="Shell",
        context_type="LocalContext",
        local_root=str(tmp_path),
        remote_root=str(tmp_path / "remote"),
    )
    machine.context.remote_root = job_root
    job = Job([Task("echo ran > out", "t0")], resources=Resources(1, 1, 0, "", 1))
    return machine, job


def _run(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_missing_job_root_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    machine, job = _setup(tmp_path, "does/not/exist")  # relative, as in B3
    script = tmp_path / "job.sub"
    script.write_text(machine.gen_script(job))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = _run(script, cwd)
    assert res.returncode == 1
    assert "job root does/not/exist not found" in res.stderr
    assert not list(cwd.iterdir())
    assert not os.path.exists("/" + names.job_tag_file(job.job_hash))
    assert not os.path.exists("/" + names.fail_flag_file(job.job_hash))


def test_missing_run_body_sets_the_flag_and_no_tag(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "t0").mkdir(parents=True)
    machine, job = _setup(tmp_path, str(root))
    script = root / names.script_file(job.job_hash)
    script.write_text(machine.gen_script(job))  # the .run body is not there
    res = _run(script, root)
    assert res.returncode != 0
    assert not (root / names.job_tag_file(job.job_hash)).exists()
    assert (root / names.fail_flag_file(job.job_hash)).read_text().strip() == "1"
    assert "cannot read the task body" in (root / names.last_err_file(job.job_hash)).read_text()


def test_complete_job_still_finishes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "t0").mkdir(parents=True)
    machine, job = _setup(tmp_path, str(root))
    (root / names.run_file(job.job_hash)).write_text(machine.gen_run_body(job))
    script = root / names.script_file(job.job_hash)
    script.write_text(machine.gen_script(job))
    res = _run(script, root)
    assert res.returncode == 0, res.stderr
    assert (root / names.job_tag_file(job.job_hash)).exists()
    assert (root / "t0/out").read_text() == "ran\n"


def test_relative_roots_are_made_absolute_when_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": ".",
            "remote_root": "remote",
        }
    )
    assert machine.context.init_local_root == str(tmp_path)
    assert machine.context.init_remote_root == str(tmp_path / "remote")
    # the state file holds the absolute roots; the public dictionary keeps them as written
    assert machine.state_dict()["remote_root"] == str(tmp_path / "remote")
    assert machine.serialize()["remote_root"] == "remote"


def test_relative_roots_run_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B3: ``local_root: "."``, ``remote_root: "remote"`` with LocalContext."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work/t0").mkdir(parents=True)
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": ".",
            "remote_root": "remote",
        }
    )
    task = Task("echo ok > out", "t0", backward_files=["out"])
    sub = Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=[task])
    sub.timing.first_interval = 0.02
    sub.run_submission(check_interval=0.1)
    assert (tmp_path / "work/t0/out").read_text() == "ok\n"
    job_hash = sub.belonging_jobs[0].job_hash
    assert not os.path.exists("/" + names.job_tag_file(job_hash))
