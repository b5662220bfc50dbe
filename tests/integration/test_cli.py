"""The dpdisp command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dpdispatcher.dpdisp import main, read_script_metadata


def write_submission(tmp_path: Path, command: str = "echo hi > out") -> Path:
    (tmp_path / "local" / "work" / "t0").mkdir(parents=True)
    data = {
        "work_base": "work",
        "machine": {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(tmp_path / "remote"),
        },
        "resources": {"group_size": 1},
        "task_list": [{"command": command, "task_work_path": "t0", "backward_files": ["out"]}],
    }
    path = tmp_path / "submission.json"
    path.write_text(json.dumps(data))
    return path


def test_no_subcommand_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "submit" in out and "submission" in out and "run" in out


def test_python_dash_m_help():
    out = subprocess.run(
        [sys.executable, "-m", "dpdispatcher", "submission", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--reset-fail-count" in out and "--download-terminated-log" in out


def test_submit_runs_and_reports_progress(tmp_path, capsys):
    path = write_submission(tmp_path)
    assert main(["submit", str(path), "--check-interval", "0.2"]) == 0
    captured = capsys.readouterr()
    assert "finished" in captured.out and "jobs:" in captured.err
    assert (tmp_path / "local/work/t0/out").read_text() == "hi\n"


def test_submission_hash_inspects_and_resets(tmp_path, capsys):
    path = write_submission(tmp_path, command="exit 1")
    data = json.loads(path.read_text())
    data["machine"]["retry_count"] = 0
    path.write_text(json.dumps(data))
    assert main(["submit", str(path), "--check-interval", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "giving up" in err
    state_dir = Path(__import__("os").environ["DPDISPATCHER_HOME"]) / "submission"
    (state,) = state_dir.glob("*.json")
    sub_hash = state.stem
    assert main(["submission", sub_hash, "--download-terminated-log", "--reset-fail-count"]) == 0
    out = capsys.readouterr().out
    assert "terminated" in out and "fail_count=1" in out
    assert json.loads(state.read_text())["belonging_jobs"][0].popitem()[1]["fail_count"] == 0
    assert (tmp_path / "local/work/t0/err").exists()  # the terminated job's log came back


def test_submit_dry_run_and_exit_on_submit(tmp_path, capsys):
    path = write_submission(tmp_path)
    assert main(["submit", str(path), "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert main(["submit", str(path), "--exit-on-submit"]) == 0
    assert "submitted" in capsys.readouterr().out
    assert main(["submit", str(path), "--check-interval", "0.2"]) == 0


SCRIPT = """# /// script
# requires-python = ">=3.9"
# [tool.dpdispatcher]
# work_base = "."
# backward_files = ["result.txt"]
# [tool.dpdispatcher.machine]
# batch_type = "Shell"
# context_type = "LocalContext"
# local_root = "{local}"
# remote_root = "{remote}"
# [tool.dpdispatcher.resources]
# group_size = 1
# ///
open("result.txt", "w").write(str(6 * 7))
"""


def test_run_script_with_inline_metadata(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    script = local / "job.py"
    script.write_text(SCRIPT.format(local=local, remote=tmp_path / "remote"))
    assert read_script_metadata(script.read_text())["work_base"] == "."
    assert main(["run", str(script)]) == 0
    assert (local / "result.txt").read_text() == "42"


def test_version(capsys):
    import dpdispatcher

    try:
        main(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    assert capsys.readouterr().out.strip() == f"dpdisp {dpdispatcher.__version__}"


def _dpdisp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dpdispatcher", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_run_errors_without_traceback(tmp_path):
    missing = _dpdisp("run", "missing.py", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "dpdisp: error: dpdisp run: no such script 'missing.py'"
    (tmp_path / "plain.py").write_text("print(1)\n")
    plain = _dpdisp("run", "plain.py", cwd=tmp_path)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "[tool.dpdispatcher]" in plain.stderr
    (tmp_path / "bad.py").write_text("# /// script\n# [tool.dpdispatcher\n# ///\n")
    bad = _dpdisp("run", "bad.py", cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "TOML" in bad.stderr


TASK_LIST_SCRIPT = """# /// script
# [tool.dpdispatcher]
# work_base = "work"
# [tool.dpdispatcher.machine]
# batch_type = "Shell"
# context_type = "LocalContext"
# local_root = "{local}"
# remote_root = "{remote}"
# [tool.dpdispatcher.resources]
# group_size = 1
# [[tool.dpdispatcher.task_list]]
# command = "{python}"
# task_work_path = "t*"
# backward_files = ["log"]
# ///
import os
print("ran in", os.path.basename(os.getcwd()))
"""


def test_run_script_with_a_task_list_and_glob(tmp_path):
    """The 1.x layout: tasks from ``task_list``; a glob task_work_path gives one task each."""
    local = tmp_path / "local"
    for name in ("t1", "t2", "other"):
        (local / "work" / name).mkdir(parents=True)
    script = tmp_path / "my script.py"
    script.write_text(
        TASK_LIST_SCRIPT.format(local=local, remote=tmp_path / "remote", python=sys.executable)
    )
    res = _dpdisp("run", str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for name in ("t1", "t2"):
        assert (local / "work" / name / "log").read_text() == f"ran in {name}\n"
    assert not (local / "work" / "other" / "log").exists()
