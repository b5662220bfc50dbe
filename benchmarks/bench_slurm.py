#!/usr/bin/env python3
"""Slurm benchmark: 100 jobs on the real test cluster, ours against the original 1.1.0.

What it measures, for each package, in a fresh temporary tree:

1. **Scheduler commands per poll cycle.**  Logging wrappers for ``sbatch``, ``squeue``,
   ``sacct``, ``scontrol`` and ``scancel`` are put first on ``PATH``; each appends a line
   (time, tool, arguments) to a log and ``exec``s the real command.  A poll cycle is one
   call of the submission's state query (``update_submission_state`` /
   ``get_submission_state``, the documented API), which the child process marks in the
   same log.  For every cycle we count the status commands (``squeue``/``sacct``/
   ``scontrol``) issued before the next one.
2. **Wall time to completion**: from building Machine/Resources/Tasks/Submission to
   ``run_submission()`` returning (results back, job root cleaned), with every setting at
   its default (``run_submission()`` takes no arguments, so ``check_interval`` is each
   package's default).
3. **The floor**: the same number of trivial jobs submitted with ``sbatch`` directly and
   waited for (``--skip-floor`` skips it).  No dispatcher can finish before Slurm has run
   the jobs.  On the 2-CPU cluster of ``tests/infra/up.sh`` that alone takes 25-35 s for
   100 jobs: 8 run at a time and slurmctld starts the next wave only every ~3 s (Slurm's
   default ``SchedulerParameters=batch_sched_delay=3``; with ``batch_sched_delay=0`` the
   waves are ~1 s apart and the floor is ~15 s).  Frequent ``squeue`` calls slow those
   waves down further, so the floor is measured with the jobs' own end times.

Every Slurm command honours ``SLURM_CONF``: export it to benchmark another cluster.

The workload is ``--jobs`` (100) tasks, ``group_size`` 1 (one Slurm job each), each
``echo $i > out.txt`` with ``out.txt`` as backward file, ``batch_type=Slurm`` +
``context_type=LocalContext``, partition ``normal``, one CPU per job.

The original is installed on first use into the throwaway virtual environment the tests
share (``tests/_venvs.py``, cached in ``~/.cache/dpdisp-tests``; ``--orig-venv`` to
change it, ``--skip-original`` to skip it).  Needs the cluster of
``tests/infra/up.sh slurm`` (run as root).  Targets (issue 3): exactly 1 status command per
poll cycle regardless of the number of jobs, and <= 0.5x the original's wall time.  The
exit code is 0 whether or not the targets are met; the table says which.

Usage::

    python benchmarks/bench_slurm.py                    # 100 jobs, ours and the original
    python benchmarks/bench_slurm.py --jobs 20 --skip-original
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
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import ensure_orig_python

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ORIG_VERSION = "1.1.0"
TOOLS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")
STATUS_TOOLS = ("squeue", "sacct", "scontrol")
TARGET_RATIO = 0.5


# --------------------------------------------------------------------------- worker side
# Runs in a child process under either package, using only API both share.


def _mark_cycles(log: Path) -> None:
    """Write a CYCLE line to the command log at every state query of a submission."""
    from dpdispatcher import submission as module

    depth = threading.local()
    for name in ("update_submission_state", "get_submission_state"):
        original = getattr(module.Submission, name, None)
        if original is None:
            continue

        def marked(self: Any, *args: Any, _orig: Any = original, **kwargs: Any) -> Any:
            outer = getattr(depth, "n", 0) == 0
            if outer:  # one mark even if one of the methods calls the other
                with log.open("a") as fh:
                    fh.write(f"{time.time():.6f} CYCLE\n")
            depth.n = getattr(depth, "n", 0) + 1
            try:
                return _orig(self, *args, **kwargs)
            finally:
                depth.n -= 1

        setattr(module.Submission, name, marked)


def worker(args: argparse.Namespace) -> None:
    from dpdispatcher import Machine, Resources, Submission, Task

    root = Path(args.workdir)
    _mark_cycles(Path(args.log))
    work = root / "work"
    dirs = [f"task.{i:04d}" for i in range(args.jobs)]
    for d in dirs:
        (work / d).mkdir(parents=True)
    (root / "remote").mkdir()
    t0 = time.perf_counter()
    machine = Machine.load_from_dict(
        {
            "batch_type": "Slurm",
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
            "queue_name": "normal",
            "group_size": 1,
        }
    )
    tasks = [
        Task(command=f"echo {i} > out.txt", task_work_path=d + "/", backward_files=["out.txt"])
        for i, d in enumerate(dirs)
    ]
    Submission("./", machine=machine, resources=resources, task_list=tasks).run_submission()
    wall = time.perf_counter() - t0
    for i, d in enumerate(dirs):
        if (work / d / "out.txt").read_text().strip() != str(i):
            raise SystemExit(f"benchmark: wrong or missing result in {d}")
    print("RESULT " + json.dumps({"wall": wall}))


# --------------------------------------------------------------------------- driver side
def write_wrappers(bindir: Path, log: Path) -> None:
    """Logging wrappers that exec the real scheduler commands."""
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            raise SystemExit(
                f"benchmark: {tool} not found: bring Slurm up with `bash tests/infra/up.sh slurm`"
            )
        wrapper = bindir / tool
        wrapper.write_text(
            "#!/bin/bash\n"
            f"printf '%s %s %s\\n' \"$EPOCHREALTIME\" {tool} \"$*\" >> '{log}'\n"
            f"exec '{real}' \"$@\"\n"
        )
        wrapper.chmod(0o755)


def _orig_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def _our_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_one(label: str, python: Path, jobs: int, keep: bool) -> dict[str, Any]:
    """Run the worker for one package with the wrappers on PATH; analyse its command log."""
    tmp = Path(tempfile.mkdtemp(prefix=f"dpd-bench-slurm-{label}-"))
    log = tmp / "commands.log"
    log.touch()
    write_wrappers(tmp / "bin", log)
    extra = {
        "PATH": f"{tmp / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "DPDISPATCHER_HOME": str(tmp / "dpdhome"),
        "HOME": str(tmp / "home"),
    }
    (tmp / "home").mkdir()
    env = _our_env(extra) if label == "ours" else _orig_env(extra)
    cmd = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        "--workdir",
        str(tmp / "run"),
        "--log",
        str(log),
        "--jobs",
        str(jobs),
    ]
    (tmp / "run").mkdir()
    done = subprocess.run(
        cmd, cwd=tmp / "run", env=env, capture_output=True, text=True, check=False
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(
            f"benchmark: {label} failed (exit {done.returncode}):\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    result.update(analyse(log.read_text()))
    if keep:
        print(f"{label}: kept {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def repeated(label: str, python: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``--repeat`` runs of one package; the run with the median wall time is kept."""
    runs = sorted(
        (run_one(label, python, args.jobs, args.keep) for _ in range(args.repeat)),
        key=lambda r: float(r["wall"]),
    )
    kept = runs[len(runs) // 2]
    kept["walls"] = [r["wall"] for r in runs]
    return kept


def analyse(log_text: str) -> dict[str, Any]:
    """Per-cycle status command counts and per-tool totals from a command log."""
    totals = dict.fromkeys(TOOLS, 0)
    per_cycle: list[int] = []
    before_first = 0
    for line in log_text.splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) < 2:
            continue
        tool = fields[1]
        if tool == "CYCLE":
            per_cycle.append(0)
            continue
        totals[tool] = totals.get(tool, 0) + 1
        if tool in STATUS_TOOLS:
            if per_cycle:
                per_cycle[-1] += 1
            else:
                before_first += 1
    busy = [n for n in per_cycle if n > 0]
    return {
        "totals": totals,
        "cycles": len(per_cycle),
        "busy_cycles": len(busy),
        "per_cycle_min": min(busy) if busy else 0,
        "per_cycle_max": max(per_cycle) if per_cycle else 0,
        "per_cycle_mean": statistics.fmean(busy) if busy else 0.0,
        "status_outside_cycles": before_first,
    }


