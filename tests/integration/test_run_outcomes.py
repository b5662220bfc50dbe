"""End to end on Shell + LocalContext: how a run ends (the options dpdispatcher 1.1.0 added).

``continue_on_failure``, the clean strategies, the failing task's error file brought back,
``failed_jobs``/``raise_for_failed_jobs`` and ``check_interval=0``. Expectations come from
running the original 1.1.0 on the same scenario (see docs/migrating.md): the other jobs
run on and are downloaded, one error lists the failed jobs, the job root is kept when a
job failed, ``<job_hash>_last_err_file`` lands in the work base, and an unknown clean
strategy is refused before anything happens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher._script import names
from dpdispatcher.errors import ConfigurationError, ContextError, JobFailedError, RecoveryError
from dpdispatcher.utils.job_status import JobStatus


def machine(tmp_path: Path, **extra: object) -> Machine:
    return Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(tmp_path / "remote"),
            **extra,
        }
    )


def scenario(tmp_path: Path, *, failing: bool = True, **sub_kw: object) -> Submission:
    """Three one-task jobs counting their runs outside the work tree; t2 fails if asked."""
    counter = tmp_path / "runs"
    counter.mkdir(exist_ok=True)
    tasks = []
    for i in (1, 2, 3):
        (tmp_path / "local" / "work" / f"t{i}").mkdir(parents=True, exist_ok=True)
        fail = failing and i == 2
        body = (
            "echo boom-err-$RANDOM >&2; echo 'bad input in t2' >&2; exit 3"
            if fail
            else ("echo ok > res")
        )
        tasks.append(Task(f"echo run >> {counter}/t{i}; {body}", f"t{i}/", backward_files=["res"]))
    sub = Submission(
        "work",
        machine(tmp_path, retry_count=1),
        Resources(1, 1, 0, "", 1),
        task_list=tasks,
        **sub_kw,  # type: ignore[arg-type]
    )
    sub.timing.first_interval = 0.02
    sub.timing.resubmit_delay = 0.01
    return sub


def runs(tmp_path: Path, i: int) -> int:
    path = tmp_path / "runs" / f"t{i}"
    return path.read_text().count("run") if path.exists() else 0


def job_roots(tmp_path: Path) -> list[Path]:
    remote = tmp_path / "remote"
    return [p for p in remote.iterdir() if p.is_dir()] if remote.exists() else []


def test_continue_on_failure_runs_the_others_downloads_them_and_reports_once(tmp_path):
    sub = scenario(tmp_path, continue_on_failure=True)
    with pytest.raises(JobFailedError) as err:
        sub.run_submission(check_interval=0.1)
    work = tmp_path / "local" / "work"
    # the good jobs ran once and their results came back
    assert (work / "t1" / "res").read_text() == "ok\n"
    assert (work / "t3" / "res").read_text() == "ok\n"
    assert runs(tmp_path, 1) == runs(tmp_path, 3) == 1
    # the failing one used its budget (1 run + retry_count=1), then was marked failed
    assert runs(tmp_path, 2) == 2
    (failed,) = sub.failed_jobs()
    assert failed.job_state == JobStatus.failed
    assert [t.task_work_path for t in failed.job_task_list] == ["t2/"]
    text = str(err.value)
    assert text.startswith("1 job(s) failed")
    assert failed.job_hash in text and "t2/" in text and "exit 3" in text
    assert "bad input in t2" in text  # the tail of its error log
    assert isinstance(err.value, RuntimeError)
    # its error file is in the work base; the job root is kept for inspection
    local_err = work / names.last_err_file(failed.job_hash)
    assert "bad input in t2" in local_err.read_text()
    assert len(job_roots(tmp_path)) == 1


def test_continue_on_failure_given_to_run_submission_overrides(tmp_path):
    sub = scenario(tmp_path)
    with pytest.raises(JobFailedError, match=r"^1 job\(s\) failed"):
        sub.run_submission(check_interval=0.1, continue_on_failure=True)
    assert (tmp_path / "local" / "work" / "t3" / "res").exists()


def test_fail_fast_still_brings_the_error_file_back(tmp_path):
    sub = scenario(tmp_path)
    with pytest.raises(JobFailedError, match="giving up") as err:
        sub.run_submission(check_interval=0.1)
    assert "bad input in t2" in str(err.value)
    errs = list((tmp_path / "local" / "work").glob("*_last_err_file"))
    assert len(errs) == 1 and "bad input in t2" in errs[0].read_text()
    assert sub.failed_jobs() == []


def test_a_rerun_after_continue_on_failure_resubmits_nothing_and_reports_again(tmp_path):
    with pytest.raises(JobFailedError):
        scenario(tmp_path, continue_on_failure=True).run_submission(check_interval=0.1)
    again = scenario(tmp_path, continue_on_failure=True)
    with pytest.raises(JobFailedError, match="bad input in t2"):
        again.run_submission(check_interval=0.1)
    assert [runs(tmp_path, i) for i in (1, 2, 3)] == [1, 2, 1]
    # without continue_on_failure a recorded failure stops the run before anything happens
    with pytest.raises(JobFailedError, match="giving up"):
        scenario(tmp_path).run_submission(check_interval=0.1)
    assert [runs(tmp_path, i) for i in (1, 2, 3)] == [1, 2, 1]


@pytest.mark.parametrize(
    ("clean", "kept"),
    [(True, False), ("always", False), (False, True), ("never", True), ("on_success", False)],
)
def test_clean_strategies_after_a_successful_run(tmp_path, clean, kept):
    scenario(tmp_path, failing=False).run_submission(check_interval=0.1, clean=clean)
    assert bool(job_roots(tmp_path)) is kept
    assert (tmp_path / "local" / "work" / "t2" / "res").exists()


@pytest.mark.parametrize("clean", [True, "always", "on_success"])
def test_a_job_root_with_a_failed_job_is_kept_whatever_the_strategy(tmp_path, clean):
    with pytest.raises(JobFailedError):
        scenario(tmp_path, continue_on_failure=True).run_submission(check_interval=0.1, clean=clean)
    assert len(job_roots(tmp_path)) == 1


def test_on_success_keeps_the_job_root_when_ratio_unfinished_dropped_tasks(tmp_path):
    sub = scenario(tmp_path, failing=False)
    slow = Task("sleep 30", "t4/")
    (tmp_path / "local" / "work" / "t4").mkdir()
    sub.register_task(slow)
    sub.resources = Resources(1, 1, 0, "", 1, strategy={"ratio_unfinished": 0.3})
    sub.run_submission(check_interval=0.1, clean="on_success")
    assert sub.dropped_jobs and len(job_roots(tmp_path)) == 1


@pytest.mark.parametrize("clean", ["sometimes", 1, None, "True"])
def test_an_unknown_clean_strategy_is_refused_before_anything_runs(tmp_path, clean):
    sub = scenario(tmp_path, failing=False)
    with pytest.raises(ConfigurationError, match="clean strategy") as err:
        sub.run_submission(clean=clean)
    assert isinstance(err.value, ValueError)
    assert not (tmp_path / "remote").exists() and runs(tmp_path, 1) == 0


def test_check_interval_zero_is_accepted_and_negative_refused(tmp_path):
    sub = scenario(tmp_path, failing=False)
    with pytest.raises(ConfigurationError, match="check_interval"):
        sub.run_submission(check_interval=-1)
    sub.run_submission(check_interval=0)
    assert [runs(tmp_path, i) for i in (1, 2, 3)] == [1, 1, 1]


def test_raise_for_failed_jobs_without_continue_on_failure_says_they_had_failed(tmp_path):
    sub = scenario(tmp_path)
    sub.generate_jobs()
    sub.belonging_jobs[0].job_state = JobStatus.failed
    with pytest.raises(JobFailedError, match="already failed"):
        sub.raise_for_failed_jobs(continue_on_failure=False)
    sub.belonging_jobs[0].job_state = JobStatus.finished
    sub.raise_for_failed_jobs()  # nothing failed: no error


def test_previous_submission_hash_adopts_its_job_root_and_skips_finished_tasks(tmp_path):
    first = scenario(tmp_path, failing=False)
    first.run_submission(check_interval=0.1, clean=False)
    old_root = tmp_path / "remote" / first.submission_hash
    assert old_root.is_dir()
    second = scenario(tmp_path, failing=False, previous_submission_hash=first.submission_hash)
    second.resources = Resources(1, 2, 0, "", 1)  # other resources: another hash
    second.run_submission(check_interval=0.1, clean=False)
    assert second.submission_hash != first.submission_hash
    assert not old_root.exists() and (tmp_path / "remote" / second.submission_hash).is_dir()
    assert [runs(tmp_path, i) for i in (1, 2, 3)] == [1, 1, 1]
    assert (tmp_path / "local" / "work" / "t2" / "res").read_text() == "ok\n"


def test_previous_submission_hash_without_its_job_root_is_an_error(tmp_path):
    sub = scenario(tmp_path, failing=False, previous_submission_hash="0" * 40)
    with pytest.raises(RecoveryError, match="previous_submission_hash") as err:
        sub.run_submission(check_interval=0.1)
    assert isinstance(err.value, FileNotFoundError)  # what 1.1.0 raised
    assert runs(tmp_path, 1) == 0


def test_previous_submission_hash_of_other_tasks_is_refused(tmp_path):
    first = scenario(tmp_path, failing=False)
    first.run_submission(check_interval=0.1, clean=False)
    other = scenario(tmp_path, failing=True, previous_submission_hash=first.submission_hash)
    with pytest.raises(RecoveryError, match="other tasks"):
        other.run_submission(check_interval=0.1)
    assert (tmp_path / "remote" / first.submission_hash).is_dir()
    assert [runs(tmp_path, i) for i in (1, 2, 3)] == [1, 1, 1]


def test_async_run_submission_keeps_the_job_root_unless_told(tmp_path):
    import asyncio

    asyncio.run(scenario(tmp_path, failing=False).async_run_submission(check_interval=0.1))
    assert len(job_roots(tmp_path)) == 1  # clean defaults to False here, as in 1.1.0
    asyncio.run(
        scenario(tmp_path, failing=False).async_run_submission(check_interval=0.1, clean=True)
    )
    assert job_roots(tmp_path) == []


def test_the_error_file_is_brought_back_when_a_job_terminates(tmp_path):
    """A job that fails once and then succeeds leaves its first failure's error output."""
    flag = tmp_path / "failed-once"
    sub = scenario(tmp_path, failing=False)
    task = sub.belonging_tasks[1]
    task.command = (
        f"if [ ! -e {flag} ]; then touch {flag}; echo 'first attempt broke' >&2; exit 2; fi; "
        + task.command
    )
    task.task_hash = task.get_hash()
    sub.run_submission(check_interval=0.1)
    errs = list((tmp_path / "local" / "work").glob("*_last_err_file"))
    assert len(errs) == 1 and "first attempt broke" in errs[0].read_text()
    assert (tmp_path / "local" / "work" / "t2" / "res").read_text() == "ok\n"


