"""The original dpdispatcher (1.0.3, 1.1.0) in a throwaway virtual environment.

Installed from PyPI at test time into the one cached environment per release that
:func:`tests._venvs.original` builds (under a file lock, marked complete only at the
end). The tests *run* it (``tests/integration/original/drive.py``) to observe what it
does; none of its code is imported into this package. Without network access the build fails,
and so does the test (nothing is skipped).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests._venvs import original

DRIVER = Path(__file__).resolve().parent / "integration" / "original" / "drive.py"


def original_python(version: str) -> Path:
    """The interpreter of the shared venv holding ``dpdispatcher==version`` (built once)."""
    return original(version).python


def original_env(home: Path) -> dict[str, str]:
    """Environment for the original: its own HOME (it writes ~/.dpdispatcher), no checkout
    of this package on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def original_hashes(version: str, cases: list[dict[str, Any]], home: Path) -> dict[str, Any]:
    """What ``dpdispatcher==version`` answers for each case (see drive.py ``hashes``)."""
    spec = home / f"cases-{version}.json"
    home.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(cases))
    res = subprocess.run(
        [str(original_python(version)), str(DRIVER), "hashes", str(spec)],
        capture_output=True,
        text=True,
        env=original_env(home),
        cwd=home,  # it writes ./dpdispatcher.log where it starts
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["version"] == version
    return {h["name"]: h for h in out["hashes"]}


def start_original_run(version: str, spec: dict[str, Any], home: Path) -> subprocess.Popen[str]:
    """Start ``run_submission`` of the original on ``spec`` (see drive.py ``run``)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "run-spec.json"
    path.write_text(json.dumps(spec))
    log = open(home / "original-run.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [str(original_python(version)), str(DRIVER), "run", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=original_env(home),
        cwd=home,  # it writes ./dpdispatcher.log where it starts
        start_new_session=True,
    )
