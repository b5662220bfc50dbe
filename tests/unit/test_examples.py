"""Every example file loads, and the five-task example runs and produces its results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dpdispatcher import Machine, Resources, Task
from dpdispatcher.base_context import BaseContext

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REPO = EXAMPLES.parent

MACHINE_FILES = [*sorted(EXAMPLES.glob("machine/*.json")), EXAMPLES / "five_tasks/machine.json"]
RESOURCES_FILES = [
    *sorted(EXAMPLES.glob("resources/*.json")),
    EXAMPLES / "five_tasks/resources.json",
]
TASK_FILES = [EXAMPLES / "five_tasks/task.json"]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(EXAMPLES)) for p in paths]


def test_the_example_folders_hold_what_the_tests_expect() -> None:
    assert len(MACHINE_FILES) >= 6
    assert len(RESOURCES_FILES) >= 4
    names = {p.name for p in MACHINE_FILES}
    assert {"slurm_ssh.json", "pbs_local.json", "lsf_ssh.json", "bohrium.json"} <= names


@pytest.mark.parametrize("path", MACHINE_FILES, ids=_ids(MACHINE_FILES))
def test_machine_example_loads(path: Path) -> None:
    machine = Machine.load_from_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert type(machine) is Machine.get_class(data["batch_type"])
    assert type(machine.context) is BaseContext.get_class(data["context_type"])
    # secrets must never reach the persisted (and hashed) form
    public = json.dumps(machine.serialize())
    for secret in ("password", "passphrase", "totp_secret"):
        value = data.get("remote_profile", {}).get(secret)
        if value:
            assert str(value) not in public


@pytest.mark.parametrize("path", RESOURCES_FILES, ids=_ids(RESOURCES_FILES))
def test_resources_example_loads(path: Path) -> None:
    resources = Resources.load_from_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert resources.group_size == data["group_size"]
    assert Resources.load_from_dict(resources.serialize()) == resources


@pytest.mark.parametrize("path", TASK_FILES, ids=_ids(TASK_FILES))
def test_task_example_loads(path: Path) -> None:
    task = Task.load_from_json(path)
    assert Task.load_from_dict(task.serialize()) == task


def test_five_tasks_example_runs_from_another_directory(tmp_path: Path) -> None:
    copy = tmp_path / "five_tasks"
    shutil.copytree(
        EXAMPLES / "five_tasks",
        copy,
        ignore=shutil.ignore_patterns("out.txt", "err", "log", "__pycache__"),
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["TMPDIR"] = str(tmp_path / "tmp")  # the job root goes under the temp dir
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(
        [sys.executable, str(copy / "run.py")],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    work = copy / "lammps_md_300K_5GPa"
    expected = {
        "bct-0": "hello from bct-0\n" + (work / "graph.pb").read_text().splitlines()[0] + "\n",
        **{f"dir{i}": f"hello from dir{i}\n" for i in range(1, 5)},
    }
    for name, text in expected.items():
        out = work / name / "out.txt"
        assert out.read_text() == text
        assert str(out) in done.stdout  # printed with its absolute path
    assert os.listdir(elsewhere) == []  # nothing written to the working directory
    # the job root under the temp dir was cleaned
    assert not any((tmp_path / "tmp" / "dpdispatcher_work_dir").iterdir())
