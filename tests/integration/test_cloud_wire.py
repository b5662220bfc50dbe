"""Wire compatibility with the original dpdispatcher 1.1.0 Bohrium client.

The original (installed from PyPI into a throwaway venv, see
``tests/cloud_emulator/original.py``) runs a three-task submission against the
emulator, which checks every request strictly (``tests/cloud_emulator/shapes.py``):
if the original cannot complete, the emulator is wrong. Then this package runs the
same submission against a second emulator, and every API request it makes must have
a shape (route, query keys, headers, JSON keys and value types) the original also
produced.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.contexts.dp_cloud_server_context import DpCloudServerContext
from tests.cloud_emulator.original import DRIVER, original_python
from tests.cloud_emulator.server import CloudEmulator

pytest_plugins = ["tests.cloud_emulator.fixture"]

MODES = ["email", "phone", "grouped", "kill"]
INPUT_DATA = {
    "job_type": "container",
    "platform": "ali",
    "scass_type": "c2_m4_cpu",
    "image_name": "ubuntu:22.04",
    "job_name": "wire",
}


@pytest.fixture(autouse=True)
def _fast_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(DpCloudServerContext, "client_options", {"backoff": 0.01})
    yield


@pytest.fixture(scope="module")
def original() -> Path:
    """The original client's interpreter (installed from PyPI on first use, cached)."""
    return original_python()


def make_inputs(work: Path) -> None:
    for i in range(3):
        (work / f"t{i}").mkdir(parents=True)
        (work / f"t{i}" / "in.txt").write_text(f"in {i}\n")
    (work / "common.txt").write_text("c\n")


def run_original(python: Path, emulator: CloudEmulator, tmp: Path, mode: str) -> str:
    work = tmp / "orig-work"
    make_inputs(work)
    (tmp / "driver.py").write_text(DRIVER)
    (tmp / "env.json").write_text(json.dumps(emulator.env()))
    account = CloudEmulator.PHONE if mode == "phone" else CloudEmulator.EMAIL
    env = {**os.environ, "EMU_ACCOUNT": account, "EMU_PASSWORD": CloudEmulator.PASSWORD}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), str(tmp / "driver.py"), str(tmp / "env.json"), mode, str(work)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "COMPLETED" in proc.stdout, proc.stdout + proc.stderr
    assert emulator.rejected == []
    if mode != "kill":
        for i in range(3):
            assert (work / f"t{i}" / "out.txt").read_text() == f"in {i}\nc\n"
    return proc.stdout


def three_tasks(
    machine: Machine, command: str = "cat in.txt ../common.txt > out.txt"
) -> Submission:
    """Three tasks reading ``in.txt`` and ``../common.txt`` (see :func:`make_inputs`)."""
    tasks = [
        Task(command, f"t{i}", forward_files=["in.txt"], backward_files=["out.txt"], outlog="log")
        for i in range(3)
    ]
    sub = Submission(
        "./",
        machine,
        Resources(1, 1, 0, "", 1),
        task_list=tasks,
        forward_common_files=["common.txt"],
    )
    sub.timing.first_interval = 0.05
    sub.timing.resubmit_delay = 0.05
    return sub


def run_ours(
    emulator: CloudEmulator, tmp: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    work = tmp / "our-work"
    make_inputs(work)
    profile: dict[str, Any] = {
        "password": CloudEmulator.PASSWORD,
        "program_id": 4242,
        "input_data": {**INPUT_DATA, **({"grouped": True} if mode == "grouped" else {})},
        ("phone" if mode == "phone" else "email"): (
            CloudEmulator.PHONE if mode == "phone" else CloudEmulator.EMAIL
        ),
    }
    machine = Machine.load_from_dict(
        {
            "batch_type": "Bohrium",
            "context_type": "BohriumContext",
            "local_root": str(work),
            "remote_profile": profile,
        }
    )
    sub = three_tasks(machine)
    if mode == "kill":
        sub.run_submission(exit_on_submit=True)
        for job in sub.belonging_jobs:
            machine.kill(job)
    else:
        sub.run_submission(check_interval=0.3)
        for i in range(3):
            assert (work / f"t{i}" / "out.txt").read_text() == f"in {i}\nc\n"
    assert emulator.rejected == []


def shape_of(value: Any) -> Any:
    """The JSON type structure of a value (keys and value types, not values)."""
    if isinstance(value, dict):
        return tuple(sorted((k, shape_of(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({repr(shape_of(v)) for v in value})))
    return type(value).__name__


def header_shape(headers: Any) -> Any:
    if isinstance(headers, list):  # storage requests: names only
        return tuple(headers)
    return tuple(
        sorted(
            (k, v.split(" ")[0] if k == "authorization" else bool(v)) for k, v in headers.items()
        )
    )


def shapes(requests: list[dict[str, Any]]) -> dict[str, set[Any]]:
    """API requests (and result downloads) by route, as (query keys, headers, body shape)."""
    out: dict[str, set[Any]] = defaultdict(set)
    for req in requests:
        route = req["route"]
        if route.startswith("OSS ") and route != "OSS GetObject":
            continue  # the object store protocol is oss2's, the same library on both sides
        out[route].add(
            (tuple(sorted(req["query"])), header_shape(req["headers"]), shape_of(req.get("json")))
        )
    return out


@pytest.mark.parametrize("mode", MODES)
def test_our_requests_have_the_shapes_of_the_originals(
    original: Path,
    cloud_emulator: CloudEmulator,
    tmp_path: Path,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stdout = run_original(original, cloud_emulator, tmp_path, mode)
    if mode != "kill":
        assert "EXIT CODES [0, 0, 0]" in stdout
    if mode == "grouped":
        assert "LISTED 3" in stdout
    theirs = shapes(cloud_emulator.requests)
    with CloudEmulator(tmp_path / "second-emulator") as ours_emulator:
        run_ours(ours_emulator, tmp_path, mode, monkeypatch)
        ours = shapes(ours_emulator.requests)
    assert ours["POST /brm/v2/job/add"], "no job was created"
    for route, seen in ours.items():
        assert route in theirs, f"{route}: the original never sends it"
        assert seen <= theirs[route], f"{route}: {seen - theirs[route]} not in {theirs[route]}"
    if mode == "grouped":  # both put jobs 2 and 3 in the first job's group
        adds = [r for r in ours_emulator.requests if r["route"] == "POST /brm/v2/job/add"]
        assert ["jobGroupId" in r["json"] for r in adds] == [False, True, True]


def test_the_original_rides_out_a_5xx_burst(
    original: Path, cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    """The emulator's injected 5xx answers are ones the original retries through."""
    cloud_emulator.fail_next(2, status=503, path_prefix="/brm/v2/job/add")
    cloud_emulator.fail_next(2, status=502, path_prefix="/brm/v1/job/")
    stdout = run_original(original, cloud_emulator, tmp_path, "email")
    assert "EXIT CODES [0, 0, 0]" in stdout
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 3 + 2
