"""What clients of 1.x rely on (behaviour observed on dpdispatcher 1.1.0): ``Job.deserialize``
recomputes the hash from the content and keeps a ``null`` job state as "never checked",
jobs compare equal by tasks and resources, and ``LocalContext.call`` starts a command."""

from __future__ import annotations

import logging
import os

import pytest

from dpdispatcher import Job, Resources, Task
from dpdispatcher.utils.job_status import JobStatus


def job(path: str = "a") -> Job:
    return Job([Task("ls", path)], resources=Resources(1, 1, 0, "q", 1))


def test_a_mismatched_recorded_hash_is_warned_about_and_replaced(caplog):
    original = job()
    ((good_hash, body),) = original.serialize().items()
    body.update(job_state=None, job_id="", fail_count=0)
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        loaded = Job.deserialize({"bc1a7297489e921034ced5036cb23ef9daf7b681": body})
    assert loaded.job_hash == good_hash
    assert loaded.job_state == JobStatus.unsubmitted
    assert "bc1a7297489e921034ced5036cb23ef9daf7b681" in caplog.text
    assert "does not match its content" in caplog.text


def test_a_matching_hash_loads_silently(caplog):
    original = job()
    original.job_state, original.job_id, original.fail_count = JobStatus.running, "42", 1
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        loaded = Job.deserialize(original.serialize())
    assert caplog.text == ""
    assert (loaded.job_state, loaded.job_id, loaded.fail_count) == (JobStatus.running, "42", 1)


def test_jobs_compare_by_content_not_by_runtime_fields():
    a, b = job(), job()
    b.job_state, b.job_id, b.fail_count = JobStatus.finished, "12", 3
    assert a == b
    assert a != job("b")
    assert a != "a"
    with pytest.raises(TypeError):
        hash(a)


def test_local_context_call_runs_in_the_job_root_without_waiting(tmp_path):
    # 1.1.0's LocalContext.call / check_finish / get_return, used by clients of 1.x
    from dpdispatcher.contexts.local_context import LocalContext

    ctx = LocalContext(local_root=str(tmp_path), remote_root=str(tmp_path))
    proc = ctx.call("sleep 0.2; pwd; echo oops >&2; exit 3")
    assert not ctx.check_finish(proc)
    code, out, err = ctx.get_return(proc)
    assert ctx.check_finish(proc)
    assert code == 3
    assert out.read().decode().strip() == str(tmp_path)
    assert err.read() == b"oops\n"


def test_failure_reason_and_task_states_are_runtime_fields_that_round_trip():
    # observed on 1.1.0: serialize() records "failure_reason" and "task_states" (one int per
    # task) after fail_count; serialize(if_static=True) and the hash leave them out
    import json

    a = job()
    static_hash = a.job_hash
    a.job_state, a.failure_reason = JobStatus.failed, "boom"
    a.job_task_list[0].task_state = JobStatus.failed
    ((_, body),) = a.serialize().items()
    assert list(body)[-5:] == ["job_state", "job_id", "fail_count", "failure_reason", "task_states"]
    assert (body["failure_reason"], body["task_states"]) == ("boom", [int(JobStatus.failed)])
    assert "task_states" not in next(iter(a.serialize(if_static=True).values()))
    assert a.to_json() == json.dumps(a.serialize())
    restored = Job.deserialize(a.serialize())
    assert restored.job_hash == static_hash
    assert restored.failure_reason == "boom"
    assert restored.job_task_list[0].task_state == JobStatus.failed


def test_generating_jobs_binds_the_context_to_the_job_root(tmp_path):
    # observed on 1.1.0: after generate_jobs() (or bind_machine() of a submission with jobs)
    # machine.context.submission is set and remote_root is remote_root/<submission_hash>
    import os

    from dpdispatcher import Machine, Submission

    machine = Machine(
        batch_type="Shell",
        context_type="LocalContext",
        local_root=str(tmp_path),
        remote_root=str(tmp_path / "remote"),
    )
    sub = Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=[Task("ls", "a")])
    sub.generate_jobs()
    assert machine.context.submission is sub
    job_root = os.path.join(str(tmp_path / "remote"), sub.submission_hash)
    assert machine.context.remote_root == job_root
    other = Machine(
        batch_type="Shell",
        context_type="LocalContext",
        local_root=str(tmp_path),
        remote_root=str(tmp_path / "other"),
    )
    sub.bind_machine(other)
    assert other.context.submission is sub


def test_an_ssh_context_with_a_relative_root_is_not_bound_before_the_run():
    # binding it would open a connection to find the remote home; that waits for the run
    from dpdispatcher import Machine, Submission

    machine = Machine(
        batch_type="Shell",
        context_type="SSHContext",
        local_root=".",
        remote_root="relative/root",
        remote_profile={"hostname": "host.invalid", "username": "nobody"},
    )
    sub = Submission(".", machine, Resources(1, 1, 0, "", 1), task_list=[Task("ls", "a")])
    sub.generate_jobs()  # would raise a connection error if it connected
    assert machine.context.submission is None


def test_a_state_file_of_another_submission_says_recover_failed():
    # 1.1.0's RuntimeError for a mismatched state file reads "Recover failed ..."
    from dpdispatcher._state import parse_state
    from dpdispatcher.errors import RecoveryError

    with pytest.raises(RecoveryError, match=r"^Recover failed: state\.json describes a different"):
        parse_state('{"work_base": "elsewhere"}', "state.json", {"work_base": "here"})
    assert issubclass(RecoveryError, RuntimeError)


@pytest.mark.parametrize("bad", ["../../another-directory", "A" * 40, "", 12])
def test_a_malformed_previous_submission_hash_is_refused_at_construction(bad):
    # observed on 1.1.0: ValueError "previous_submission_hash must be a 40-character SHA-1"
    # (uppercase and empty refused too); ours is a ConfigurationError, also a ValueError
    from dpdispatcher import Submission

    with pytest.raises(ValueError, match="40-character SHA-1"):
        Submission(".", None, Resources(1, 1, 0, "", 1), previous_submission_hash=bad)


def test_deserialize_keeps_the_previous_submission_hash():
    from dpdispatcher import Submission

    sub = Submission(".", None, Resources(1, 1, 0, "", 1), task_list=[Task("ls", "a")])
    sub.generate_jobs()
    data = sub.serialize()
    data["previous_submission_hash"] = "0" * 40
    assert Submission.deserialize(data).previous_submission_hash == "0" * 40


def test_previous_submission_with_other_tasks_is_refused(tmp_path):
    # 1.1.0's RuntimeError names the changed "task grouping"; only resources may change
    from dpdispatcher import Machine, Submission
    from dpdispatcher.errors import RecoveryError

    def submission(command: str, wait_time: int, **kwargs):
        machine = Machine(
            batch_type="Shell",
            context_type="LocalContext",
            local_root=str(tmp_path),
            remote_root=str(tmp_path / "remote"),
        )
        resources = Resources(1, 1, 0, "", 1, wait_time=wait_time)
        sub = Submission("work", machine, resources, task_list=[Task(command, "t")], **kwargs)
        sub.generate_jobs()
        return sub

    (tmp_path / "work").mkdir()
    previous = submission("true", 0)
    os.makedirs(previous.machine.context.remote_root)
    previous.submission_to_json()
    current = submission("false", 30, previous_submission_hash=previous.submission_hash)
    with pytest.raises(RecoveryError, match="not the tasks or their task grouping"):
        current.try_recover_from_json()
