"""A submission before its tasks are grouped into jobs, as dpdispatcher 1.1.0 has it.

Observed on 1.1.0 (its tests test_bind_machine_keeps_hash_and_context_root_in_sync and
test_deserialize_preserves_tasks_before_job_generation, and by running it): a submission
bound to a machine has a hash at once, its context points at ``remote_root/<hash>``
(``context.temp_remote_root`` is that ``remote_root``), and until the jobs exist its
dictionary holds ``belonging_tasks`` (after the common files, before
``continue_on_failure`` and ``belonging_jobs``); once they exist it does not.
"""

from __future__ import annotations

import hashlib
import json
import os

from dpdispatcher import Machine, Resources, Submission, Task


def machine(tmp_path, context_type="LocalContext"):
    data = {"batch_type": "Shell", "context_type": context_type, "local_root": str(tmp_path)}
    if context_type != "LazyLocalContext":
        data["remote_root"] = str(tmp_path / "remote")
    return Machine.load_from_dict(data)


def tasks():
    return [Task("echo a", "a", backward_files=["r"]), Task("echo b", "b")]


def test_a_bound_submission_has_a_hash_and_a_job_root_before_its_jobs(tmp_path):
    m = machine(tmp_path)
    sub = Submission("work", m, Resources(1, 1, 0, "", 1))
    assert sub.submission_hash == sub.get_hash()
    assert m.context.temp_remote_root == str(tmp_path / "remote")
    assert m.context.remote_root == os.path.join(m.context.temp_remote_root, sub.submission_hash)


def test_the_job_root_follows_the_hash_once_jobs_are_generated(tmp_path):
    m = machine(tmp_path)
    sub = Submission("work", m, Resources(1, 1, 0, "", 1), task_list=tasks())
    before = sub.submission_hash
    sub.generate_jobs()
    assert sub.submission_hash != before
    assert m.context.remote_root == str(tmp_path / "remote" / sub.submission_hash)


def test_lazy_local_binds_to_the_work_base_at_once(tmp_path):
    m = machine(tmp_path, "LazyLocalContext")
    Submission("work", m, Resources(1, 1, 0, "", 1), task_list=tasks())
    assert m.context.remote_root == str(tmp_path / "work")


def test_tasks_are_serialized_until_they_are_grouped(tmp_path):
    sub = Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks())
    data = sub.serialize()
    keys = list(data)
    assert keys.index("backward_common_files") < keys.index("belonging_tasks")
    assert keys.index("belonging_tasks") < keys.index("continue_on_failure")
    assert data["belonging_tasks"] == [t.serialize() for t in tasks()]
    assert data["belonging_jobs"] == []
    static = sub.serialize(if_static=True)
    assert list(static)[-2:] == ["belonging_tasks", "belonging_jobs"]
    # the hash (and a state file) is the JSON of those dictionaries
    assert "".join(sub.json_chunks()) == json.dumps(data)
    assert sub.get_hash() == hashlib.sha1(json.dumps(static).encode()).hexdigest()
    back = Submission.deserialize(json.loads(json.dumps(data)), bind_context=False)
    assert back.belonging_tasks == sub.belonging_tasks
    assert back.serialize() == data


def test_a_grouped_submission_has_no_belonging_tasks_key(tmp_path):
    sub = Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks())
    sub.generate_jobs()
    assert "belonging_tasks" not in sub.serialize()
    assert "belonging_tasks" not in sub.serialize(if_static=True)
    assert "belonging_tasks" not in "".join(sub.json_chunks())


def test_deserialize_without_binding_leaves_the_context_alone(tmp_path):
    m = machine(tmp_path)
    sub = Submission("work", m, Resources(1, 1, 0, "", 1), task_list=tasks())
    sub.generate_jobs()
    other = machine(tmp_path)
    root = other.context.remote_root
    back = Submission.deserialize(sub.serialize(), machine=other, bind_context=False)
    assert other.context.remote_root == root and other.context.submission is None
    assert back.submission_hash == sub.submission_hash
