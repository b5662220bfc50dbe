"""dflow (pydflow 1.8.134), fetched from PyPI at test time, driving this package (issue 8).

pydflow is installed ``--no-deps`` into a cached throwaway venv with what its import
needs; this checkout is first on ``PYTHONPATH``. Workflows run in dflow's local debug
mode: every step is rendered by ``dflow.plugins.dispatcher.DispatcherExecutor`` into a
Python script that imports dpdispatcher, builds ``Machine`` / ``Resources`` / ``Task``
from dicts dflow merged itself (``remote_profile`` always carries ``hostname``,
``username``, ``port``, ``timeout``) and calls ``run_submission``; debug mode runs that
script with the venv's ``python3``. See ``dflow_driver.py`` for the workflow.

Each process gets a fresh ``HOME`` (no ``~/.ssh/known_hosts``), as dflow's dispatcher
container has. Stand-in steps append to a counter file outside the work tree, so "ran
exactly once" is asserted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests._venvs import Venv, build
from tests.cloud_emulator.server import CloudEmulator
from tests.conftest import SSH_AND_SLURM, require

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.cloud_emulator.fixture"]

PYDFLOW = "pydflow==1.8.134"
#: what ``import dflow`` and its dispatcher plugin need (infra NOTES.md)
DFLOW_LIGHT_DEPS = (
    "jsonpickle",
    "cloudpickle==2.2.0",
    "pyyaml",
    "requests",
    "tqdm",
    "psutil",
    "filelock",
    "python-dateutil",
    "six",
    "argo-workflows==5.0.0",
    "kubernetes",
    "oss2",
)
DRIVER = Path(__file__).with_name("dflow_driver.py")


@pytest.fixture(scope="module")
def dflow_venv() -> Venv:
    return build("dflow", [PYDFLOW], DFLOW_LIGHT_DEPS)


def _spec(tmp: Path, counter: Path, machine: dict[str, Any], **extra: Any) -> Path:
    spec = {
        "workdir": str(tmp / "wf"),
        "counter": str(counter),
        "msg": "hello dflow",
        "machine": machine,
        **extra,
    }
    path = tmp / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _env(venv: Venv, tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return venv.env(HOME=str(home))


def _run(
    venv: Venv, tmp: Path, spec: Path, timeout: float = 300, **env: str
) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [str(venv.python), str(DRIVER), str(spec)],
        cwd=tmp,
        env={**_env(venv, tmp), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), output


def _events(counter: Path) -> list[str]:
    if not counter.is_file():
        return []
    return [" ".join(line.split()[:2]) for line in counter.read_text().splitlines()]


def _assert_succeeded(
    result: dict[str, Any],
    output: str,
    counter: Path,
    steps: tuple[str, ...] = ("produce", "consume"),
) -> None:
    assert result["phase"] == "Succeeded", output[-6000:]
    assert result["steps"] == dict.fromkeys(steps, "Succeeded"), output[-6000:]
    expected = ["produce start", "produce end"]
    if "consume" in steps:
        expected.append("consume start")
        assert result["line"] == "HELLO DFLOW"
    assert _events(counter) == expected  # each step's task ran exactly once


def _local_machine(remote_root: Path, context: str = "LocalContext") -> dict[str, Any]:
    return {"batch_type": "Shell", "context_type": context, "remote_root": str(remote_root)}


def test_dflow_shell_local_context(dflow_venv: Venv, tmp_path: Path) -> None:
    """Shell + LocalContext: a shell step's artifact feeds a Python OP step."""
    counter, remote = tmp_path / "counter", tmp_path / "remote"
    result, output = _run(dflow_venv, tmp_path, _spec(tmp_path, counter, _local_machine(remote)))
    _assert_succeeded(result, output, counter)
    assert list(remote.iterdir()) == []  # clean=True (dflow's default) removed the job roots


def test_dflow_shell_lazy_local_context(dflow_venv: Venv, tmp_path: Path) -> None:
    """Shell + LazyLocalContext: jobs run in the step's own work dir."""
    counter = tmp_path / "counter"
    machine = {
        "batch_type": "Shell",
        "context_type": "LazyLocalContext",
        "remote_root": str(tmp_path / "cluster-root"),
    }  # dflow always sets one
    result, output = _run(dflow_venv, tmp_path, _spec(tmp_path, counter, machine))
    _assert_succeeded(result, output, counter)
    assert all(str(tmp_path / "wf") in line for line in counter.read_text().splitlines())


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "per-slice"])
def test_dflow_sliced_step(dflow_venv: Venv, tmp_path: Path, merge: bool) -> None:
    """dpgen2's sliced steps: merged into one submission of many tasks, or one each."""
    counter, remote = tmp_path / "counter", tmp_path / "remote"
    items = ["a", "b", "c", "d"]
    spec = _spec(
        tmp_path,
        counter,
        _local_machine(remote),
        sliced=items,
        executor={"merge_sliced_step": merge},
    )
    result, output = _run(dflow_venv, tmp_path, spec)
    assert result["phase"] == "Succeeded", output[-6000:]
    assert sorted(counter.read_text().splitlines()) == [f"shout {i}" for i in items]
    assert list(remote.iterdir()) == []