def slurm_alone(jobs: int) -> float:
    """Seconds Slurm itself needs for the same number of trivial jobs (the floor).

    The jobs are submitted directly with sbatch (no dispatcher), with a header like ours;
    each appends its end time to a file. The floor is the last end time minus the start of
    the submissions. (Waiting is done with a slow poll: polling squeue often delays
    slurmctld's scheduling of the next wave of jobs noticeably.)
    """
    tmp = Path(tempfile.mkdtemp(prefix="dpd-bench-slurm-floor-"))
    ends = tmp / "ends"
    script = tmp / "job.sh"
    script.write_text(
        "#!/bin/bash -l\n#SBATCH --nodes 1\n#SBATCH --ntasks-per-node 1\n"
        "#SBATCH --partition normal\n#SBATCH --output=/dev/null\n"
        f"echo $EPOCHREALTIME >> {ends}\n"
    )
    t0 = time.time()
    ids = [
        subprocess.run(
            ["sbatch", "--parsable", str(script)],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for _ in range(jobs)
    ]
    while subprocess.run(
        ["squeue", "--noheader", "--format=%i", f"--jobs={','.join(ids)}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip():
        time.sleep(2.0)
    last = max(float(x) for x in ends.read_text().split())
    shutil.rmtree(tmp, ignore_errors=True)
    return last - t0


def foreign_jobs() -> int:
    out = subprocess.run(
        ["squeue", "--noheader", "--format=%i"], capture_output=True, text=True, check=False
    )
    return len(out.stdout.split())


def report(results: dict[str, dict[str, Any]], jobs: int, floor: float | None) -> None:
    print(
        f"\nSlurm benchmark: {jobs} jobs (group_size 1), default settings, {os.cpu_count()} CPUs\n"
    )
    head = (
        f"{'package':<10} {'wall s':>8} {'cycles':>7} {'status cmds/cycle':>22} "
        f"{'sbatch':>7} {'squeue':>7} {'sacct':>6} {'scontrol':>9} {'scancel':>8}"
    )
    print(head)
    print("-" * len(head))
    for label, r in results.items():
        t = r["totals"]
        per = f"{r['per_cycle_min']}..{r['per_cycle_max']} (mean {r['per_cycle_mean']:.1f})"
        print(
            f"{label:<10} {r['wall']:>8.1f} {r['busy_cycles']:>7} {per:>22} "
            f"{t['sbatch']:>7} {t['squeue']:>7} {t['sacct']:>6} {t['scontrol']:>9} "
            f"{t['scancel']:>8}"
        )
        if len(r["walls"]) > 1:
            print(
                f"{'':<10} (median of {len(r['walls'])} runs: "
                f"{', '.join(f'{w:.1f}' for w in r['walls'])} s)"
            )
    if floor is not None:
        print(
            f"{'Slurm alone':<10} {floor:>8.1f}   (the same {jobs} trivial jobs submitted "
            "with sbatch directly and waited for: the floor)"
        )
    print(
        "\n(cycles = poll cycles that issued a status command; status commands are "
        "squeue + sacct + scontrol)"
    )
    if floor is not None:
        for label, r in results.items():
            print(f"{label}: {r['wall'] - floor:+.1f} s over the floor")
    ours = results.get("ours")
    if ours:
        one = ours["per_cycle_min"] == ours["per_cycle_max"] == 1
        print(
            f"ours: exactly 1 status command per poll cycle: {'yes' if one else 'NO'} "
            f"(target met: {one})"
        )
    orig = results.get("original")
    if ours and orig:
        ratio = ours["wall"] / orig["wall"]
        cmds = orig["per_cycle_mean"] / max(ours["per_cycle_mean"], 1e-9)
        print(
            f"wall time ours/original: {ratio:.3f}x (target <= {TARGET_RATIO}x: "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'})"
        )
        print(
            f"status commands per cycle original/ours: {cmds:.0f}x; scheduler commands in "
            f"total: ours {sum(ours['totals'].values())}, original "
            f"{sum(orig['totals'].values())}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs to submit (100)")
    parser.add_argument("--skip-original", action="store_true", help="only run ours")
    parser.add_argument(
        "--orig-venv",
        type=Path,
        default=None,
        help=f"venv holding dpdispatcher=={ORIG_VERSION} (default: the tests' cached one)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per package; the median is reported (1)"
    )
    parser.add_argument(
        "--skip-floor",
        action="store_true",
        help="do not measure Slurm alone on the same number of jobs",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary trees")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if (
        shutil.which("sbatch") is None
        or subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode != 0
    ):
        raise SystemExit("benchmark: no Slurm here; run `bash tests/infra/up.sh slurm` as root")
    if foreign_jobs():
        print(
            f"note: {foreign_jobs()} other jobs are in the queue; timings will suffer",
            file=sys.stderr,
        )
    results: dict[str, dict[str, Any]] = {}
    python = None if args.skip_original else ensure_orig_python(args.orig_venv)
    floor = None if args.skip_floor else slurm_alone(args.jobs)
    results["ours"] = repeated("ours", Path(sys.executable), args)
    if python is not None:
        results["original"] = repeated("original", python, args)
    report(results, args.jobs, floor)


if __name__ == "__main__":
    main()
