"""DP-GEN 0.14.0, fetched from PyPI at test time, driving this package (issue 8, item 7).

DP-GEN is installed ``--no-deps`` into a cached throwaway venv with the light packages
its ``run`` path imports (dargs, packaging, numpy, dpdata, ase, monty, and pymatgen,
which its vasp fp stage needs for KPOINTS); this checkout is put first on
``PYTHONPATH``, so DP-GEN's ``from dpdispatcher import Machine, Resources, Submission,
Task`` is this tree. Nothing of DP-GEN is vendored.

* ``dpgen run param.json machine.json`` runs one full iteration (train, model_devi, fp,
  each through ``dpgen.dispatcher.Dispatcher.make_submission``) and the next training,
  with DP-GEN's own ``machine-local.json`` example (``shell`` / ``local`` /
  ``lazylocal`` spellings) plus ``cvasp`` and ``mark_failure`` in the fp resources. The
  driver is killed (SIGKILL) while the fp jobs run and started again, as a user would;
  every stand-in program must have run exactly once per task.
* The same run and kill with DP-GEN's ``machine-slurm-qe.json`` example (``slurm`` /
  ``ssh`` spellings): every stage on the real Slurm through the real sshd, from a fresh
  ``HOME`` (no ``known_hosts``), the stand-ins run by the cluster user inside Slurm jobs.
* ``dpgen init_bulk`` on DP-GEN's own ``examples/init/ch4.json`` (relax, scale/perturb,
  md, collect): its relax and md stages submit through ``make_submission`` with ``cvasp``
  in the fp resources (where the issue saw it die).
* DP-GEN's example machine files (from the 0.11.1 sdist, the last that ships them) are
  validated through DP-GEN's own ``run_mdata_arginfo`` / ``simplify_mdata_arginfo``,
  which embed ``Machine.arginfo()`` and ``Resources.arginfo()``, exactly as its
  ``tests/test_check_examples.py`` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests._venvs import Venv, build, sdist
from tests.clients import dpgen_case as case
from tests.conftest import SSH_AND_SLURM, require

pytestmark = pytest.mark.slow

DPGEN = "dpgen==0.14.0"
#: what ``dpgen.dispatcher``, ``dpgen.generator.run`` and its vasp fp stage import
DPGEN_LIGHT_DEPS = ("dargs", "packaging", "numpy", "dpdata", "ase", "monty", "pymatgen")
EXAMPLES_SDIST = "dpgen==0.11.1"


@pytest.fixture(scope="module")
def dpgen_venv() -> Venv:
    return build("dpgen", [DPGEN], DPGEN_LIGHT_DEPS)


@pytest.fixture(scope="module")
def dpgen_sdist() -> Path:
    return sdist(EXAMPLES_SDIST)


_CHECK_MACHINE_EXAMPLES = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("check_examples", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
from dpgen.util import normalize
machine_schemas = {id(mod.run_mdata): "run_mdata", id(mod.simplify_mdata): "simplify_mdata"}
results = {}
for arginfo, fn in mod.input_files:
    if id(arginfo) not in machine_schemas:
        continue  # param (jdata) files: DP-GEN's own schemas, nothing of ours inside
    with open(fn) as f:
        data = json.load(f)
    try:
        normalize(arginfo, data)
        results[str(fn)] = None
    except Exception as exc:  # noqa: BLE001 - reported per file
        results[str(fn)] = f"{type(exc).__name__}: {exc}"
print(json.dumps(results))
"""


def test_dpgen_example_machine_files_pass_dpgen_arginfo(
    dpgen_venv: Venv, dpgen_sdist: Path
) -> None:
    """Every machine file DP-GEN's test_check_examples lists passes DP-GEN's strict check."""
    test_file = dpgen_sdist / "tests" / "test_check_examples.py"
    done = subprocess.run(
        [str(dpgen_venv.python), "-c", _CHECK_MACHINE_EXAMPLES, str(test_file)],
        env=dpgen_venv.env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=dpgen_sdist,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    assert len(results) >= 10, results  # 12 machine files in 0.11.1's list
    failures = {
        Path(fn).relative_to(dpgen_sdist).as_posix(): err for fn, err in results.items() if err
    }
    assert failures == {}


def _start_dpgen(
    venv: Venv, work: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(venv.bindir / "dpgen"), "run", "param.json", "machine.json"],
            cwd=work,
            env=env or venv.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"dpgen run did not finish in {timeout} s:\n{log.read_text()[-4000:]}")
    assert rc == 0, log.read_text()[-6000:]