def test_dflow_clean_false_with_retry_on_submission_error(dflow_venv: Venv, tmp_path: Path) -> None:
    """dpgen2's settings: retry_on_submission_error=10, clean=False keeps the job root."""
    counter, remote = tmp_path / "counter", tmp_path / "remote"
    spec = _spec(
        tmp_path,
        counter,
        _local_machine(remote),
        single_step=True,
        executor={"retry_on_submission_error": 10, "clean": False},
    )
    result, output = _run(dflow_venv, tmp_path, spec, DISPATCHER_DEBUG="true")
    _assert_succeeded(result, output, counter, steps=("produce",))
    assert "retry 0" in output and "retry 1" not in output  # one successful attempt
    kept = [p for p in remote.iterdir() if p.is_dir()]
    assert len(kept) == 1, kept
    assert (kept[0] / "script").is_file()  # the forwarded step script is left in place
    # dflow's dispatcher_debug raises dlog to DEBUG: the step's log is where a dflow
    # user finds the scheduler's job id
    job_ids = [p.read_text().strip() for p in kept[0].glob("*_job_id")]
    step_log = next((tmp_path / "wf").glob("*/*produce*/log.txt")).read_text()
    assert len(job_ids) == 1 and job_ids[0], job_ids
    said = re.compile(rf"\bjob\b.*(?<![\d:,.-]){re.escape(job_ids[0])}(?![\d:,.-])")
    assert any(said.search(line) for line in step_log.splitlines()), step_log[-3000:]


def test_dflow_ssh_context_slurm(dflow_venv: Venv, tmp_path: Path, shared_dir: Path) -> None:
    """dflow's default machine (Slurm over SSHContext) against the test sshd and Slurm.

    HOME is fresh: no known_hosts, as in dflow's dispatcher container (accept-new).
    """
    require(*SSH_AND_SLURM, what="real sshd and Slurm")
    user = os.environ["DPDISP_SSH_USER"]
    counter = shared_dir / "counter"
    remote_root = f"/home/{user}/dpdisp-dflow-{uuid.uuid4().hex[:8]}"
    spec = _spec(
        tmp_path,
        counter,
        {
            "remote_root": remote_root,
            "remote_profile": {
                "key_filename": os.environ["DPDISP_SSH_KEY_ED25519"],
                "look_for_keys": False,
            },
        },
        single_step=True,
        executor={
            "host": os.environ["DPDISP_SSH_HOST"],
            "port": int(os.environ["DPDISP_SSH_PORT"]),
            "username": user,
        },
    )
    # an existing remote root: without create_remote_root it must exist (as with 1.1.0)
    subprocess.run(["install", "-d", "-o", user, remote_root], check=True)
    try:
        result, output = _run(dflow_venv, tmp_path, spec)
        _assert_succeeded(result, output, counter, steps=("produce",))
        assert all(
            line.split()[2].startswith(remote_root) for line in counter.read_text().splitlines()
        )
        known = tmp_path / "home" / ".ssh" / "known_hosts"
        assert known.is_file() and "[127.0.0.1]:" in known.read_text()  # trust on first use
    finally:
        subprocess.run(["rm", "-rf", remote_root], check=False)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and line.split()[1] in "ZX" for line in f)
    except FileNotFoundError:
        return False


