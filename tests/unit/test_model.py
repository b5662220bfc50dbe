"""Data model: schemas, registries, serialisation, hashes and grouping."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from dpdispatcher import Job, Machine, Resources, Submission, Task
from dpdispatcher.base_context import BaseContext
from dpdispatcher.errors import ConfigurationError, UnknownNameError
from dpdispatcher.utils.job_status import JobStatus


def machine(tmp_path, **extra):
    return Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(tmp_path),
            "remote_root": str(tmp_path / "r"),
            **extra,
        }
    )


def test_jobstatus_values_are_frozen():
    assert {s.name: int(s) for s in JobStatus} == {
        "unsubmitted": 1,
        "waiting": 2,
        "running": 3,
        "terminated": 4,
        "finished": 5,
        "completing": 6,
        "failed": 7,
        "unknown": 100,
    }


@pytest.mark.parametrize("name", ["Shell", "shell", "SHELL"])
def test_batch_type_lookup_is_case_insensitive(name):
    assert Machine.get_class(name).__name__ == "Shell"


@pytest.mark.parametrize("name", ["LocalContext", "local", "Local", "localcontext", "LOCAL"])
def test_context_lookup_accepts_suffixless_names(name):
    assert BaseContext.get_class(name).__name__ == "LocalContext"


def test_unknown_name_lists_valid_names_and_closest():
    with pytest.raises(UnknownNameError) as err:
        Machine.get_class("Shel")
    assert "Did you mean Shell?" in str(err.value) and "valid names" in str(err.value)
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


def test_machine_factory_builds_registered_subclass(tmp_path):
    m = Machine(batch_type="shell", context_type="lazylocal", local_root=str(tmp_path))
    assert type(m).__name__ == "Shell" and type(m.context).__name__ == "LazyLocalContext"
    ctx = BaseContext(context_type="Local", local_root=str(tmp_path), remote_root="/x")
    assert type(ctx).__name__ == "LocalContext"


def test_resources_defaults_filled_and_order_fixed():
    r = Resources.load_from_dict({"group_size": 3, "_comment": "ignored"})
    data = r.serialize()
    assert list(data) == [
        "number_node",
        "cpu_per_node",
        "gpu_per_node",
        "queue_name",
        "group_size",
        "custom_flags",
        "strategy",
        "para_deg",
        "module_purge",
        "module_unload_list",
        "module_list",
        "source_list",
        "envs",
        "prepend_script",
        "append_script",
        "wait_time",
        "kwargs",
    ]
    assert (data["number_node"], data["cpu_per_node"], data["gpu_per_node"]) == (1, 1, 0)
    assert data["strategy"]["if_cuda_multi_devices"] is False
    assert data["strategy"]["ratio_unfinished"] == 0.0


def test_resources_kwargs_nested_or_flat_are_equal():
    nested = Resources(1, 2, 1, "q", 1, kwargs={"custom_gpu_line": "#SBATCH --gres=gpu:1"})
    flat = Resources(1, 2, 1, "q", 1, custom_gpu_line="#SBATCH --gres=gpu:1")
    assert nested == flat
    loaded = Resources.load_from_dict(
        {
            "group_size": 1,
            "gpu_per_node": 1,
            "queue_name": "q",
            "cpu_per_node": 2,
            "custom_gpu_line": "#SBATCH --gres=gpu:1",
        }
    )
    assert loaded == nested


def test_resources_round_trip():
    r = Resources(
        2,
        4,
        1,
        "gpu",
        5,
        custom_flags=["#SBATCH --time=1:00:00"],
        strategy={"if_cuda_multi_devices": True},
        para_deg=2,
        envs={"A": "1", "L": ["x", "y"]},
        module_list=["m/1"],
        wait_time=0.5,
    )
    assert Resources.deserialize(r.serialize()) == r


def test_task_round_trip_and_hash():
    t = Task("echo hi", "dir1/", ["a"], ["b*"], "out", None, task_name="t1")
    data = t.serialize()
    assert list(data) == [
        "command",
        "task_work_path",
        "forward_files",
        "backward_files",
        "outlog",
        "errlog",
        "task_name",
    ]
    assert Task.deserialize(data) == t
    assert t.get_hash() == hashlib.sha1(json.dumps(data).encode()).hexdigest()
    assert "task_name" not in Task("x", "d").serialize()


def test_grouping_order_matches_seed_42(tmp_path):
    tasks = [Task(f"echo {i}", f"t{i}") for i in range(8)]
    sub = Submission(".", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks)
    sub.generate_jobs()
    order = [int(job.job_task_list[0].task_work_path[1:]) for job in sub.belonging_jobs]
    assert order == [3, 4, 6, 7, 2, 5, 0, 1]


def test_grouping_sizes_and_group_size_zero(tmp_path):
    tasks = [Task(f"echo {i}", f"t{i}") for i in range(7)]
    sub = Submission(".", machine(tmp_path), Resources(1, 1, 0, "", 3), task_list=tasks)
    sub.generate_jobs()
    assert [len(j.job_task_list) for j in sub.belonging_jobs] == [3, 3, 1]
    assert sub.belonging_jobs[0].resources is not sub.belonging_jobs[1].resources
    whole = Submission(".", machine(tmp_path), Resources(1, 1, 0, "", 0), task_list=tasks)
    whole.generate_jobs()
    assert len(whole.belonging_jobs) == 1


def test_grouping_does_not_touch_global_random(tmp_path):
    import random

    random.seed(7)
    expected = random.random()
    random.seed(7)
    sub = Submission(
        ".",
        machine(tmp_path),
        Resources(1, 1, 0, "", 1),
        task_list=[Task(f"echo {i}", f"t{i}") for i in range(4)],
    )
    sub.generate_jobs()
    assert random.random() == expected


def test_job_hash_and_serialize(tmp_path):
    t = Task("echo", "d")
    job = Job([t], resources=Resources(1, 1, 0, "", 1))
    static = {"job_task_list": [t.serialize()], "resources": job.resources.serialize()}
    assert job.job_hash == hashlib.sha1(json.dumps(static).encode()).hexdigest()
    job.job_id, job.job_state, job.fail_count = "42", JobStatus.running, 2
    back = Job.deserialize(job.serialize())
    assert (back.job_id, back.job_state, back.fail_count) == ("42", JobStatus.running, 2)
    assert list(job.serialize(if_static=True)[job.job_hash]) == ["job_task_list", "resources"]


def test_submission_round_trip_and_hash(tmp_path):
    sub = Submission(
        "wb",
        machine(tmp_path),
        Resources(1, 1, 0, "", 2),
        forward_common_files=["b", "a"],
        task_list=[Task("echo", "d1"), Task("echo", "d2")],
    )
    assert sub.forward_common_files == ["a", "b"]
    sub.generate_jobs()
    back = Submission.deserialize(json.loads(json.dumps(sub.serialize())))
    assert back.serialize() == sub.serialize()
    assert (
        back.submission_hash
        == sub.submission_hash
        == hashlib.sha1(json.dumps(sub.serialize(if_static=True)).encode()).hexdigest()
    )


def test_hash_ignores_secrets_and_retry_count(tmp_path):
    a = machine(tmp_path)
    b = machine(tmp_path, retry_count=9)
    assert a.state_dict() == b.state_dict()
    hashes = set()
    for m in (a, b):
        sub = Submission("wb", m, Resources(1, 1, 0, "", 1), task_list=[Task("echo", "d1")])
        sub.generate_jobs()
        hashes.add(sub.submission_hash)
    assert len(hashes) == 1
    # the public dictionary is 1.1.0's, retry_count included (its test_argcheck)
    assert (a.serialize()["retry_count"], b.serialize()["retry_count"]) == (3, 9)


def test_yaml_and_json_loaders(tmp_path):
    (tmp_path / "r.yaml").write_text("group_size: 2\ncpu_per_node: 4\n")
    (tmp_path / "t.json").write_text('{"command": "ls", "task_work_path": "x"}')
    assert Resources.load_from_yaml(tmp_path / "r.yaml").cpu_per_node == 4
    assert Task.load_from_json(tmp_path / "t.json").outlog == "log"


def test_arginfo_objects_generate_docs():
    for arg in (Machine.arginfo(), Resources.arginfo(), Task.arginfo()):
        assert arg.gen_doc()


def test_unknown_key_warns_with_suggestion_and_is_dropped(caplog):
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        res = Resources.load_from_dict({"group_size": 1, "cpu_per_nod": 2})
    assert res.cpu_per_node == 1 and "cpu_per_nod" not in res.serialize()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "resources: unknown key 'cpu_per_nod' ignored; did you mean 'cpu_per_node'?"
    ]


def test_unknown_key_is_an_error_only_when_strict():
    with pytest.raises(ConfigurationError) as err:
        Resources.load_from_dict({"group_size": 1, "cpu_per_nod": 2}, strict=True)
    assert "cpu_per_nod" in str(err.value) and "cpu_per_node" in str(err.value)