def _expect_once(found: dict[str, int], number: int, what: str) -> None:
    assert len(found) == number, f"{what}: {found}"
    assert set(found.values()) == {1}, f"{what} ran more than once: {found}"


def _run_killed_in_fp_and_rerun(
    venv: Venv,
    work: Path,
    counter: Path,
    gate: Path,
    kill_after: int,
    env: dict[str, str] | None = None,
) -> None:
    """``dpgen run`` until ``kill_after`` fp tasks started (held at ``gate``), SIGKILL of
    the driver only (its jobs keep running), open the gate, run again to the next
    training; then check that every stand-in ran once per task and what came back."""
    log = work.parent / "dpgen.out"
    first = _start_dpgen(venv, work, log, env)
    deadline = time.monotonic() + 600
    while len(case.counts(counter, "vasp")) < kill_after:
        if first.poll() is not None:
            pytest.fail(f"dpgen run ended before fp ran:\n{log.read_text()[-6000:]}")
        if time.monotonic() > deadline:
            os.killpg(first.pid, signal.SIGKILL)
            pytest.fail(f"fp never started:\n{log.read_text()[-6000:]}")
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)  # the driver only: its fp jobs keep running
    first.wait()
    assert (work / "record.dpgen").read_text().split("\n")[-2] == "0 6"  # make_fp done

    gate.touch()
    second = _start_dpgen(venv, work, log, env)
    _wait(second, 600, log)

    output = log.read_text()
    assert (work / "record.dpgen").read_text().splitlines()[-1] == "1 2"  # next train done
    _expect_once(
        case.counts(counter, "dp", first_arg="train"),
        2 * case.NUMB_MODELS,
        "dp train (iterations 0 and 1)",
    )
    _expect_once(case.counts(counter, "dp", first_arg="freeze"), 2 * case.NUMB_MODELS, "dp freeze")
    _expect_once(case.counts(counter, "lmp"), len(case.MD_TEMPS), "lmp")
    _expect_once(case.counts(counter, "vasp"), case.FP_TASK_MAX, "vasp start")
    _expect_once(case.counts(counter, "vasp", "end"), case.FP_TASK_MAX, "vasp end")
    # what came back is what DP-GEN read: models, deviations, OUTCARs -> labelled data
    it0 = work / "iter.000000"
    assert sorted(p.name for p in (it0 / "01.model_devi").glob("graph.*.pb")) == [
        f"graph.{i:03d}.pb" for i in range(case.NUMB_MODELS)
    ]
    assert len(list(it0.glob("01.model_devi/task.*/model_devi.out"))) == len(case.MD_TEMPS)
    assert len(list(it0.glob("02.fp/task.*/OUTCAR"))) == case.FP_TASK_MAX
    assert list(it0.glob("02.fp/data.*/*/set.*/energy.npy")), "post_fp labelled nothing"
    # iteration 1 trains on the initial data plus the fp labels (forward_common_files)
    assert case.counts(counter, "dp", "systems:1") == dict.fromkeys(
        case.counts(counter, "dp", "systems:1"), 1
    )
    assert len(case.counts(counter, "dp", "systems:1")) == case.NUMB_MODELS
    assert len(case.counts(counter, "dp", "systems:2")) == case.NUMB_MODELS
    it1_train = work / "iter.000001" / "00.train"
    assert len(list(it1_train.glob("[0-9][0-9][0-9]/frozen_model.pb"))) == case.NUMB_MODELS
    # DP-GEN's own keys in the fp resources are accepted with a warning naming them
    for key in ("cvasp", "mark_failure"):
        assert any("WARNING" in line and key in line for line in output.splitlines()), key


