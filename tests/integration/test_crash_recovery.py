"""kill -9 the dispatcher at several points, rerun, and check every task ran exactly
once and every result came back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent("""
    import os, signal, sys
    from dpdispatcher import Machine, Resources, Submission, Task
    import dpdispatcher._replace as rp
    from dpdispatcher.machine import Machine as Base
    from dpdispatcher.submission import Submission as Sub

    tmp, point, context = sys.argv[1], sys.argv[2], sys.argv[3]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def after_calls(owner, name, n, before=False):
        original = getattr(owner, name)
        calls = [0]
        def wrapper(*a, **k):
            calls[0] += 1
            if before and calls[0] == n:
                die()
            out = original(*a, **k)
            if not before and calls[0] == n:
                die()
            return out
        setattr(owner, name, wrapper)

    if point == "before_submit":
        after_calls(Sub, "handle_unexpected_submission_state", 1, before=True)
    elif point == "right_after_submit":
        after_calls(Base, "submit_many", 1)
    elif point == "mid_submit":
        # die while the shell submitting the jobs is still at work
        import subprocess, time
        from dpdispatcher.contexts._local import LocalShellContext
        from dpdispatcher.machine import SUBMIT_MARK
        original_run = LocalShellContext.run
        def run(self, cmd, timeout=None, idempotent=False):
            if SUBMIT_MARK in cmd:
                # the orphaned shell is still submitting when the rerun recovers
                cmd = cmd.replace(chr(10), chr(10) + "sleep 1" + chr(10))
                subprocess.Popen(["bash", "-c", cmd], cwd=self.remote_root,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
                die()
            return original_run(self, cmd, timeout)
        LocalShellContext.run = run
    elif point == "mid_poll":
        after_calls(Base, "check_status_many", 3)
    elif point == "mid_download":
        after_calls(rp, "bring_back", 3)

    machine = Machine.load_from_dict({"batch_type": "Shell", "context_type": context,
        "local_root": tmp + "/local", "remote_root": tmp + "/remote"})
    tasks = [Task(f"echo run >> {tmp}/count/{i}; sleep 0.3; echo result-{i} > out",
                  f"t{i}", backward_files=["out"]) for i in range(6)]
    sub = Submission("work", machine, Resources(1, 1, 0, "", 2), task_list=tasks)
    sub.timing.first_interval = 0.05
    sub.run_submission(check_interval=0.2)
    print("COMPLETED")
""")

POINTS = ["before_submit", "right_after_submit", "mid_submit", "mid_poll", "mid_download"]


def _run(tmp: Path, point: str, context: str) -> subprocess.CompletedProcess[str]:
    script = tmp / "child.py"
    script.write_text(CHILD)
    return subprocess.run(
        [sys.executable, str(script), str(tmp), point, context],
        capture_output=True,
        text=True,
        timeout=120,
    )


# LazyLocalContext has no download step, so there is no mid-download point for it
CASES = [(p, "LocalContext") for p in POINTS] + [
    (p, "LazyLocalContext") for p in POINTS if p != "mid_download"
]


@pytest.mark.parametrize("point,context", CASES)
def test_kill_9_then_rerun_runs_every_task_once(tmp_path, point, context):
    for i in range(6):
        (tmp_path / "local" / "work" / f"t{i}").mkdir(parents=True)
    (tmp_path / "count").mkdir()
    first = _run(tmp_path, point, context)
    assert first.returncode == -9, first.stderr
    second = _run(tmp_path, "none", context)
    assert "COMPLETED" in second.stdout, second.stderr
    for i in range(6):
        assert (tmp_path / "count" / str(i)).read_text() == "run\n", f"task {i} ran twice"
        assert (tmp_path / "local/work" / f"t{i}" / "out").read_text() == f"result-{i}\n"
