"""The real Slurm cluster behind a fault-injecting wrapper (``tests/faults/slurm_faults.py``).

At a 30 % rate every ``sbatch``/``squeue``/``sacct`` call fails the way busy clusters fail:
"Invalid user for SlurmUser slurm, ignored", "Unable to contact slurm controller",
"Socket timed out on send/recv operation" -- and half of the failed ``sbatch`` calls queue
the job first and only then report the timeout. Several submissions run one after the
other. Every job must finish, no run may abort, no submission attempt may become two
scheduler jobs (counted per submit tag from the wrapper's log of what the real ``sbatch``
queued), and each task must run exactly once (counters written outside the work trees).

``DPDISP_SLURM_FAULT_RUNS`` (default 4) and ``DPDISP_SLURM_FAULT_SEED`` make longer or
other runs; the figures are written to ``$DPDISP_SLURM_FAULT_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.errors import DPDispatcherError
from dpdispatcher.submission import Timing
from tests.conftest import require

pytestmark = pytest.mark.slurm

WRAPPER = Path(__file__).resolve().parent.parent / "faults" / "slurm_faults.py"
TOOLS = ("sbatch", "squeue", "sacct", "scancel")
JOBS_PER_RUN = 4


def _wrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rate: float, seed: str) -> Path:
    bindir, state = tmp_path / "faulty-bin", tmp_path / "faults"
    bindir.mkdir()
    state.mkdir()
    for tool in TOOLS:
        (bindir / tool).symlink_to(WRAPPER)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_FAULTS_DIR", str(state))
    monkeypatch.setenv("SLURM_FAULTS_REAL_DIR", "/usr/bin")
    monkeypatch.setenv("SLURM_FAULTS_RATE", str(rate))
    monkeypatch.setenv("SLURM_FAULTS_SEED", seed)
    return state / "log.jsonl"


def _submission(root: Path, run: int, counters: Path) -> Submission:
    tasks = [
        Task(
            command=f"echo ran >> {counters}/{run}-{i}; sleep 1; echo {run}-{i} > out.txt",
            task_work_path=f"task{i}/",
            backward_files=["out.txt"],
        )
        for i in range(JOBS_PER_RUN)
    ]
    for t in tasks:
        (root / "local" / "work" / t.task_work_path).mkdir(parents=True)
    machine = Machine.load_from_dict(
        {
            "batch_type": "Slurm",
            "context_type": "LocalContext",
            "local_root": str(root / "local"),
            "remote_root": str(root / "remote"),
        }
    )
    sub = Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=tasks)
    sub.timing = Timing(first_interval=0.2, growth=1.5, resubmit_delay=0.3, resubmit_delay_max=2.0)
    return sub


def test_real_slurm_with_30_percent_faults_runs_every_task_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("DPDISP_SLURM", what="real Slurm")
    runs = int(os.environ.get("DPDISP_SLURM_FAULT_RUNS", "4"))
    seed = os.environ.get("DPDISP_SLURM_FAULT_SEED", "1")
    log = _wrap(tmp_path, monkeypatch, 0.3, seed)
    counters = tmp_path / "counters"  # outside every work tree
    counters.mkdir()
    aborted: list[str] = []
    for run in range(runs):
        sub = _submission(tmp_path / f"run{run}", run, counters)
        try:
            sub.run_submission(check_interval=2)
        except DPDispatcherError as err:
            aborted.append(f"run {run}: {err!r}")
        for i in range(JOBS_PER_RUN):
            out = tmp_path / f"run{run}" / "local" / "work" / f"task{i}" / "out.txt"
            assert aborted or out.read_text() == f"{run}-{i}\n"

    records = [json.loads(line) for line in log.read_text().splitlines()]
    faults = Counter(r["kind"] for r in records if r["kind"] != "queued")
    # one scheduler job per job (script .<job hash>.sub) and attempt (its submit tag)
    queued = Counter((r["script"], r["tag"]) for r in records if r["kind"] == "queued")
    duplicates = sum(n - 1 for n in queued.values())
    task_runs = {p.name: len(p.read_text().splitlines()) for p in counters.iterdir()}
    figures = {
        "runs": runs,
        "jobs": runs * JOBS_PER_RUN,
        "scheduler_jobs_queued": sum(queued.values()),
        "wrapped_calls": int((log.parent / "counter").read_text()),
        "injected_faults": sum(faults.values()),
        "faults_by_kind": dict(faults),
        "duplicate_submissions": duplicates,
        "aborted_runs": len(aborted),
        "task_runs_not_exactly_once": sorted(k for k, n in task_runs.items() if n != 1),
    }
    report = os.environ.get("DPDISP_SLURM_FAULT_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=1) + "\n")
    print("slurm fault figures:", json.dumps(figures))
    assert not aborted, aborted
    assert duplicates == 0, queued
    assert len(task_runs) == runs * JOBS_PER_RUN and not figures["task_runs_not_exactly_once"]
    assert sum(queued.values()) == runs * JOBS_PER_RUN  # one scheduler job per job
    assert faults["timeout-after-queueing"] >= 1, "no submit timed out after queueing"
    assert sum(faults.values()) >= 5
