"""How a run ends: clean strategies and the failed-jobs report (pure functions)."""

from __future__ import annotations

import pytest

from dpdispatcher import _outcome
from dpdispatcher.errors import ConfigurationError, JobFailedError


@pytest.mark.parametrize(
    ("clean", "strategy"),
    [(True, "always"), (False, "never"), ("always", "always"), ("never", "never"),
     ("on_success", "on_success")],
)  # fmt: skip
def test_clean_values_name_a_strategy(clean, strategy):
    assert _outcome.clean_strategy(clean) == strategy


@pytest.mark.parametrize("clean", [1, 0, None, "True", "ON_SUCCESS", "", [], "sometimes"])
def test_other_clean_values_are_refused(clean):
    with pytest.raises(ConfigurationError, match="clean strategy"):
        _outcome.clean_strategy(clean)


@pytest.mark.parametrize(
    ("strategy", "failed", "complete", "clean"),
    [
        ("always", False, True, True),
        ("always", False, False, True),
        ("always", True, True, False),
        ("never", False, True, False),
        ("on_success", False, True, True),
        ("on_success", False, False, False),
        ("on_success", True, True, False),
    ],
)
def test_should_clean(strategy, failed, complete, clean):
    assert _outcome.should_clean(strategy, failed=failed, complete=complete) is clean


def test_report_lists_each_job_its_tasks_and_error_tail():
    where = "task directories under /r"
    jobs = [
        _outcome.FailedJob("h1", "101", 4, ("a/: cmd a",), "x" * 3000, where),
        _outcome.FailedJob("h2", "", 2, ("b/: cmd b", "c/: cmd c"), "", where),
    ]
    err = _outcome.failed_jobs_error(jobs, monitored=True)
    text = str(err)
    assert isinstance(err, JobFailedError) and isinstance(err, RuntimeError)
    assert text.splitlines()[0].startswith("2 job(s) failed after retries were exhausted")
    assert "job h1 (job id 101) failed 4 times" in text and "job h2 (job id -)" in text
    assert "  - b/: cmd b\n  - c/: cmd c" in text
    assert "(no error output recorded)" in text
    assert "already failed" in str(_outcome.failed_jobs_error(jobs[:1], monitored=False))


def test_tail_keeps_the_end():
    assert _outcome.tail("  short \n") == "short"
    long = "".join(str(i % 10) for i in range(5000))
    assert _outcome.tail(long, 100) == "..." + long[-100:]
