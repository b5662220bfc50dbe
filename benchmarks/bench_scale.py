#!/usr/bin/env python3
"""Scale benchmark: very many tasks, ours against the original dpdispatcher 1.1.0.

Every measurement runs in a child process of its own, under either package: ours with this
interpreter and the repository on ``PYTHONPATH``, the original with the interpreter of a
throwaway virtual environment the tests share (``tests/_venvs.py``, filled from PyPI on
first use, cached in ``~/.cache/dpdisp-tests``). The children
use only API both packages share.

1. **Build** for N = 1,000 / 10,000 / 100,000 tasks (and 1,000,000 for ours alone): the time
   from the first ``Task(...)`` to the state file written, in one process: N tasks (each two
   forward files and one backward file), ``Machine``, ``Resources`` (``group_size`` 10),
   ``Submission``, ``generate_jobs()``, ``get_hash()`` and ``submission_to_json()``, which
   serialises the submission to JSON and writes the state file (both packages serialise
   inside it), on ``Shell`` + ``LazyLocalContext`` (nothing runs). Wall time,
   CPU time and the peak resident memory of the process (``ru_maxrss``; it includes the
   interpreter and the imports), and the size of the state file.
2. **Poll** at ``--poll-jobs`` (10,000) jobs of one task each on ``Shell`` +
   ``LocalContext``: the dispatcher CPU time (``time.process_time``, children excluded) of
   one poll cycle, ``update_submission_state()``, ``check_all_finished()``,
   ``handle_unexpected_submission_state()`` and saving what changed, as the packages' own
   poll loops do it (ours: ``persist_changes``, which appends the jobs whose state alone
   changed to the journal beside the state file; the original: the state write).
   The jobs are marked submitted with made-up PIDs and a stand-in ``ps`` goes first on
   ``PATH``: starting 10,000 real processes would measure the machine, not the dispatcher.
   It prints a ``ps -o pid=,stat=,args=`` table of every PID as a running job script
   ("running"), or nothing and exit status 1 like the real ``ps`` when no PID is alive
   ("finished": the job's finish tag is then written in the job root; first 1% of the
   jobs end, as in a usual poll, then all the others). The job root
   holds what a real run leaves there besides the finish tags (seen after a Shell run:
   each job's script and its ``.run`` body, failure flag and job id record, and each
   task's directory), so that looking for finish tags meets a directory of a real size
   (60,000 entries at 10,000 jobs). Five numbers: the
   first poll after submission (every job changes to running: saved), a steady poll
   while they run (nothing changed: nothing written), a poll that finds 1% of them
   finished (their finish tags checked, saved), the poll that finds all the others
   finished (one batched check of their finish tags, saved), and a steady poll after that.
3. **End to end**: ``--e2e-tasks`` (10,000) trivial tasks (``echo $i > out.txt``, one
   backward file each) with ``group_size`` 100 on ``Shell`` + ``LocalContext``, from building
   the tasks to ``run_submission()`` returning with the results back (default settings,
   including each package's default ``check_interval`` of 30 s). Results are checked.

It prints a markdown table, writes it with the raw numbers to ``--out`` (a JSON file), and,
when matplotlib is installed (``pip install -e .[bench]``), a log-log plot of build time and
peak memory against N for both packages (``--plot``, by default
``docs/figures/bench_scale.png``, which the docs' Performance page shows).

Usage::

    python benchmarks/bench_scale.py                    # everything, both packages
    python benchmarks/bench_scale.py --sizes 1000 10000 --skip-original --skip-e2e

Targets (issue 10): at 100,000 tasks <= 0.2x the original's wall time and <= 0.5x its peak
memory; 1,000,000 tasks in <= 30 s and <= 2 GB; a poll at 10,000 jobs <= 50 ms of dispatcher
CPU; the 10,000-task run <= 0.3x the original. The exit code is 0 whether or not they are met.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from bench_core import _orig_env, _our_env, ensure_orig_python  # noqa: E402

DEFAULT_PLOT = REPO / "docs" / "figures" / "bench_scale.png"
MB = 1024 * 1024

# --------------------------------------------------------------------------- child side


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _resources(group_size: int) -> Any:
    from dpdispatcher import Resources

    return Resources.load_from_dict(
        {
            "number_node": 1,
            "cpu_per_node": 1,
            "gpu_per_node": 0,
            "queue_name": "",
            "group_size": group_size,
        }
    )


def child_build(root: Path, n: int) -> dict[str, Any]:
    """Tasks to state file, nothing run."""
    from dpdispatcher import Machine, Submission, Task

    wall, cpu = time.perf_counter(), time.process_time()
    tasks = [
        Task(
            command=f"run.sh {i}",
            task_work_path=f"tasks/{i:07d}/",
            forward_files=["in.txt", "conf.json"],
            backward_files=["out.txt"],
        )
        for i in range(n)
    ]
    machine = Machine.load_from_dict(
        {"batch_type": "Shell", "context_type": "LazyLocalContext", "local_root": str(root)}
    )
    sub = Submission(work_base="./", machine=machine, resources=_resources(10), task_list=tasks)
    sub.generate_jobs()
    sub.get_hash()
    machine.context.bind_submission(sub)
    sub.submission_to_json()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    state = root / f"{sub.submission_hash}.json"
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_mb": _peak_rss_mb(),
        "state_mb": state.stat().st_size / MB,
    }


def _fake_ps(bindir: Path, table: Path) -> None:
    """A ``ps`` printing ``table`` (exit 0) or, when it is empty, nothing (exit 1)."""
    bindir.mkdir(parents=True, exist_ok=True)
    ps = bindir / "ps"
    ps.write_text(f'#!/bin/sh\n[ -s "{table}" ] || exit 1\nexec cat "{table}"\n')
    ps.chmod(0o755)


def _fill_job_root(job_root: Path, job_hashes: list[str], tasks: list[Any]) -> None:
    """What a Shell run leaves in the job root besides the finish tags (seen after a real
    run): per job its script, the script's ``.run`` body, the failure flag and the job id
    record; per task its directory."""
    for h in job_hashes:
        for name in (f".{h}.sub", f".{h}.sub.run", f"{h}_flag_if_job_task_fail", f"{h}_job_id"):
            (job_root / name).touch()
    for task in tasks:
        (job_root / task.task_work_path).mkdir(exist_ok=True)


def _one_poll(sub: Any) -> float:
    """Dispatcher CPU (ms) of one cycle of the poll loop: query, (re)submit, write if needed.

    Ours reports whether anything changed and writes only then; the original's methods
    return nothing and its loop writes the state on every cycle, so it is written here too.
    """
    cpu = time.process_time()
    changed = sub.update_submission_state()
    sub.check_all_finished()
    changed_too = sub.handle_unexpected_submission_state()
    if hasattr(sub, "persist_changes"):  # ours: the journal when only states changed
        if changed or changed_too:
            sub.persist_changes(submitted=bool(changed_too))
    elif changed is None or changed or changed_too:
        sub.submission_to_json()
    return (time.process_time() - cpu) * 1000


def child_poll(root: Path, n: int) -> dict[str, Any]:
    """Dispatcher CPU of one poll cycle at ``n`` running, then finished, jobs."""
    from dpdispatcher import Machine, Submission, Task
    from dpdispatcher.utils.job_status import JobStatus

    work, remote, table = root / "work", root / "remote", root / "ps-table"
    work.mkdir()
    remote.mkdir()
    _fake_ps(root / "bin", table)
    os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(work),
            "remote_root": str(remote),
        }
    )
    tasks = [Task(command="true", task_work_path=f"t{i}/") for i in range(n)]
    sub = Submission(work_base="./", machine=machine, resources=_resources(1), task_list=tasks)
    sub.generate_jobs()
    machine.context.bind_submission(sub)
    job_root = Path(machine.context.remote_root)
    job_root.mkdir(parents=True, exist_ok=True)
    _fill_job_root(job_root, [job.job_hash for job in sub.belonging_jobs], tasks)
    rows = []
    for i, job in enumerate(sub.belonging_jobs):
        job.job_id = str(100000 + i)
        job.job_state = JobStatus.waiting
        rows.append(f"{job.job_id} S bash {job.script_file_name}\n")
    table.write_text("".join(rows))
    sub.submission_to_json()
    out = {"first_running_ms": _one_poll(sub), "running_ms": _one_poll(sub)}
    states = {int(job.job_state) for job in sub.belonging_jobs}
    few = max(1, n // 100)  # a usual poll: a few jobs ended since the last one
    table.write_text("".join(rows[few:]))
    for job in sub.belonging_jobs[:few]:
        (job_root / f"{job.job_hash}_job_tag_finished").touch()
    out["some_finishing_ms"] = _one_poll(sub)
    table.write_text("")
    for job in sub.belonging_jobs[few:]:
        (job_root / f"{job.job_hash}_job_tag_finished").touch()
    out["finishing_ms"] = _one_poll(sub)
    out["finished_ms"] = _one_poll(sub)
    done = {int(job.job_state) for job in sub.belonging_jobs}
    if states != {int(JobStatus.running)} or done != {int(JobStatus.finished)}:
        raise SystemExit(f"benchmark: unexpected job states {states} then {done}")
    return out


def child_e2e(root: Path, n: int, group_size: int) -> dict[str, Any]:
    """``n`` trivial tasks run to completion on Shell + LocalContext."""
    from dpdispatcher import Machine, Submission, Task

    work, remote = root / "work", root / "remote"
    dirs = [f"task.{i:05d}" for i in range(n)]
    for d in dirs:
        (work / d).mkdir(parents=True)
    remote.mkdir()
    wall = time.perf_counter()
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(work),
            "remote_root": str(remote),
        }
    )
    tasks = [
        Task(command=f"echo {i} > out.txt", task_work_path=d + "/", backward_files=["out.txt"])
        for i, d in enumerate(dirs)
    ]
    sub = Submission(
        work_base="./", machine=machine, resources=_resources(group_size), task_list=tasks
    )
    sub.run_submission()
    wall = time.perf_counter() - wall
    for i, d in enumerate(dirs):
        if (work / d / "out.txt").read_text().strip() != str(i):
            raise SystemExit(f"benchmark: wrong or missing result in {d}")
    return {"wall": wall, "rss_mb": _peak_rss_mb()}


def child(args: argparse.Namespace) -> None:
    import dpdispatcher

    root = Path(args.workdir)
    if args.child == "build":
        result = child_build(root, args.n)
    elif args.child == "poll":
        result = child_poll(root, args.n)
    else:
        result = child_e2e(root, args.n, args.group_size)
    result["version"] = dpdispatcher.__version__
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver side


def run_child(
    python: Path | str, env: dict[str, str], tmp: Path, mode: str, n: int, group_size: int = 1
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"{mode}-{n}-", dir=tmp))
    cmd = [
        str(python),
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--workdir",
        str(workdir),
        "--n",
        str(n),
        "--group-size",
        str(group_size),
    ]
    # cwd = the temp dir: the original writes a dpdispatcher.log into its working directory
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    shutil.rmtree(workdir, ignore_errors=True)
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"benchmark child failed ({mode} {n}, {python})")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    print(f"  {mode:5} n={n:<8} {result}", file=sys.stderr, flush=True)
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    ours_env = _our_env(tmp / "home")
    packages: dict[str, tuple[Path | str, dict[str, str]]] = {"ours": (sys.executable, ours_env)}
    if not args.skip_original:
        packages["original"] = (ensure_orig_python(args.orig_venv), _orig_env())
    results: dict[str, Any] = {name: {"build": {}, "poll": None, "e2e": None} for name in packages}
    if args.original_results and "original" in results:
        # measurements of the original kept from an earlier run of this script
        results["original"].update(
            json.loads(args.original_results.read_text())["results"]["original"]
        )
    poll_jobs = {"ours": args.poll_jobs, "original": args.original_poll_jobs or args.poll_jobs}
    try:
        for n in args.sizes:
            for name, (python, env) in packages.items():
                done = str(n) in results[name]["build"]
                if not done and (name == "ours" or n <= args.original_max):
                    results[name]["build"][str(n)] = run_child(python, env, tmp, "build", n)
        for name, (python, env) in packages.items():
            if poll_jobs[name] and not results[name]["poll"]:
                results[name]["poll"] = run_child(python, env, tmp, "poll", poll_jobs[name])
                results[name]["poll"]["jobs"] = poll_jobs[name]
            if not args.skip_e2e and not results[name]["e2e"]:
                results[name]["e2e"] = run_child(python, env, tmp, "e2e", args.e2e_tasks, 100)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else ""


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    ours, orig = results["ours"], results.get("original", {"build": {}})
    lines = [
        "| measurement | ours | original 1.1.0 | ratio |",
        "| --- | --- | --- | --- |",
    ]

    def times(r: dict[str, Any] | None) -> str:
        return "—" if not r else "{:.2f} s / {:.2f} s".format(r["wall"], r["cpu"])

    def memory(r: dict[str, Any] | None) -> str:
        return "—" if not r else "{:.0f} MB ({:.0f} MB)".format(r["rss_mb"], r["state_mb"])

    for n, mine in ours["build"].items():
        theirs = orig["build"].get(n)
        lines.append(
            f"| build, {int(n):,} tasks: wall / CPU | {times(mine)} | {times(theirs)}"
            f" | {_ratio(mine['wall'], theirs and theirs['wall'])} |"
        )
        lines.append(
            f"| build, {int(n):,} tasks: peak RSS (state file) | {memory(mine)}"
            f" | {memory(theirs)} | {_ratio(mine['rss_mb'], theirs and theirs['rss_mb'])} |"
        )
    labels = {
        "first_running_ms": "first poll, all start running (changes saved)",
        "running_ms": "poll, all running (nothing changed)",
        "some_finishing_ms": "poll finding 1% finished (their tags checked, saved)",
        "finishing_ms": "poll finding the other 99% finished (tags checked, saved)",
        "finished_ms": "poll after all finished",
    }
    if ours["poll"]:
        their_poll = orig.get("poll") or {}
        same = their_poll.get("jobs") == ours["poll"]["jobs"]
        for key, label in labels.items():
            theirs = their_poll.get(key)
            their_text = "—" if theirs is None else f"{theirs:.0f} ms"
            if theirs is not None and not same:
                their_text += f" (at {their_poll['jobs']:,} jobs)"
            lines.append(
                f"| {label}, {ours['poll']['jobs']:,} jobs: dispatcher CPU"
                f" | {ours['poll'][key]:.1f} ms | {their_text}"
                f" | {_ratio(ours['poll'][key], theirs) if same else ''} |"
            )
    if ours["e2e"]:
        theirs = orig.get("e2e")
        their_text = "—" if not theirs else f"{theirs['wall']:.1f} s"
        lines.append(
            f"| end to end, {args.e2e_tasks:,} tasks, group_size 100: wall"
            f" | {ours['e2e']['wall']:.1f} s | {their_text}"
            f" | {_ratio(ours['e2e']['wall'], theirs and theirs['wall'])} |"
        )
    return "\n".join(lines)


def verdicts(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    ours, orig = results["ours"], results.get("original")
    out = []

    def say(name: str, ok: bool | None, detail: str) -> None:
        mark = "not measured" if ok is None else ("met" if ok else "NOT met")
        out.append(f"- {name}: {mark} ({detail})")

    mine, theirs = ours["build"].get("100000"), orig and orig["build"].get("100000")
    if mine and theirs:
        say(
            "100,000 tasks wall <= 0.2x",
            mine["wall"] <= 0.2 * theirs["wall"],
            _ratio(mine["wall"], theirs["wall"]),
        )
        say(
            "100,000 tasks memory <= 0.5x",
            mine["rss_mb"] <= 0.5 * theirs["rss_mb"],
            _ratio(mine["rss_mb"], theirs["rss_mb"]),
        )
    big = ours["build"].get("1000000")
    if big:
        say(
            "1,000,000 tasks <= 30 s and <= 2 GB",
            big["wall"] <= 30 and big["rss_mb"] <= 2048,
            f"{big['wall']:.1f} s, {big['rss_mb']:.0f} MB",
        )
    if ours["poll"]:
        worst = max(v for k, v in ours["poll"].items() if k.endswith("_ms"))
        say(
            f"poll at {args.poll_jobs:,} jobs <= 50 ms CPU",
            worst <= 50,
            f"worst of the five polls {worst:.1f} ms",
        )
    if ours["e2e"] and orig and orig.get("e2e"):
        say(
            "10,000-task run <= 0.3x",
            ours["e2e"]["wall"] <= 0.3 * orig["e2e"]["wall"],
            _ratio(ours["e2e"]["wall"], orig["e2e"]["wall"]),
        )
    return out


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e .[bench]): no plot", file=sys.stderr)
        return False
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, style in (("ours", "o-"), ("original", "s--")):
        build = results.get(name, {}).get("build") or {}
        ns = sorted(int(n) for n in build)
        if not ns:
            continue
        label = "this package" if name == "ours" else "original 1.1.0"
        ax_t.plot(ns, [build[str(n)]["wall"] for n in ns], style, label=label)
        ax_m.plot(ns, [build[str(n)]["rss_mb"] for n in ns], style, label=label)
    for ax, ylabel in ((ax_t, "wall time (s)"), (ax_m, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tasks")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax_t.set_title("tasks to state file")
    ax_m.set_title("memory")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=["build", "poll", "e2e"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--group-size", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1_000, 10_000, 100_000, 1_000_000],
        help="task counts to build",
    )
    parser.add_argument(
        "--original-max",
        type=int,
        default=100_000,
        help="largest N also built with the original (default 100,000)",
    )
    parser.add_argument(
        "--poll-jobs", type=int, default=10_000, help="jobs in the poll measurement (0 skips it)"
    )
    parser.add_argument(
        "--original-poll-jobs",
        type=int,
        default=0,
        help="jobs in the original's poll measurement (default: --poll-jobs; "
        "the original runs one ps per job, about 1 s per 1,000 jobs)",
    )
    parser.add_argument(
        "--original-results",
        type=Path,
        default=None,
        help="reuse the original's measurements found in this --out file",
    )
    parser.add_argument("--e2e-tasks", type=int, default=10_000, help="tasks of the run")
    parser.add_argument("--skip-e2e", action="store_true", help="no end-to-end run")
    parser.add_argument(
        "--skip-original",
        action="store_true",
        help="do not run the original dpdispatcher (no venv needed)",
    )
    parser.add_argument(
        "--orig-venv",
        type=Path,
        default=None,
        help="venv holding dpdispatcher==1.1.0 (default: the tests' cached one)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="log-log plot (PNG)")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    load_before = os.getloadavg()[0]
    results = measure(args)
    text = table(results, args)
    text += (
        f"\n\nload average (1 min) of the machine: {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores"
    )
    print(text)
    print("\n".join(verdicts(results, args)))
    if args.out:
        args.out.write_text(json.dumps({"results": results, "table": text}, indent=1))
    if plot(results, args.plot):
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
