"""Randomised kill -9 harness: the dispatcher dies at any instant, a rerun finishes the work.

A trial runs a submission (Shell batch type on LocalContext, 8 tasks in 4 jobs of 2) in a
child process and kills that process with SIGKILL, either at a uniformly random instant of
an uninterrupted run's duration or at a named point (mid-submit, mid-download, mid-clean).
Half of the random trials kill the first rerun too. A last rerun must then complete. Jobs
run detached (their own session), so they outlive the dispatcher, as on a cluster.

Every task appends a line to its own counter file *outside* the work tree, so a task that
ran twice is seen even when the job directory it ran in was deleted. A trial is correct when
every counter holds exactly one line (no duplicate run), every result came back with the
value its task wrote (no lost or stale result: each task also edits a forward file in place
and returns it), nothing is left in the remote root and the local state copy is gone.

The same runs on the real Slurm test cluster with ``batch_type="Slurm"``.

Run a long soak with ``pytest tests/integration/test_kill_harness.py --soak 200`` or
``python -m tests.kill_harness --soak 200 [--seed S]``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

N_TASKS = 8

#: named points, each a monkeypatch in the child that kills it with SIGKILL
POINTS = (
    "after_submit",  # the scheduler accepted the jobs; the state file does not say so yet
    "mid_download",  # some results moved back, others not
    "clean_after_rename",  # the job root renamed aside, nothing deleted yet
    "clean_mid_delete",  # the state file and half of the job root deleted
    "clean_before_forget",  # the job root gone, the local state copy still there
)

CHILD = textwrap.dedent(
    """
    import os, random, shutil, signal, sys

    tmp, point, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    REPO = sys.argv[4]
    sys.path.insert(0, REPO)
    from dpdispatcher import Machine, Resources, Submission, Task
    import dpdispatcher._replace as replace
    from dpdispatcher.utils.record import record
    from dpdispatcher.machine import Machine as Base

    rng = random.Random(seed)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def hook(owner, name, before=None, after=None):
        original = getattr(owner, name)
        def wrapper(*a, **k):
            if before is not None:
                before(*a, **k)
            out = original(*a, **k)
            if after is not None:
                after(*a, **k)
            return out
        setattr(owner, name, wrapper)

    def is_job_root(path):
        name = os.path.basename(os.path.normpath(str(path)))
        return len(name.strip(".").split(".")[0]) == 40 and os.path.isdir(path)

    if point == "after_submit":
        hook(Base, "submit_many", after=lambda *a, **k: die())
    elif point == "mid_download":
        calls, at = [0], rng.randint(1, 2 * @N@)
        def count(*a, **k):
            calls[0] += 1
            if calls[0] == at:
                die()
        hook(replace, "bring_back", before=count)
    elif point in ("clean_after_rename", "clean_mid_delete"):
        real_rmtree = shutil.rmtree
        def rmtree(path, *a, **k):
            if is_job_root(path):
                if point == "clean_mid_delete":
                    entries = sorted(os.listdir(path))
                    for entry in [e for e in entries if e.endswith(".json")] + entries[::2]:
                        real_rmtree(os.path.join(path, entry), ignore_errors=True)
                        if os.path.lexists(os.path.join(path, entry)):
                            os.unlink(os.path.join(path, entry))
                die()
            return real_rmtree(path, *a, **k)
        shutil.rmtree = rmtree
    elif point == "clean_before_forget":
        hook(record, "remove", before=lambda *a, **k: die())

    batch = open(os.path.join(tmp, "batch_type")).read().strip()
    machine = Machine.load_from_dict({"batch_type": batch, "context_type": "LocalContext",
        "local_root": tmp + "/local", "remote_root": tmp + "/remote"})
    tasks = [
        Task(
            f"echo run >> {tmp}/count/{i}; sleep 0.{i % 3}; "
            f"echo result-{i} > out; mkdir -p res; echo r{i} > res/r; "
            f"sed -i s/step=0/step={i}/ conf",
            f"t{i}",
            forward_files=["conf"],
            backward_files=["out", "res", "conf"],
        )
        for i in range(@N@)
    ]
    sub = Submission("work", machine, Resources(1, 1, 0, "", 2, para_deg=2), task_list=tasks)
    sub.timing.first_interval = 0.05
    sub.timing.resubmit_delay = 0.05
    sub.run_submission(check_interval=0.2)
    print("COMPLETED", flush=True)
    """
).replace("@N@", str(N_TASKS))

REPO = str(Path(__file__).resolve().parents[1])


@dataclass
class Outcome:
    """What one trial found."""

    scenario: str
    duplicates: int  # task runs beyond the first
    lost: int  # tasks whose results are missing or wrong
    problems: list[str]

    @property
    def ok(self) -> bool:
        """No duplicate run, no lost result, nothing left behind."""
        return not self.problems


def prepare(tmp: Path, batch_type: str = "Shell") -> None:
    """A fresh work tree and counter directory under ``tmp``; jobs go to ``batch_type``."""
    for i in range(N_TASKS):
        (tmp / "local/work" / f"t{i}").mkdir(parents=True)
        (tmp / "local/work" / f"t{i}/conf").write_text("step=0\n")
    (tmp / "count").mkdir()
    (tmp / "home").mkdir()
    (tmp / "child.py").write_text(CHILD)
    (tmp / "batch_type").write_text(batch_type)


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, DPDISPATCHER_HOME=str(tmp / "home"))
    env.pop("DPDISPATCHER_LOG_LEVEL", None)
    return env


def start(tmp: Path, point: str, seed: int) -> subprocess.Popen[str]:
    """Start the dispatcher child (``point``: a named point, or ``none``)."""
    return subprocess.Popen(
        [sys.executable, str(tmp / "child.py"), str(tmp), point, str(seed), REPO],
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_to_end(tmp: Path, point: str = "none", seed: int = 0, timeout: float = 120) -> str:
    """Run the child until it exits; return how it ended (``completed``, ``killed`` ...)."""
    proc = start(tmp, point, seed)
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode == -signal.SIGKILL:
        return "killed"
    if proc.returncode == 0 and "COMPLETED" in out:
        return "completed"
    raise AssertionError(f"dispatcher exited {proc.returncode}:\n{err[-3000:]}")


def kill_after(tmp: Path, delay: float, seed: int) -> str:
    """Start the child and SIGKILL it after ``delay`` s (unless it finished first).

    A kill that lands after the dispatcher's last step (results home, job root and local
    state copy removed, the process only exiting) counts as a completed run: nothing is
    left to recover, and running the submission again would be a new run.
    """
    proc = start(tmp, "none", seed)
    try:
        out, err = proc.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "completed" if _all_done(tmp) else "killed"
    if proc.returncode == 0 and "COMPLETED" in out:
        return "completed"
    raise AssertionError(f"dispatcher exited {proc.returncode}:\n{err[-3000:]}")


def _all_done(tmp: Path) -> bool:
    outcome = check(tmp, "")
    return outcome.ok or (outcome.lost == 0 and all("ran" in p for p in outcome.problems))


def check(tmp: Path, scenario: str) -> Outcome:
    """Count duplicate runs and lost results; list anything left behind."""
    problems: list[str] = []
    duplicates = lost = 0
    work = tmp / "local/work"
    for i in range(N_TASKS):
        counter = tmp / "count" / str(i)
        runs = len(counter.read_text().splitlines()) if counter.exists() else 0
        if runs != 1:
            duplicates += max(runs - 1, 0)
            problems.append(f"task {i} ran {runs} times")
        expected = {"out": f"result-{i}\n", "res/r": f"r{i}\n", "conf": f"step={i}\n"}
        for name, text in expected.items():
            path = work / f"t{i}" / name
            if not path.is_file() or path.is_symlink() or path.read_text() != text:
                lost += 1
                found = path.read_text() if path.is_file() else "missing"
                problems.append(f"t{i}/{name}: {found!r} instead of {text!r}")
    left = sorted(p.name for p in (tmp / "remote").iterdir()) if (tmp / "remote").exists() else []
    if left:
        problems.append(f"left in the remote root: {left}")
    strays = [str(p.relative_to(work)) for p in work.rglob("*dpdispatcher*")]
    if strays:
        problems.append(f"left in the work tree: {strays}")
    records = list((tmp / "home").rglob("*.json"))
    if records:
        problems.append(f"local state copies left: {[p.name for p in records]}")
    return Outcome(scenario, duplicates, lost, problems)


def named_trial(tmp: Path, point: str, seed: int, batch_type: str = "Shell") -> Outcome:
    """Kill at ``point``, rerun to the end, check."""
    prepare(tmp, batch_type)
    first = run_to_end(tmp, point, seed)
    if first != "killed":
        return Outcome(point, 0, 0, [f"the child was not killed at {point} ({first})"])
    run_to_end(tmp)
    return check(tmp, point)


def random_trial(tmp: Path, seed: int, duration: float, batch_type: str = "Shell") -> Outcome:
    """Kill at a uniformly random instant (and, half the time, kill the rerun too)."""
    rng = random.Random(seed)
    prepare(tmp, batch_type)
    kills = [rng.uniform(0, duration)]
    if rng.random() < 0.5:
        kills.append(rng.uniform(0, duration))
    ended = "killed"
    for delay in kills:
        ended = kill_after(tmp, delay, seed)
        if ended == "completed":
            break
    if ended != "completed":
        run_to_end(tmp)
    scenario = "random kill at " + ", ".join(f"{d:.2f}s" for d in kills)
    return check(tmp, scenario)


def measure(tmp: Path, batch_type: str = "Shell") -> float:
    """Duration of an uninterrupted run (the range random kills are drawn from)."""
    prepare(tmp, batch_type)
    start_time = time.monotonic()
    assert run_to_end(tmp) == "completed"
    outcome = check(tmp, "uninterrupted")
    assert outcome.ok, outcome.problems
    return time.monotonic() - start_time


def main(argv: list[str] | None = None) -> int:
    """Soak: ``python -m tests.kill_harness --soak N [--seed S] [--dir D]``."""
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", type=int, default=100, help="random trials (default 100)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", default=None, help="where trials run (default: a temp dir)")
    parser.add_argument("--batch-type", default="Shell", help="Shell (default) or Slurm")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    base = Path(args.dir or tempfile.mkdtemp(prefix="dpdisp-soak-"))
    batch = args.batch_type
    duration = measure(base / "measure", batch)
    print(f"seed {seed}; uninterrupted run {duration:.2f}s; trials under {base}", flush=True)
    outcomes = []
    for i in range(args.soak):
        tmp = base / f"trial{i}"
        if i < len(POINTS):
            outcome = named_trial(tmp, POINTS[i], seed + i, batch)
        else:
            outcome = random_trial(tmp, seed + i, duration, batch)
        outcomes.append(outcome)
        if not outcome.ok:
            print(f"trial {i} ({outcome.scenario}): {outcome.problems}", flush=True)
    dups = sum(o.duplicates for o in outcomes)
    lost = sum(o.lost for o in outcomes)
    failed = sum(not o.ok for o in outcomes)
    print(
        f"trials {len(outcomes)}  failed {failed}  duplicate task runs {dups}  lost results {lost}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