def test_dpgen_run_iteration_killed_in_fp_and_rerun(
    dpgen_venv: Venv, dpgen_sdist: Path, tmp_path: Path
) -> None:
    """train -> model_devi -> fp (killed, rerun) -> post_fp -> next train, each task once,
    with DP-GEN's ``machine-local.json`` example (Shell, LocalContext / LazyLocal)."""
    work, bindir = tmp_path / "run", tmp_path / "bin"
    counter, gate = tmp_path / "counter.txt", tmp_path / "gate"
    case.write_standins(bindir, dpgen_venv, counter, gate)
    example = dpgen_sdist / "examples" / "machine" / "DeePMD-kit-1.x" / "machine-local.json"
    case.prepare(work, dpgen_venv, example, bindir, tmp_path / "remote")
    fp_jobs = -(-case.FP_TASK_MAX // 2)  # fp group_size 2 in the example machine file
    _run_killed_in_fp_and_rerun(dpgen_venv, work, counter, gate, kill_after=fp_jobs)


def test_dpgen_run_slurm_over_ssh_killed_in_fp_and_rerun(
    dpgen_venv: Venv, dpgen_sdist: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """The same iteration with DP-GEN's ``machine-slurm-qe.json`` example: every stage on
    the real Slurm through the real sshd (``slurm`` / ``ssh`` spellings), from a fresh
    ``HOME`` with no ``known_hosts``; killed while the fp jobs run or wait in the queue."""
    require(*SSH_AND_SLURM, what="real sshd and Slurm")
    user = os.environ["DPDISP_SSH_USER"]
    work, bindir = tmp_path / "run", shared_dir / "bin"
    counter, gate = shared_dir / "counter.txt", shared_dir / "gate"
    # the cluster user runs the stand-ins: the system Python, not root's venv
    case.write_standins(bindir, dpgen_venv, counter, gate, python="/usr/bin/python3")
    remote_root = f"/home/{user}/dpdisp-dpgen-{uuid.uuid4().hex[:8]}"
    profile = {
        "hostname": os.environ["DPDISP_SSH_HOST"],
        "port": int(os.environ["DPDISP_SSH_PORT"]),
        "username": user,
        "key_filename": os.environ["DPDISP_SSH_KEY_ED25519"],
    }
    example = dpgen_sdist / "examples" / "machine" / "DeePMD-kit-1.x" / "machine-slurm-qe.json"
    mdata = case.slurm_ssh_machine(example, bindir, remote_root, profile)
    case.prepare(work, dpgen_venv, example, bindir, tmp_path / "unused", mdata=mdata)
    # "make sure that directory of work_path exists" (the example's own comment)
    for stage in ("train", "model_devi", "fp"):
        subprocess.run(["install", "-d", "-o", user, f"{remote_root}/{stage}"], check=True)
    home = tmp_path / "home"
    home.mkdir()
    try:
        # fp group_size 1 on a two-CPU node: one started task is enough, others may queue
        _run_killed_in_fp_and_rerun(
            dpgen_venv, work, counter, gate, kill_after=1, env=dpgen_venv.env(HOME=str(home))
        )
        assert "[127.0.0.1]:" in (home / ".ssh" / "known_hosts").read_text()  # first use
        for program in ("dp", "lmp", "vasp"):  # every stage ran inside Slurm jobs
            jobs = case.slurm_job_ids(counter, program)
            assert jobs and all(job.isdigit() for job in jobs.values()), (program, jobs)
    finally:
        subprocess.run(["rm", "-rf", remote_root], check=False)


def test_dpgen_init_bulk_relax_md_collect(
    dpgen_venv: Venv, dpgen_sdist: Path, tmp_path: Path
) -> None:
    """``dpgen init_bulk`` on DP-GEN's own ch4.json example: relax and md through
    ``make_submission`` with ``cvasp`` in the fp resources, every task once."""
    work, bindir, counter = tmp_path / "init", tmp_path / "bin", tmp_path / "counter.txt"
    case.write_standins(bindir, dpgen_venv, counter, gate=None)
    example = dpgen_sdist / "examples" / "machine" / "DeePMD-kit-1.x" / "machine-local.json"
    case.prepare_init_bulk(
        work, dpgen_sdist / "examples" / "init", example, bindir, tmp_path / "remote"
    )
    param = json.loads((work / "ch4.json").read_text())
    done = subprocess.run(
        [str(dpgen_venv.bindir / "dpgen"), "init_bulk", "ch4.json", "machine.json"],
        cwd=work,
        env=dpgen_venv.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    out_dir = next(work.glob("CH4.POSCAR.*"))
    relax = sorted(p.parent.name for p in out_dir.glob("00.place_ele/sys-*/OUTCAR"))
    md = list(out_dir.glob("02.md/sys-*/scale-*/*/OUTCAR"))
    assert relax and len(md) == len(param["scale"]) * (param["pert_numb"] + 1)
    vasp = case.counts(counter, "vasp")
    _expect_once(vasp, len(relax) + len(md), "vasp (relax + md)")
    _expect_once(case.counts(counter, "vasp", "end"), len(relax) + len(md), "vasp end")
    assert list(out_dir.glob("02.md/sys-*/deepmd/set.*/energy.npy")), "stage 4 collected nothing"
    assert any("WARNING" in line and "cvasp" in line for line in output.splitlines())