def test_a_download_whose_connection_fails_is_retried(tmp_path, monkeypatch):
    sub = scenario(tmp_path, failing=False)
    ctx = sub.machine.context
    real, calls = ctx.download, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return real(*args, **kwargs)

    monkeypatch.setattr(ctx, "download", flaky)
    assert sub.try_download_result.__doc__
    sub.run_submission(check_interval=0.1, clean="on_success")
    assert len(calls) == 3 and job_roots(tmp_path) == []
    assert (tmp_path / "local" / "work" / "t3" / "res").read_text() == "ok\n"


def test_a_download_that_keeps_failing_keeps_the_job_root_under_every_strategy(
    tmp_path, monkeypatch
):
    sub = scenario(tmp_path, failing=False)
    sub.timing.download_retry_budget = 0.05

    def down(*args, **kwargs):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(sub.machine.context, "download", down)
    with pytest.raises(ContextError, match="could not be downloaded"):
        sub.run_submission(check_interval=0.1, clean="always")
    assert len(job_roots(tmp_path)) == 1
    # a rerun downloads them and finishes, running nothing again
    scenario(tmp_path, failing=False).run_submission(check_interval=0.1)
    assert [runs(tmp_path, i) for i in (1, 2, 3)] == [1, 1, 1]
    assert (tmp_path / "local" / "work" / "t1" / "res").read_text() == "ok\n"


def test_continue_on_failure_is_persisted_but_not_hashed(tmp_path):
    sub = scenario(tmp_path, continue_on_failure=True)
    sub.generate_jobs()
    data = sub.serialize()
    assert data["continue_on_failure"] is True
    assert "continue_on_failure" not in sub.serialize(if_static=True)
    assert list(data).index("continue_on_failure") == list(data).index("belonging_jobs") - 1
    plain = scenario(tmp_path, failing=True)
    plain.generate_jobs()
    assert plain.submission_hash == sub.submission_hash
    assert Submission.deserialize(data, sub.machine).continue_on_failure is True
