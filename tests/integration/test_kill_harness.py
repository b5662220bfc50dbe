"""kill -9 of the dispatcher at named points and at uniformly random instants, then rerun:
every task runs exactly once and every result comes back correct (tests/kill_harness.py).

CI runs the five named points and five random trials; ``--soak N`` runs N random trials.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests import kill_harness as kh
from tests.conftest import require

SEED = random.randrange(1 << 30)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "trial" in metafunc.fixturenames:
        n = metafunc.config.getoption("--soak") or 5
        metafunc.parametrize("trial", range(n))


@pytest.fixture(scope="module")
def run_duration(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long an uninterrupted run takes (it must itself be correct)."""
    return kh.measure(tmp_path_factory.mktemp("measure"))


def _assert_ok(outcome: kh.Outcome, seed: int) -> None:
    assert outcome.ok, (
        f"{outcome.scenario} (seed {seed}): {outcome.duplicates} duplicate task runs, "
        f"{outcome.lost} lost results: {outcome.problems}"
    )


@pytest.mark.parametrize("point", kh.POINTS)
def test_kill_at_a_named_point_then_rerun(tmp_path: Path, point: str) -> None:
    _assert_ok(kh.named_trial(tmp_path, point, SEED), SEED)


def test_kill_at_a_random_instant_then_rerun(
    tmp_path: Path, trial: int, run_duration: float
) -> None:
    _assert_ok(kh.random_trial(tmp_path, SEED + trial, run_duration), SEED + trial)


@pytest.mark.slurm
@pytest.mark.parametrize("kind", ["clean_mid_delete", "random"])
def test_slurm_kill_then_rerun(tmp_path: Path, kind: str) -> None:
    """The same on the real Slurm cluster: a mid-clean kill and a random one."""
    require("DPDISP_SLURM", what="real Slurm")
    if kind == "random":
        duration = kh.measure(tmp_path / "measure", "Slurm")
        outcome = kh.random_trial(tmp_path / "trial", SEED, duration, "Slurm")
    else:
        outcome = kh.named_trial(tmp_path / "trial", kind, SEED, "Slurm")
    _assert_ok(outcome, SEED)
