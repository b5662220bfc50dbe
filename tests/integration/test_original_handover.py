"""A run started by the original dpdispatcher (1.1.0, 1.0.3) is finished by this package.

The original is installed from PyPI into a throwaway venv (tests/original_release.py)
and *run*: it submits Shell jobs on LocalContext whose tasks append to counters outside
the work tree, and is killed (SIGKILL, its jobs keep running) while it polls. This
package, given the same tasks, must find the original's job root by the original's own
submission hash, adopt its job ids and states, and finish: each task ran exactly once
and every result is back. The submission hashes the original computes are compared with
the recipes in ``dpdispatcher._legacy`` on a set of cases, including SSH profiles.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine, Resources, Submission, Task, _legacy
from tests.conftest import require
from tests.original_release import original_hashes, original_python, start_original_run

VERSIONS = ["1.1.0", "1.0.3"]


def handover_spec(
    tmp_path: Path, context: str, remote: Path, counters: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The original's spec, and ours (the same, plus our own SSH options)."""
    local = tmp_path / "local"
    tasks = []
    for i, pause in ((1, 0), (2, 6), (3, 6)):
        (local / "work" / f"t{i}").mkdir(parents=True)
        (local / "work" / f"t{i}" / "in.txt").write_text(f"input {i}\n")
        tasks.append(
            {
                "command": f"echo run >> {counters}/t{i}; sleep {pause}; "
                f"cat in.txt > out.txt; echo done-{i} >> out.txt",
                "task_work_path": f"t{i}/",
                "forward_files": ["in.txt"],
                "backward_files": ["out.txt"],
            }
        )
    machine: dict[str, Any] = {
        "batch_type": "Shell",
        "context_type": context,
        "local_root": str(local),
    }
    if context != "LazyLocalContext":
        machine["remote_root"] = str(remote)
    if context == "SSHContext":
        machine["create_remote_root"] = True
        machine["remote_profile"] = {
            "hostname": os.environ["DPDISP_SSH_HOST"],
            "port": int(os.environ["DPDISP_SSH_PORT"]),
            "username": os.environ["DPDISP_SSH_USER"],
            "key_filename": os.environ["DPDISP_SSH_KEY_ED25519"],
            "look_for_keys": False,
        }
    spec = {
        "cwd": str(local),
        "work_base": "work",
        "machine": machine,
        "resources": {"group_size": 1},
        "tasks": tasks,
        "check_interval": 1,
    }
    ours = json.loads(json.dumps(spec))
    if context == "SSHContext":  # verified host keys are ours only (the original skips it)
        ours["machine"]["remote_profile"]["known_hosts"] = os.environ["DPDISP_SSH_KNOWN_HOSTS"]
    return spec, ours


def build(spec: dict[str, Any]) -> Submission:
    return Submission(
        spec["work_base"],
        Machine.load_from_dict(spec["machine"]),
        Resources.load_from_dict(spec["resources"]),
        forward_common_files=spec.get("forward_common_files", []),
        backward_common_files=spec.get("backward_common_files", []),
        task_list=[Task.load_from_dict(t) for t in spec["tasks"]],
    )


def wait_for(predicate: Any, what: str, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def state_files(remote: Path) -> list[Path]:
    return list(remote.glob("*/*.json")) if remote.exists() else []


@pytest.fixture
def shared_dirs() -> Iterator[tuple[Path, Path]]:
    """A remote root and a counter directory the SSH test user may write in too."""
    base = Path("/tmp") / f"dpd-handover-{uuid.uuid4().hex[:10]}"
    (base / "counters").mkdir(parents=True)
    for path in (base, base / "counters"):
        path.chmod(0o777)
    yield base / "remote", base / "counters"
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    ("version", "context"),
    [
        ("1.1.0", "LocalContext"),
        ("1.0.3", "LocalContext"),
        ("1.1.0", "LazyLocalContext"),
        ("1.0.3", "LazyLocalContext"),
        ("1.1.0", "SSHContext"),
    ],
)
def test_a_run_of_the_original_killed_mid_poll_is_finished_once(
    tmp_path, monkeypatch, shared_dirs, version, context
):
    if context == "SSHContext":
        require("DPDISP_SSH_HOST", "DPDISP_SSH_KNOWN_HOSTS", what="the test sshd")
    original_python(version)  # build (or reuse) the venv before anything is timed
    remote, counters = shared_dirs
    spec, ours = handover_spec(tmp_path, context, remote, counters)
    roots = tmp_path / "local" if context == "LazyLocalContext" else remote
    proc = start_original_run(version, spec, tmp_path / "orig-home")
    try:
        # every task started, t1 finished, and the original saved its state: it now polls
        wait_for(
            lambda: (
                all((counters / f"t{i}").exists() for i in (1, 2, 3))
                and bool(list(roots.glob("*/t1/out.txt")))
                and any('"job_id"' in p.read_text() for p in state_files(roots))
            ),
            "the original to submit",
        )
        time.sleep(1.5)
        assert proc.poll() is None, (tmp_path / "orig-home" / "original-run.log").read_text()
    finally:
        proc.kill()  # the dispatcher only: its jobs keep running
        proc.wait()
    ((job_root, theirs),) = [(p.parent, p.stem) for p in state_files(roots)]
    monkeypatch.chdir(ours["cwd"])
    sub = build(ours)
    sub.generate_jobs()
    assert (("1.0.x" if version == "1.0.3" else version), theirs) in _legacy.legacy_hashes(sub)
    sub.timing.first_interval = 0.05
    sub.run_submission(check_interval=0.5)

    assert [(counters / f"t{i}").read_text() for i in (1, 2, 3)] == ["run\n"] * 3
    for i in (1, 2, 3):
        out = tmp_path / "local" / "work" / f"t{i}" / "out.txt"
        assert out.read_text() == f"input {i}\ndone-{i}\n"
    if context == "LazyLocalContext":  # the job root is the work base: our state is beside
        assert (job_root / f"{sub.submission_hash}.json").exists()
    else:  # the original's job root was adopted (then cleaned): no second one was made
        assert list(remote.iterdir()) == []


