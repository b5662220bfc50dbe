"""Scale: cached JSON stays true under mutation, and the work grows linearly with N.

Nothing here is timed. Linearity is checked by counting calls of ``json.dumps``,
``hashlib.sha1`` and ``Task.serialize`` for N and 2N tasks: doubling N may double them,
never quadruple them. Benchmarks with timings live in benchmarks/bench_scale.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from pathlib import Path

import pytest

from dpdispatcher import Job, Machine, Resources, Submission, Task
from dpdispatcher import task as task_module
from dpdispatcher.errors import ConfigurationError


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _machine(tmp_path):
    return Machine.load_from_dict(
        {"batch_type": "Shell", "context_type": "LazyLocalContext", "local_root": str(tmp_path)}
    )


def _tasks(n: int) -> list[Task]:
    return [
        Task(
            f"echo {i}", f"t{i}", forward_files=["in.txt", "conf.json"], backward_files=["out.txt"]
        )
        for i in range(n)
    ]


def _resources(group_size: int = 2) -> Resources:
    return Resources(
        1,
        2,
        0,
        "q",
        group_size,
        envs={"A": "1"},
        kwargs={"gpu_usage": False},
        strategy={"if_cuda_multi_devices": False},
    )


# -- the cached JSON is the JSON of the object as it is now ------------------------------

TASK_CHANGES = [
    ("append", lambda t: t.forward_files.append("more.txt")),
    ("extend", lambda t: t.backward_files.extend(["x", "y"])),
    ("setitem", lambda t: t.forward_files.__setitem__(0, "renamed.txt")),
    ("iadd", lambda t: t.forward_files.__iadd__(["z"])),
    ("pop", lambda t: t.forward_files.pop()),
    ("sort", lambda t: t.forward_files.sort()),
    ("clear", lambda t: t.backward_files.clear()),
    ("assign list", lambda t: setattr(t, "forward_files", ["new"])),
    ("assign command", lambda t: setattr(t, "command", "echo changed")),
    ("assign task_name", lambda t: setattr(t, "task_name", "named")),
]


@pytest.mark.parametrize(("what", "change"), TASK_CHANGES, ids=[c[0] for c in TASK_CHANGES])
def test_task_json_follows_every_change(what, change):
    task = _tasks(1)[0]
    before = task.to_json()
    built_hash = task.task_hash
    change(task)
    assert task.to_json() == json.dumps(task.serialize()) != before
    assert task.get_hash() == _sha1(json.dumps(task.serialize()))
    assert task.task_hash == built_hash  # as in the original: the hash taken when built


def test_a_list_assigned_to_a_task_is_copied_and_tracked():
    task, mine = _tasks(1)[0], ["a"]
    task.forward_files = mine
    mine.append("b")  # the caller's list is not the task's
    assert task.forward_files == ["a"]
    task.forward_files.append("c")
    assert json.loads(task.to_json())["forward_files"] == ["a", "c"]


RESOURCES_CHANGES = [
    ("kwargs item", lambda r: r.kwargs.__setitem__("custom_gpu_line", "#X")),
    ("kwargs update", lambda r: r.kwargs.update(gpu_usage=True)),
    ("envs pop", lambda r: r.envs.pop("A")),
    ("strategy setdefault", lambda r: r.strategy.setdefault("not_there_yet", 0.5)),
    ("custom_flags append", lambda r: r.custom_flags.append("#SBATCH --x")),
    ("nested list in envs", lambda r: (r.envs.__setitem__("L", ["a"]), r.envs["L"].append("b"))),
    ("assign group_size", lambda r: setattr(r, "group_size", 7)),
    ("assign envs", lambda r: setattr(r, "envs", {"B": "2"})),
]


@pytest.mark.parametrize(
    ("what", "change"), RESOURCES_CHANGES, ids=[c[0] for c in RESOURCES_CHANGES]
)
def test_resources_json_follows_every_change(what, change):
    res = _resources()
    before = res.to_json()
    change(res)
    assert res.to_json() == json.dumps(res.serialize()) != before


def test_each_job_owns_its_resources_and_they_start_from_the_shared_text():
    res = _resources()
    res.to_json()
    a, b = res.copy(), res.copy()
    assert a.to_json() is res.to_json()  # no serialisation for the copy
    a.kwargs["custom_gpu_line"] = "#A"
    assert "#A" not in b.to_json() and "#A" not in res.to_json()
    assert a.to_json() == json.dumps(a.serialize())


def test_job_and_submission_json_match_json_dumps_after_changes(tmp_path):
    sub = Submission(".", _machine(tmp_path), _resources(), task_list=_tasks(5))
    sub.generate_jobs()
    job = sub.belonging_jobs[0]
    job.job_id, job.fail_count = "12", 1
    job.job_task_list[0].forward_files.append("late.txt")
    job.resources.envs["LATE"] = "1"
    assert job.to_json() == json.dumps(job.serialize())
    assert job.to_json(if_static=True) == json.dumps(job.serialize(if_static=True))
    assert "".join(sub.json_chunks()) == json.dumps(sub.serialize())
    assert sub.get_hash() == _sha1(json.dumps(sub.serialize(if_static=True)))


def test_a_job_keeps_its_json_until_something_in_it_changes(tmp_path):
    sub = Submission(".", _machine(tmp_path), _resources(), task_list=_tasks(4))
    sub.generate_jobs()
    job = sub.belonging_jobs[0]
    first = job.to_json()
    assert job.json_pieces()[1] is job.json_pieces()[1]  # cached
    assert job.to_json() == first
    job.job_task_list.append(Task("echo added", "added"))
    assert job.to_json() == json.dumps(job.serialize()) != first
    for clone in (copy.deepcopy(job), pickle.loads(pickle.dumps(job))):
        clone.job_task_list.pop()
        assert clone.to_json() == json.dumps(clone.serialize()) != job.to_json()
    job.job_state = job.job_state.__class__.running
    assert '"job_state": 3' in job.to_json()


def test_job_hash_recipe_is_unchanged():
    tasks = _tasks(3)
    job = Job(tasks, resources=_resources())
    static = {
        "job_task_list": [t.serialize() for t in tasks],
        "resources": job.resources.serialize(),
    }
    assert job.job_hash == job.get_hash() == _sha1(json.dumps(static))


def test_copies_and_pickles_of_tasks_and_resources_stay_tracked():
    task, res = _tasks(1)[0], _resources()
    for clone in (copy.deepcopy(task), pickle.loads(pickle.dumps(task))):
        assert clone == task and clone.task_hash == task.task_hash
        clone.forward_files.append("new")
        assert clone.to_json() == json.dumps(clone.serialize()) != task.to_json()
    for clone_res in (copy.deepcopy(res), pickle.loads(pickle.dumps(res))):
        assert clone_res == res
        clone_res.kwargs["x"] = 1
        assert clone_res.to_json() == json.dumps(clone_res.serialize()) != res.to_json()


def test_a_shallow_copy_of_a_task_owns_its_file_lists():
    task = _tasks(1)[0]
    assert task.forward_files == ["in.txt", "conf.json"]
    clone = copy.copy(task)
    task.forward_files.append("late.txt")
    clone.backward_files.append("more.txt")
    assert clone.forward_files == ["in.txt", "conf.json"] and task.backward_files == ["out.txt"]
    for t in (task, clone):
        assert t.to_json() == json.dumps(t.serialize())


def test_tasks_still_take_other_attributes_and_refuse_a_string_file_list():
    task = _tasks(1)[0]
    task.note = "kept"  # the original's tasks accept any attribute
    assert task.note == "kept"
    with pytest.raises(ConfigurationError, match="forward_files"):
        Task("echo", "d", forward_files="in.txt")  # type: ignore[arg-type]


def test_a_task_listed_twice_is_grouped_with_one_warning(tmp_path, caplog):
    """1.1.0 groups identical tasks like any others (its test_group_size: 99 copies of one
    task, group_size 1 -> 99 jobs); here one WARNING names the repetition."""
    tasks = _tasks(3)
    sub = Submission(".", _machine(tmp_path), _resources(), task_list=[*tasks, _tasks(2)[1]])
    with caplog.at_level("WARNING", logger="dpdispatcher"):
        sub.generate_jobs()
    assert sum(len(job.job_task_list) for job in sub.belonging_jobs) == 4
    warnings = [r.getMessage() for r in caplog.records if "more than once" in r.getMessage()]
    assert len(warnings) == 1 and "1 task(s)" in warnings[0], warnings


# -- linearity: doubling N doubles the work -------------------------------------------------


class _Counts:
    def __init__(self, monkeypatch):
        self.calls = {"json.dumps": 0, "sha1": 0, "Task.serialize": 0, "task JSON": 0}
        for owner, name, key in (
            (json, "dumps", "json.dumps"),
            (hashlib, "sha1", "sha1"),
            (Task, "serialize", "Task.serialize"),
            (task_module, "_task_json", "task JSON"),
        ):
            monkeypatch.setattr(owner, name, self._counting(getattr(owner, name), key))

    def _counting(self, func, key):
        def wrapper(*args, **kwargs):
            self.calls[key] += 1
            return func(*args, **kwargs)

        return wrapper


def _pipeline(tmp_path, n: int, polls: int) -> Submission:
    """Build, group, hash, serialise and write the state ``polls`` times."""
    machine = _machine(tmp_path)
    sub = Submission(".", machine, _resources(group_size=3), task_list=_tasks(n))
    sub.generate_jobs()
    sub.get_hash()
    machine.context.bind_submission(sub)
    for i in range(polls):
        sub.belonging_jobs[i % len(sub.belonging_jobs)].job_id = str(100 + i)
        sub.submission_to_json()
    return sub


@pytest.mark.parametrize("n", [300, 600])
def test_doubling_the_tasks_doubles_the_hashing_and_serialising(tmp_path, monkeypatch, n):
    counts = {}
    for size in (n, 2 * n):
        counter = _Counts(monkeypatch)
        _pipeline(tmp_path / str(size), size, polls=5)
        counts[size] = dict(counter.calls)
        monkeypatch.undo()
    assert counts[n]["sha1"] >= n and counts[n]["task JSON"] >= n, counts  # they see the work
    for key, small in counts[n].items():
        assert counts[2 * n][key] <= 2.1 * small + 10, (key, counts)


def test_a_state_write_serialises_nothing_already_serialised(tmp_path, monkeypatch):
    sub = _pipeline(tmp_path, 200, polls=1)
    counter = _Counts(monkeypatch)
    for i in range(10):
        sub.belonging_jobs[i].job_id = str(500 + i)
        sub.submission_to_json()
    calls = counter.calls
    assert calls["Task.serialize"] == calls["task JSON"] == calls["sha1"] == 0
    assert calls["json.dumps"] <= 10 * 8  # the few small head fields of each write, not per job
    written = (tmp_path / f"{sub.submission_hash}.json").read_text()
    assert written == json.dumps(sub.serialize())


def test_a_state_write_renders_only_the_jobs_that_changed(tmp_path, monkeypatch):
    from dpdispatcher import _submission_state
    from dpdispatcher.utils.job_status import JobStatus

    monkeypatch.setattr(_submission_state, "JOBS_PER_PIECE", 7)  # several pieces
    sub = _pipeline(tmp_path, 90, polls=1)
    state = tmp_path / f"{sub.submission_hash}.json"
    jobs = sub.belonging_jobs

    def rendered_again(write) -> list[int]:
        before = [job.state_json() for job in jobs]
        write()
        return [i for i, (old, job) in enumerate(zip(before, jobs)) if job.state_json() is not old]

    assert rendered_again(sub.submission_to_json) == []  # nothing changed: texts reused

    def change_two() -> None:
        jobs[9].job_state, jobs[20].fail_count = JobStatus.running, 2
        sub.submission_to_json()

    assert rendered_again(change_two) == [9, 20]
    assert state.read_text() == json.dumps(sub.serialize())
    jobs[25].job_task_list[1].task_state = JobStatus.failed  # a task's state: in the file
    jobs[3].failure_reason = 'gave up: "quoted"'
    sub.submission_to_json()
    assert state.read_text() == json.dumps(sub.serialize())
    jobs[4].job_task_list[0].forward_files.append("late.txt")  # a tracked change
    sub.submission_to_json()
    assert state.read_text() == json.dumps(sub.serialize())


def test_poll_bookkeeping_leaves_the_garbage_collector_nothing_per_job(tmp_path):
    """Caches kept per job and the finish tags asked per job hold strings and numbers only:
    the collector stops tracking them, so a poll over thousands of jobs does not push it
    into full collections of the whole heap."""
    import gc

    from dpdispatcher.machines.shell import parse_ps_output

    sub = _pipeline(tmp_path, 30, polls=1)
    gc.collect()
    gc.collect()  # a tuple holding a tuple is untracked once the inner one is
    caches = [job._state_cache for job in sub.belonging_jobs]
    assert caches and not any(gc.is_tracked(cache) for cache in caches)
    table = parse_ps_output("".join(f"{100 + i} S bash x{i}.sub\n" for i in range(50)))
    assert all(type(v) is str for v in table.values())


def test_ps_lines_parse_to_pid_and_the_rest():
    from dpdispatcher.machines.shell import parse_ps_output

    out = "  812 Ss   bash /r/.abc.sub tag\n 9 Z\n\n   77 R+ bash -l x.sub  \n"
    table = parse_ps_output(out)
    assert table == {"812": "Ss   bash /r/.abc.sub tag", "9": "Z", "77": "R+ bash -l x.sub  "}


# -- a poll's batched finish-tag check and the local state copy -----------------------------


def test_tags_are_asked_by_name_whatever_else_the_job_root_holds(tmp_path, monkeypatch):
    """What exists is what ``os.path.lexists`` says; the root is never listed (a real one
    holds five files and a directory per job: listing it costs more than the names)."""
    import os

    from dpdispatcher.contexts import _local

    ctx = _machine(tmp_path).context
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    present = [f"{i}_job_tag_finished" for i in range(0, 80, 2)]
    for name in present:
        (root / name).touch()
    for i in range(200):  # the other files of a job root
        (root / f".{i}.sub").touch()
    (root / "sub" / "t_tag").touch()
    os.symlink(root / "nowhere", root / "dangling")  # lexists: it is there
    asked = [f"{i}_job_tag_finished" for i in range(80)] + [
        "sub/t_tag",
        "sub/none",
        "dangling",
        "nodir/x",
        "",
        ".",
    ]
    ctx.remote_root = str(root)
    listings = []
    real_listdir = os.listdir
    monkeypatch.setattr(_local.os, "listdir", lambda d: listings.append(d) or real_listdir(d))
    found = ctx.files_exist(asked)
    assert found == {f for f in asked if os.path.lexists(os.path.join(root, f))}
    assert found >= set(present) | {"sub/t_tag", "dangling", "", "."}
    assert listings == []
    ctx.remote_root = str(tmp_path / "no-such-root")
    assert ctx.files_exist(asked) == set()


def test_the_local_state_copy_is_a_link_to_a_local_job_root_state(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("DPDISPATCHER_HOME", str(tmp_path / "home"))
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(tmp_path),
            "remote_root": str(tmp_path / "remote"),
        }
    )
    sub = Submission(".", machine, _resources(), task_list=_tasks(3))
    sub.generate_jobs()
    machine.context.bind_submission(sub)
    os.makedirs(machine.context.remote_root, exist_ok=True)
    sub.submission_to_json()
    state = os.path.join(machine.context.remote_root, f"{sub.submission_hash}.json")
    copy_ = tmp_path / "home" / "submission" / f"{sub.submission_hash}.json"
    assert os.path.samefile(state, copy_)
    sub.belonging_jobs[0].job_id = "77"
    sub.submission_to_json()  # the job root's file is replaced: the copy follows
    assert copy_.read_text() == json.dumps(sub.serialize()) == Path(state).read_text()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1000, 4097])
@pytest.mark.parametrize("seed", [42, 0, 7])
def test_the_grouping_shuffle_is_randoms_shuffle(n, seed):
    import random

    from dpdispatcher._shuffle import seeded_shuffle

    expected = list(range(n))
    random.Random(seed).shuffle(expected)
    assert seeded_shuffle(range(n), seed) == expected


def test_jobs_share_the_resources_text_until_one_is_asked_for(tmp_path):
    res = _resources()
    sub = Submission(".", _machine(tmp_path), res, task_list=_tasks(6))
    sub.generate_jobs()
    first, second = sub.belonging_jobs[0], sub.belonging_jobs[1]
    res.envs["AFTER"] = "1"  # the jobs keep the resources they were generated with
    own = first.resources
    assert own is not res and "AFTER" not in own.envs and own is first.resources
    own.kwargs["custom_gpu_line"] = "#only-first"
    assert "#only-first" not in second.resources.to_json()
    assert "AFTER" not in second.resources.envs
    assert first.to_json() == json.dumps(first.serialize())
    assert second.to_json() == json.dumps(second.serialize())


def test_many_jobs_finishing_in_one_poll_make_one_log_line(tmp_path, caplog):
    import logging

    from dpdispatcher._submission_poll import FINISHED_LINES, _log_finished

    sub = Submission(
        ".", _machine(tmp_path), _resources(group_size=1), task_list=_tasks(FINISHED_LINES + 5)
    )
    sub.generate_jobs()
    with caplog.at_level(logging.INFO, logger="dpdispatcher"):
        _log_finished(sub.belonging_jobs[:2])
        assert [r.getMessage().endswith(" finished") for r in caplog.records] == [True, True]
        caplog.clear()
        _log_finished(sub.belonging_jobs)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"{FINISHED_LINES + 5} jobs finished: ")


def test_the_poll_benchmark_runs_its_five_polls(tmp_path, monkeypatch):
    """benchmarks/bench_scale.py's poll measurement at a small size: it runs, and checks
    itself that the jobs were found running and then finished."""
    import os
    import sys

    monkeypatch.setenv("PATH", os.environ["PATH"])  # the benchmark puts its ps first
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    monkeypatch.delitem(sys.modules, "bench_scale", raising=False)
    import bench_scale

    result = bench_scale.child_poll(tmp_path, 200)
    assert set(result) == {
        "first_running_ms",
        "running_ms",
        "some_finishing_ms",
        "finishing_ms",
        "finished_ms",
    }
