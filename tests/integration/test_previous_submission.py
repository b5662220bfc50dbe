"""``previous_submission_hash`` end to end on Shell + LocalContext.

As in dpdispatcher 1.1.0 (its test_previous_submission_resume.py): ``try_recover_from_json``
renames the job root of the previous submission to this one's and marks the tasks whose
finish tag is there finished (a job whose tasks all finished is finished). Beyond it, our
own guarantees: a rerun after a crash at any point of the adoption neither runs a
finished task again nor loses a result that was still in the job root.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher._script import names
from dpdispatcher.errors import (
    JobFailedError,
    JobRootConflictError,
    MissingStateError,
    RecoveryError,
)
from dpdispatcher.utils.job_status import JobStatus


def submission(
    tmp_path: Path, cpus: int, group_size: int, sleep: int = 0, **kw: object
) -> Submission:
    """Three tasks counting their runs; t2 fails until the file ``fixed`` exists."""
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(tmp_path / "remote"),
            "retry_count": 1,
        }
    )
    (tmp_path / "runs").mkdir(exist_ok=True)
    tasks = []
    for i in (1, 2, 3):
        (tmp_path / "local" / "work" / f"t{i}").mkdir(parents=True, exist_ok=True)
        gate = f"[ -e {tmp_path}/fixed ] || exit 3; " if i == 2 else ""
        count = f"sleep {sleep}; echo run >> {tmp_path}/runs/t{i}; "
        tasks.append(Task(count + gate + f"echo ok{i} > res", f"t{i}/", backward_files=["res"]))
    sub = Submission(
        "work",
        machine,
        Resources(1, cpus, 0, "", group_size),
        task_list=tasks,
        **kw,  # type: ignore[arg-type]
    )
    sub.timing.first_interval = 0.02
    sub.timing.resubmit_delay = 0.01
    return sub


def runs(tmp_path: Path) -> list[int]:
    out = []
    for i in (1, 2, 3):
        path = tmp_path / "runs" / f"t{i}"
        out.append(path.read_text().count("run") if path.exists() else 0)
    return out


def failed_first_run(tmp_path: Path, group_size: int) -> Submission:
    first = submission(tmp_path, 1, group_size, continue_on_failure=True)
    with pytest.raises(JobFailedError):
        first.run_submission(check_interval=0.05, clean=False)
    (tmp_path / "fixed").touch()
    return first


def results(tmp_path: Path) -> list[str]:
    work = tmp_path / "local" / "work"
    return [(work / f"t{i}" / "res").read_text() for i in (1, 2, 3)]


def test_a_job_whose_tasks_partly_finished_keeps_their_results(tmp_path):
    # one job of three tasks: t1 and t3 finished, t2 failed; the failed job's results
    # were not downloaded, they are still in the job root
    first = failed_first_run(tmp_path, group_size=3)
    assert runs(tmp_path) == [1, 2, 1]
    second = submission(tmp_path, 2, 3, previous_submission_hash=first.submission_hash)
    second.generate_jobs()
    assert second.try_recover_from_json()
    assert not (tmp_path / "remote" / first.submission_hash).exists()
    assert second.machine.context.remote_root == str(tmp_path / "remote" / second.submission_hash)
    states = {t.task_work_path: t.task_state for t in second.belonging_jobs[0].job_task_list}
    assert states == {
        "t1/": JobStatus.finished,
        "t2/": JobStatus.unsubmitted,
        "t3/": JobStatus.finished,
    }
    assert second.belonging_jobs[0].job_state == JobStatus.unsubmitted
    assert second.previous_submission_hash is None  # used up, as in 1.1.0
    second.run_submission(check_interval=0.05)
    assert runs(tmp_path) == [1, 3, 1]
    assert results(tmp_path) == ["ok1\n", "ok2\n", "ok3\n"]


def test_a_rename_interrupted_before_the_first_state_write_is_taken_over(tmp_path):
    first = failed_first_run(tmp_path, group_size=1)
    second = submission(tmp_path, 2, 1, previous_submission_hash=first.submission_hash)
    second.generate_jobs()
    # killed right after the rename: the new root holds only the previous state
    os.rename(
        tmp_path / "remote" / first.submission_hash, tmp_path / "remote" / second.submission_hash
    )
    again = submission(tmp_path, 2, 1, previous_submission_hash=first.submission_hash)
    again.run_submission(check_interval=0.05)
    assert runs(tmp_path) == [1, 3, 1]
    assert results(tmp_path) == ["ok1\n", "ok2\n", "ok3\n"]


def test_recovering_twice_in_one_process_changes_nothing(tmp_path):
    first = failed_first_run(tmp_path, group_size=1)
    second = submission(tmp_path, 2, 1, previous_submission_hash=first.submission_hash)
    second.generate_jobs()
    second.try_recover_from_json()
    finished = [j.job_state for j in second.belonging_jobs]
    assert sorted(finished) == [JobStatus.unsubmitted, JobStatus.finished, JobStatus.finished]
    second.run_submission(check_interval=0.05)  # recovers again, then runs t2 only
    assert runs(tmp_path) == [1, 3, 1]


def test_a_stale_new_root_is_refused_and_nothing_moves(tmp_path):
    first = failed_first_run(tmp_path, group_size=1)
    second = submission(tmp_path, 2, 1, previous_submission_hash=first.submission_hash)
    second.generate_jobs()
    (tmp_path / "remote" / second.submission_hash).mkdir()
    with pytest.raises(JobRootConflictError, match="both old and new") as err:
        second.run_submission(check_interval=0.05)
    assert isinstance(err.value, FileExistsError)  # what 1.1.0 raised
    assert (tmp_path / "remote" / first.submission_hash / f"{first.submission_hash}.json").exists()
    assert runs(tmp_path) == [1, 2, 1]


def test_a_missing_previous_state_names_the_hash(tmp_path):
    sub = submission(tmp_path, 1, 1, previous_submission_hash="0" * 40)
    sub.generate_jobs()
    with pytest.raises(MissingStateError, match="0" * 40) as err:
        sub.try_recover_from_json()
    assert isinstance(err.value, FileNotFoundError)


def test_jobs_of_the_previous_submission_still_running_are_waited_for(tmp_path):
    """Submitting the same tasks while the previous jobs run would run them twice."""
    first = submission(tmp_path, 1, 1, sleep=2)
    (tmp_path / "fixed").touch()
    first.run_submission(check_interval=0.05, exit_on_submit=True)
    assert all(job.job_id for job in first.belonging_jobs)

    def second() -> Submission:
        return submission(tmp_path, 2, 1, sleep=2, previous_submission_hash=first.submission_hash)

    with pytest.raises(RecoveryError, match="may still be queued or running"):
        second().run_submission(check_interval=0.05)
    assert (tmp_path / "remote" / first.submission_hash).is_dir()  # nothing moved
    old_root = tmp_path / "remote" / first.submission_hash
    tags = [old_root / names.job_tag_file(job.job_hash) for job in first.belonging_jobs]
    deadline = time.monotonic() + 60
    while not all(tag.exists() for tag in tags):  # the previous jobs end
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)  # and their shells exit
    second().run_submission(check_interval=0.05)
    assert runs(tmp_path) == [1, 1, 1]
    assert results(tmp_path) == ["ok1\n", "ok2\n", "ok3\n"]
