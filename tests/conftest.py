"""Shared test fixtures.

Real components (Slurm, sshd) are brought up by ``tests/infra/up.sh``, which writes
``$DPDISP_INFRA_DIR/env.sh``; this file loads it. A test that needs a component calls
:func:`require` — it is skipped with a reason for a user without the component, and
**fails** under CI (``CI=true``), where nothing may be skipped.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

INFRA_DIR = Path(os.environ.get("DPDISP_INFRA_DIR", "/tmp/dpdisp-infra"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _load_env_file(path: Path) -> None:
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        key, _, value = line[len("export ") :].partition("=")
        parts = shlex.split(value) if value else [""]
        os.environ.setdefault(key, parts[0] if parts else "")


for _env in sorted(INFRA_DIR.glob("env*.sh")):
    _load_env_file(_env)


#: what a client test running Slurm jobs over SSH needs (see :func:`require`)
SSH_AND_SLURM = (
    "DPDISP_SSH_HOST",
    "DPDISP_SSH_PORT",
    "DPDISP_SSH_USER",
    "DPDISP_SSH_KEY_ED25519",
    "DPDISP_SLURM",
)


def require(*variables: str, what: str) -> None:
    """Skip (or fail under CI) unless every environment variable in ``variables`` is set."""
    missing = [v for v in variables if not os.environ.get(v)]
    if not missing:
        return
    reason = (
        f"{what} is not available (missing {', '.join(missing)}); "
        "run `bash tests/infra/up.sh` as root"
    )
    if IN_CI:
        pytest.fail(f"CI requires {reason}")
    pytest.skip(reason)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        type=int,
        default=0,
        metavar="N",
        help="run N random kill -9 trials in tests/integration/test_kill_harness.py (default 5)",
    )


@pytest.fixture(autouse=True)
def _private_dpdispatcher_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Keep the local state copies of each test out of the user's home."""
    monkeypatch.setenv("DPDISPATCHER_HOME", str(tmp_path_factory.mktemp("dpdhome")))
    yield