def test_dflow_sigterm_of_the_step_kills_its_job(dflow_venv: Venv, tmp_path: Path) -> None:
    """SIGTERM to the step (pod deletion): dflow's handler removes the unfinished job."""
    counter, remote = tmp_path / "counter", tmp_path / "remote"
    task_pid = counter.with_name("counter.pid")
    # paths go through a parameter: dflow rewrites "/tmp" in the script text itself
    spec = _spec(
        tmp_path,
        counter,
        _local_machine(remote),
        single_step=True,
        produce_extra="echo $$ > {{inputs.parameters.counter}}.pid\nsleep 600\n",
    )
    with open(tmp_path / "driver.out", "wb") as out:
        driver = subprocess.Popen(
            [str(dflow_venv.python), str(DRIVER), str(spec)],
            cwd=tmp_path,
            env=_env(dflow_venv, tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not task_pid.is_file() or not task_pid.read_text().strip():
            assert driver.poll() is None, (tmp_path / "driver.out").read_text()[-4000:]
            assert time.monotonic() < deadline, "the step's job never started"
            time.sleep(0.2)
        step_pid = int(next((tmp_path / "wf").glob("*/*produce*/pid")).read_text())
        job = int(task_pid.read_text())
        assert _running(job)
        os.kill(step_pid, signal.SIGTERM)
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    output = (tmp_path / "driver.out").read_text()
    assert "Got SIGTERM, kill unfinished tasks!" in output
    deadline = time.monotonic() + 30
    while _running(job) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(job), "the job survived the step's SIGTERM"
    result = json.loads(output.strip().splitlines()[-1])
    assert result["phase"] == "Failed"
    assert _events(counter) == ["produce start"]


def _bohrium_machine(tmp: Path) -> dict[str, Any]:
    """What a dpgen2 user writes for Bohrium (dflow adds the rest of ``input_data``).

    dflow also sets a (cluster) ``remote_root``; a scratch one keeps the tests' files in
    their tmp dir (see test_dflow_bohrium_leaves_dflow_remote_root_alone).
    """
    return {
        "remote_root": str(tmp / "cluster-root"),
        "batch_type": "Bohrium",
        "context_type": "Bohrium",
        "remote_profile": {
            "email": CloudEmulator.EMAIL,
            "password": CloudEmulator.PASSWORD,
            "program_id": 1234,
            "input_data": {"scass_type": "c2_m4_cpu", "platform": "ali"},
        },
    }


def _the_job(emulator: CloudEmulator) -> Any:
    jobs = list(emulator.service.jobs.values())
    assert len(jobs) == 1, [j.body for j in jobs]
    return jobs[0]


def test_dflow_bohrium_backend(
    dflow_venv: Venv, tmp_path: Path, cloud_emulator: CloudEmulator
) -> None:
    """Bohrium through dflow against the cloud emulator: input_data, exit code, results."""
    counter = tmp_path / "counter"
    spec = _spec(tmp_path, counter, _bohrium_machine(tmp_path), single_step=True)
    result, output = _run(dflow_venv, tmp_path, spec)
    _assert_succeeded(result, output, counter, steps=("produce",))
    job = _the_job(cloud_emulator)
    # dflow fills input_data (image from the template, job name, log file) and reads the
    # exit code back with machine.get_exit_code(job) (the step would fail otherwise)
    assert job.exit_code == 0
    assert "dpdisp-standin" in json.dumps(job.body)
    assert cloud_emulator.rejected == []


@pytest.mark.parametrize(
    ("failures", "status"),
    [
        (1, 400),  # the job API refuses once: RequestInfoException reaches dflow's loop
        (4, 503),
    ],  # down for longer than the client's own 3 retries
    ids=["refused-once", "outage"],
)
def test_dflow_bohrium_retry_on_submission_error(
    dflow_venv: Venv,
    tmp_path: Path,
    cloud_emulator: CloudEmulator,
    failures: int,
    status: int,
) -> None:
    """dpgen2's retry_on_submission_error around a failing job API: one job, run once."""
    counter = tmp_path / "counter"
    spec = _spec(
        tmp_path,
        counter,
        _bohrium_machine(tmp_path),
        single_step=True,
        executor={"retry_on_submission_error": 3},
    )
    cloud_emulator.fail_next(failures, status=status, path_prefix="/brm/v2/job/add")
    result, output = _run(dflow_venv, tmp_path, spec)
    _assert_succeeded(result, output, counter, steps=("produce",))
    attempts = [line for line in output.splitlines() if re.fullmatch(r"retry \d+", line)]
    if status == 400:
        # the exception dflow imports from dpdispatcher.dpcloudserver.client, caught there
        assert "RequestInfoException" in output, output[-4000:]
        assert attempts == ["retry 0", "retry 1"]
    assert 1 <= len(attempts) < 3  # dflow's retries were not exhausted
    assert _the_job(cloud_emulator).exit_code == 0  # created once, ran once
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == failures + 1
    assert cloud_emulator.rejected == []


def test_dflow_bohrium_leaves_dflow_remote_root_alone(
    dflow_venv: Venv, tmp_path: Path, cloud_emulator: CloudEmulator
) -> None:
    """dflow passes its cluster remote_root even to Bohrium; nothing may be made there."""
    counter, cluster_root = tmp_path / "counter", tmp_path / "cluster-root"
    spec = _spec(tmp_path, counter, _bohrium_machine(tmp_path), single_step=True)
    result, output = _run(dflow_venv, tmp_path, spec)
    _assert_succeeded(result, output, counter, steps=("produce",))
    assert not cluster_root.exists()
