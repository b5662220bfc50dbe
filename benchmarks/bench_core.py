#!/usr/bin/env python3
"""Core benchmark: many trivial tasks on Shell + LocalContext, ours against the original.

What it measures (each in fresh temporary directories, in one run of this script):

1. **Wall time, ours vs. the original dpdispatcher 1.1.0.**  ``--tasks`` (200) tasks, each
   ``echo $i > out.txt`` in its own directory with ``out.txt`` as its one backward file, on
   ``batch_type=Shell`` + ``context_type=LocalContext``, ``group_size=1`` (one job per task,
   the usual setting), everything else left at its default: ``run_submission()`` is called
   with no arguments, so ``check_interval`` is each package's default (30 s for both).  The
   time runs from building the Machine/Resources/Tasks/Submission to ``run_submission``
   returning (results downloaded, job root cleaned).  Interpreter start-up and
   ``import dpdispatcher`` are not in it; import time is reported separately.  Each package
   runs in its own child process: ours with this interpreter, the original with the
   interpreter of the throwaway virtual environment the tests share (``tests/_venvs.py``,
   filled from PyPI on first use and cached in ``~/.cache/dpdisp-tests``; ``--orig-venv``
   points at another one).  Ours is run ``--repeat`` times and the median is kept; the original once
   (its time is dominated by its fixed poll interval, so repeating it tells nothing new).

2. **Dispatcher overhead per task, ours, group_size 10** (``--group-size``).  Overhead =
   wall time of our ``run_submission`` minus the time the tasks themselves need, divided by
   the number of tasks.  "The time the tasks need" is measured by running the very job
   scripts our package generates, directly with bash and without any dispatcher: a
   ``dry_run`` submission of the same tasks in a separate temporary tree writes the scripts
   (and the task directories) without submitting; then every ``.<job_hash>.sub`` is started
   with ``bash`` at once (the Shell backend also runs all jobs concurrently) and we wait for
   all of them.  What remains after subtracting is what the dispatcher adds: validation,
   hashing, rendering, file writes, submit commands, status polls (including the sleeps
   between polls), download and clean.  The same split is printed for group_size 1: there
   the scripts alone are a floor that no dispatcher using one bash process per job can go
   under, which puts the 0.1x target in perspective on a small machine.

3. **Import time** of ``import dpdispatcher`` (fresh interpreter, median of 5) for both.

Usage::

    python benchmarks/bench_core.py                 # 200 tasks, ours and the original
    python benchmarks/bench_core.py --tasks 50 --skip-original

Targets (issue 2): ours <= 0.1x the original's wall time; overhead <= 5 ms per task.
The exit code is 0 whether or not the targets are met; the table says which.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ORIG_VERSION = "1.1.0"
TARGET_RATIO = 0.1
TARGET_OVERHEAD_MS = 5.0


# --------------------------------------------------------------------------- worker side
# The worker runs in a child process, under either package.  It only uses API that both
# packages share (Machine.load_from_dict, Resources.load_from_dict, Task, Submission).


def _make_tree(root: Path, n_tasks: int) -> tuple[Path, list[str]]:
    work = root / "work"
    dirs = [f"task.{i:04d}" for i in range(n_tasks)]
    for d in dirs:
        (work / d).mkdir(parents=True)
    (root / "remote").mkdir()
    return work, dirs


def _build_submission(root: Path, n_tasks: int, group_size: int) -> object:
    from dpdispatcher import Machine, Resources, Submission, Task

    work, dirs = _make_tree(root, n_tasks)
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(work),
            "remote_root": str(root / "remote"),
        }
    )
    resources = Resources.load_from_dict(
        {
            "number_node": 1,
            "cpu_per_node": 1,
            "gpu_per_node": 0,
            "queue_name": "",
            "group_size": group_size,
        }
    )
    tasks = [
        Task(command=f"echo {i} > out.txt", task_work_path=d + "/", backward_files=["out.txt"])
        for i, d in enumerate(dirs)
    ]
    return Submission("./", machine=machine, resources=resources, task_list=tasks)


def _check_outputs(root: Path, n_tasks: int) -> None:
    for i in range(n_tasks):
        out = root / "work" / f"task.{i:04d}" / "out.txt"
        if out.read_text().strip() != str(i):
            raise SystemExit(f"benchmark: wrong or missing result {out}")


def _timed_run(root: Path, n_tasks: int, group_size: int) -> float:
    t0 = time.perf_counter()
    sub = _build_submission(root, n_tasks, group_size)
    sub.run_submission()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - t0
    _check_outputs(root, n_tasks)
    return elapsed


def _scripts_only(root: Path, n_tasks: int, group_size: int) -> float:
    """Run the generated job scripts directly with bash, all at once; return the wall time."""
    sub = _build_submission(root, n_tasks, group_size)
    sub.run_submission(dry_run=True)  # type: ignore[attr-defined]
    job_root = Path(sub.machine.context.remote_root)  # type: ignore[attr-defined]
    scripts = sorted(p.name for p in job_root.glob(".*.sub"))
    if len(scripts) != len(sub.belonging_jobs):  # type: ignore[attr-defined]
        raise SystemExit(f"benchmark: expected one script per job in {job_root}")
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["bash", s],
            cwd=job_root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for s in scripts
    ]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - t0
    if any(codes):
        raise SystemExit(f"benchmark: a job script failed when run directly: {codes}")
    return elapsed


def worker(args: argparse.Namespace) -> None:
    import dpdispatcher

    base = Path(args.workdir)
    result: dict[str, object] = {"version": dpdispatcher.__version__}
    if args.worker == "full":  # ours: the scripts run directly, then the real runs
        result["scripts"] = [
            _scripts_only(base / f"scripts{r}", args.tasks, args.group_size)
            for r in range(args.repeat)
        ]
    result["wall"] = [
        _timed_run(base / f"wall{r}", args.tasks, args.group_size) for r in range(args.repeat)
    ]
    print("RESULT " + json.dumps(result))


# --------------------------------------------------------------------------- driver side


def ensure_orig_python(venv_dir: Path | None = None) -> Path:
    """The python of a venv holding dpdispatcher==1.1.0.

    ``venv_dir``'s when given; otherwise the one the tests share (``tests/_venvs.py``,
    installed from PyPI into ``~/.cache/dpdisp-tests`` on first use).
    """
    if venv_dir is not None:
        return venv_dir / "bin" / "python"
    sys.path.insert(0, str(REPO))
    try:
        from tests._venvs import original
    finally:
        sys.path.remove(str(REPO))
    return original(ORIG_VERSION).python


def _orig_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _our_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["DPDISPATCHER_HOME"] = str(home)  # keep the state copies out of ~/.dpdispatcher
    return env


def run_worker(
    python: Path | str,
    env: dict[str, str],
    tmp: Path,
    mode: str,
    tasks: int,
    repeat: int,
    group_size: int = 1,
) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=tmp))
    cmd = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        mode,
        "--workdir",
        str(workdir),
        "--tasks",
        str(tasks),
        "--repeat",
        str(repeat),
        "--group-size",
        str(group_size),
    ]
    # cwd = the temp dir: the original writes a dpdispatcher.log into its working directory
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"benchmark worker failed ({mode}, {python})")
    shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, object] = json.loads(lines[-1][len("RESULT ") :])
    return result


def import_time(python: Path | str, env: dict[str, str], runs: int = 5) -> float:
    code = (
        "import time; t = time.perf_counter(); import dpdispatcher; print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [str(python), "-c", code],
            cwd=tempfile.gettempdir(),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def _row(name: str, value: str, note: str = "") -> str:
    return f"| {name:<44} | {value:>12} | {note:<34} |"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=200, help="number of tasks (default 200)")
    p.add_argument(
        "--skip-original",
        action="store_true",
        help="do not run the original dpdispatcher (no venv needed)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each of our measurements; the median is reported (default 3)",
    )
    p.add_argument(
        "--group-size",
        type=int,
        default=10,
        help="group_size of the overhead measurement (default 10)",
    )
    p.add_argument(
        "--orig-venv",
        type=Path,
        default=None,
        help=f"venv holding dpdispatcher=={ORIG_VERSION} (default: the tests' cached one)",
    )
    p.add_argument("--worker", choices=["wall", "full"], help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="dpd-bench-"))
    try:
        report(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(args: argparse.Namespace, tmp: Path) -> None:
    n, g = args.tasks, args.group_size
    our_env = _our_env(tmp / "home")
    rows: list[str] = []
    med = statistics.median

    ours1 = run_worker(sys.executable, our_env, tmp, "full", n, args.repeat, 1)
    our_wall = med(ours1["wall"])  # type: ignore[arg-type]
    floor1 = med(ours1["scripts"])  # type: ignore[arg-type]
    rep = f"median of {args.repeat}"
    rows.append(_row(f"ours {ours1['version']}: {n} tasks, group_size 1", f"{our_wall:.3f} s", rep))
    orig_wall = None
    if not args.skip_original:
        orig_python = ensure_orig_python(args.orig_venv)
        orig = run_worker(orig_python, _orig_env(), tmp, "wall", n, 1, 1)
        orig_wall = orig["wall"][0]  # type: ignore[index]
        rows.append(
            _row(
                f"original {orig['version']}: {n} tasks, group_size 1",
                f"{orig_wall:.3f} s",
                "1 run",
            )
        )
    rows.append(
        _row(
            f"  our {n} job scripts run directly with bash",
            f"{floor1:.3f} s",
            rep + "; no dispatcher",
        )
    )
    ours_g = run_worker(sys.executable, our_env, tmp, "full", n, args.repeat, g)
    wall_g = med(ours_g["wall"])  # type: ignore[arg-type]
    floor_g = med(ours_g["scripts"])  # type: ignore[arg-type]
    rows.append(_row(f"ours: {n} tasks, group_size {g}", f"{wall_g:.3f} s", rep))
    rows.append(
        _row(
            f"  our {-(-n // g)} job scripts run directly with bash",
            f"{floor_g:.3f} s",
            rep + "; no dispatcher",
        )
    )
    imp_ours = import_time(sys.executable, our_env)
    rows.append(_row("import dpdispatcher, ours", f"{imp_ours * 1000:.1f} ms", "median of 5"))
    if not args.skip_original:
        imp_orig = import_time(orig_python, _orig_env())
        rows.append(
            _row("import dpdispatcher, original", f"{imp_orig * 1000:.1f} ms", "median of 5")
        )

    print(_row("measurement", "value", "note"))
    print("|" + "-" * 46 + "|" + "-" * 14 + "|" + "-" * 36 + "|")
    print("\n".join(rows))
    print()
    if orig_wall is not None:
        ratio = our_wall / orig_wall
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(
            f"wall-time ratio ours/original, group_size 1: {ratio:.3f}x (original "
            f"{orig_wall / our_wall:.1f}x slower; target <= {TARGET_RATIO}x: {verdict})"
        )
        print(
            f"  for scale: the job scripts alone, without any dispatcher, take "
            f"{floor1 / orig_wall:.3f}x the original's time on this machine"
        )
    for size, wall, floor in ((g, wall_g, floor_g), (1, our_wall, floor1)):
        per_task = (wall - floor) / n * 1000
        target = (
            f"  (target <= {TARGET_OVERHEAD_MS} ms: "
            f"{'met' if per_task <= TARGET_OVERHEAD_MS else 'NOT met'})"
            if size == g
            else ""
        )
        print(
            f"dispatcher overhead, group_size {size}: ({wall:.3f} s - {floor:.3f} s) / {n} "
            f"tasks = {per_task:.2f} ms/task{target}"
        )


if __name__ == "__main__":
    main()
