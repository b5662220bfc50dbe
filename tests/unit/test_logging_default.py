"""Log output is visible by default and yields to the application's configuration (B5).

Each case runs in a fresh interpreter: whether logging is "configured" is process state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RUN = """
import logging, os, sys
{setup}
from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.dlog import dlog
root = sys.argv[1]
os.makedirs(os.path.join(root, "work", "t0"), exist_ok=True)
m = Machine.load_from_dict({{"batch_type": "Shell", "context_type": "LocalContext",
    "local_root": root, "remote_root": os.path.join(root, "remote")}})
r = Resources.load_from_dict({{"group_size": 1, "cvasp": True}})
s = Submission("work", m, r, task_list=[Task("echo hi", "t0")])
{after}
s.run_submission(check_interval=0.1)
dlog.debug("a debug line")
print("HASH", s.submission_hash)
"""


def run(
    tmp_path: Path, setup: str = "", after: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    code = RUN.format(setup=setup, after=after)
    full_env = {k: v for k, v in os.environ.items() if k != "DPDISPATCHER_LOG_LEVEL"}
    full_env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=True,
        cwd=tmp_path,
    )


def _hash(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("HASH"))


def test_unconfigured_application_sees_warnings_and_state_changes_on_stderr(tmp_path):
    res = run(tmp_path)
    sub_hash = _hash(res.stdout)
    err = res.stderr
    assert "WARNING dpdispatcher: resources: unknown key 'cvasp' ignored" in err
    assert f"submission {sub_hash}: job root {tmp_path / 'remote' / sub_hash}" in err
    assert "was submitted; job_id is " in err and " finished" in err
    assert "jobs: finished 1" in err
    assert "a debug line" not in err
    assert "INFO" in err and "DEBUG" not in err
    assert not list(tmp_path.glob("*.log"))  # nothing written to files


def test_env_variable_sets_the_level(tmp_path):
    quiet = run(tmp_path / "a", env={"DPDISPATCHER_LOG_LEVEL": "WARNING"})
    assert "unknown key 'cvasp'" in quiet.stderr and "was submitted" not in quiet.stderr
    loud = run(tmp_path / "b", env={"DPDISPATCHER_LOG_LEVEL": "debug"})
    assert "a debug line" in loud.stderr


def test_client_raising_the_level_gets_debug_output(tmp_path):
    """dflow sets dlog to DEBUG and reads the log from the step's output."""
    res = run(tmp_path, after="dlog.setLevel(logging.DEBUG)")
    assert "a debug line" in res.stderr and "was submitted" in res.stderr


def test_application_logging_configuration_overrides(tmp_path):
    res = run(
        tmp_path,
        setup="logging.basicConfig(level=logging.WARNING, format='APP %(name)s %(message)s')",
    )
    assert "APP dpdispatcher resources: unknown key 'cvasp' ignored" in res.stderr
    assert "was submitted" not in res.stderr  # the application asked for WARNING
    assert res.stderr.count("unknown key 'cvasp'") == 1  # one handler, not two
    info = run(
        tmp_path / "i", setup="logging.basicConfig(level=logging.INFO, format='APP %(message)s')"
    )
    assert "APP job " in info.stderr and "was submitted" in info.stderr