def hash_cases(tmp_path: Path) -> list[dict[str, Any]]:
    cwd = tmp_path / "cwd"
    (cwd / "work").mkdir(parents=True)
    base: dict[str, Any] = {"cwd": str(cwd), "resources": {"group_size": 1}}
    local = {"batch_type": "Shell", "context_type": "LocalContext"}
    lmp = {"command": "lmp -i in.lmp", "forward_files": ["in.lmp"], "backward_files": ["log"]}
    return [
        {
            **base,
            "name": "trailing-slash",
            "work_base": "work/",
            "machine": {**local, "local_root": str(cwd), "remote_root": str(tmp_path / "r")},
            "tasks": [{"command": "echo hi", "task_work_path": f"t{i}/"} for i in (1, 2)],
        },
        {
            **base,
            "name": "relative-roots-aliases",
            "work_base": "./work",
            "machine": {
                "batch_type": "shell",
                "context_type": "local",
                "local_root": "./",
                "remote_root": "remote_rel",
                "retry_count": 1,
                "clean_asynchronously": True,
            },
            "resources": {"group_size": 2, "cpu_per_node": 4, "envs": {"A": "1"}},
            "forward_common_files": ["graph.pb", "a.txt"],
            "backward_common_files": ["sum.txt"],
            "tasks": [{**lmp, "task_work_path": f"task.00{i}/"} for i in range(3)],
        },
        {
            **base,
            "name": "lazy-local-slurm",
            "work_base": "work",
            "machine": {
                "batch_type": "Slurm",
                "context_type": "LazyLocalContext",
                "local_root": str(cwd),
            },
            "resources": {"group_size": 0, "queue_name": "normal"},
            "tasks": [{"command": "dp train in.json", "task_work_path": f"0{i}/"} for i in (0, 1)],
        },
    ]


def ssh_cases(tmp_path: Path) -> list[dict[str, Any]]:
    env = os.environ
    profile = {
        "hostname": env["DPDISP_SSH_HOST"],
        "username": env["DPDISP_SSH_USER"],
        "port": int(env["DPDISP_SSH_PORT"]),
    }
    ssh = {
        "batch_type": "Shell",
        "context_type": "SSHContext",
        "local_root": str(tmp_path / "cwd"),
        "remote_root": "/tmp/dpdisp-compat-hash-case",
    }
    one = [{"command": "true", "task_work_path": "t1/"}]
    base = {"cwd": str(tmp_path / "cwd"), "work_base": "work", "resources": {"group_size": 1}}
    key = env["DPDISP_SSH_KEY_ED25519"]
    return [
        {
            **base,
            "name": "ssh-password",
            "machine": {
                **ssh,
                "remote_profile": {
                    **profile,
                    "password": env["DPDISP_SSH_PASSWORD"],
                    "look_for_keys": False,
                },
            },
            "tasks": one,
        },
        {
            **base,
            "name": "ssh-1.1.0-options",
            "versions": ["1.1.0"],
            "machine": {
                **ssh,
                "create_remote_root": True,
                "remote_profile": {**profile, "key_filename": key, "archive_chunk_size": 4096},
            },
            "tasks": [{"command": "true", "task_work_path": "t1/", "task_name": "relax"}],
        },
        {
            **base,
            "name": "ssh-chunk-zero",
            "versions": ["1.1.0"],
            "machine": {
                **ssh,
                "remote_profile": {**profile, "key_filename": key, "archive_chunk_size": 0},
            },
            "tasks": one,
        },
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_hash_recipes_match_the_original(tmp_path, monkeypatch, version):
    cases = hash_cases(tmp_path)
    if os.environ.get("DPDISP_SSH_HOST") or os.environ.get("CI"):
        require("DPDISP_SSH_HOST", "DPDISP_SSH_KEY_ED25519", what="the test sshd")
        cases += ssh_cases(tmp_path)
    observed = original_hashes(version, cases, tmp_path / "orig-home")
    release = "1.0.x" if version == "1.0.3" else version
    assert observed, "the original answered no case"
    for case in cases:
        if case["name"] not in observed:
            continue
        monkeypatch.chdir(case["cwd"])
        sub = build(case)
        sub.generate_jobs()
        want = observed[case["name"]]
        assert [j.job_hash for j in sub.belonging_jobs] == want["job_hashes"], case["name"]
        assert (release, want["submission_hash"]) in _legacy.legacy_hashes(sub), (
            case["name"],
            json.dumps(want),
        )
