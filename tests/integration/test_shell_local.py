"""End to end on Shell with LocalContext and LazyLocalContext."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher._script import names
from dpdispatcher.errors import JobFailedError, RemoteFileNotFoundError
from dpdispatcher.utils.job_status import JobStatus

CONTEXTS = ["LocalContext", "LazyLocalContext"]


def make_work(tmp_path: Path, n: int = 5) -> Path:
    work = tmp_path / "local" / "work"
    for i in range(n):
        d = work / f"dir{i}"
        d.mkdir(parents=True)
        (d / "example.txt").write_text(f"example {i}\n")
    (work / "graph.pb").write_text("graph\n")
    return work


def machine(tmp_path: Path, context: str = "LocalContext", **extra) -> Machine:
    return Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": context,
            "local_root": str(tmp_path / "local"),
            "remote_root": str(tmp_path / "remote"),
            **extra,
        }
    )


def fast(sub: Submission) -> Submission:
    sub.timing.first_interval = 0.02
    sub.timing.resubmit_delay = 0.01
    return sub


def tasks(n: int = 5, command: str = "cat example.txt ../graph.pb", **kw) -> list[Task]:
    return [
        Task(
            command=command,
            task_work_path=f"dir{i}/",
            forward_files=["example.txt"],
            backward_files=["out.txt"],
            outlog="out.txt",
            **kw,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("context", CONTEXTS)
def test_five_tasks_round_trip(tmp_path, context):
    work = make_work(tmp_path)
    sub = fast(
        Submission(
            "work",
            machine(tmp_path, context),
            Resources(1, 1, 0, "", 2),
            forward_common_files=["graph.pb"],
            task_list=tasks(),
        )
    )
    result = sub.run_submission(check_interval=0.2)
    for i in range(5):
        assert (work / f"dir{i}" / "out.txt").read_text() == f"example {i}\ngraph\n"
    assert all(j.job_state == JobStatus.finished for j in sub.belonging_jobs)
    assert len(result["belonging_jobs"]) == 3
    if context == "LocalContext":
        assert not (tmp_path / "remote" / sub.submission_hash).exists()  # cleaned


def test_para_deg_runs_tasks_concurrently(tmp_path):
    make_work(tmp_path, 4)
    cmd = "date +%s.%N > start; sleep 0.5; cat example.txt"
    sub = fast(
        Submission(
            "work",
            machine(tmp_path),
            Resources(1, 1, 0, "", 4, para_deg=4),
            task_list=[Task(cmd, f"dir{i}", ["example.txt"], ["start"]) for i in range(4)],
        )
    )
    sub.run_submission(check_interval=0.2)
    starts = [float((tmp_path / f"local/work/dir{i}/start").read_text()) for i in range(4)]
    assert max(starts) - min(starts) < 0.4


def test_globs_directories_and_common_backward(tmp_path):
    make_work(tmp_path, 2)
    cmd = "mkdir -p res/sub && echo a > res/sub/a.txt && echo 1 > o1.dat && echo 2 > o2.dat"
    ts = [Task(cmd, f"dir{i}", ["*.txt"], ["*.dat", "res"]) for i in range(2)]
    sub = fast(
        Submission(
            "work",
            machine(tmp_path, remote_profile={"symlink": False}),
            Resources(1, 1, 0, "", 1),
            backward_common_files=["summary"],
            task_list=ts,
        )
    )
    # a job writes the common backward file into the job root
    sub.resources.append_script = ['echo all > "$REMOTE_ROOT"/summary']
    sub.run_submission(check_interval=0.2)
    for i in range(2):
        d = tmp_path / f"local/work/dir{i}"
        assert (d / "o1.dat").read_text() == "1\n" and (d / "o2.dat").exists()
        assert (d / "res/sub/a.txt").read_text() == "a\n"
    assert (tmp_path / "local/work/summary").read_text() == "all\n"


def test_failing_task_is_resubmitted_then_gives_up_with_last_error(tmp_path):
    make_work(tmp_path, 2)
    counter = tmp_path / "runs"
    counter.mkdir()
    ts = [
        Task(f"echo run >> {counter}/d{i}; echo 'boom: bad input' >&2; exit 3", f"dir{i}")
        for i in range(1)
    ]
    ts.append(Task("echo fine > ok", "dir1", backward_files=["ok"]))
    sub = fast(
        Submission(
            "work", machine(tmp_path, retry_count=2), Resources(1, 1, 0, "", 1), task_list=ts
        )
    )
    with pytest.raises(JobFailedError) as err:
        sub.run_submission(check_interval=0.1)
    text = str(err.value)
    assert "boom: bad input" in text and "exit code 3" in text and "retry_count=2" in text
    assert "dir0" in text and str(tmp_path / "remote") in text
    assert (counter / "d0").read_text().count("run") == 3  # 1 run + 2 retries
    assert isinstance(err.value, RuntimeError)


def test_flaky_task_succeeds_on_resubmission_and_finished_tasks_are_skipped(tmp_path):
    make_work(tmp_path, 2)
    marker = tmp_path / "attempts"
    flaky = Task(
        f"echo x >> {marker}; test $(wc -l < {marker}) -ge 2 && echo ok > out",
        "dir0",
        backward_files=["out"],
    )
    steady = Task(f"echo y >> {tmp_path}/steady; echo ok > out", "dir1", backward_files=["out"])
    sub = fast(
        Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 2), task_list=[flaky, steady])
    )
    sub.run_submission(check_interval=0.1)
    assert marker.read_text().count("x") == 2
    assert (tmp_path / "steady").read_text().count("y") == 1  # not rerun: its tag existed
    assert sub.belonging_jobs[0].fail_count == 1


def test_ratio_unfinished_kills_stragglers_and_drops_them(tmp_path):
    make_work(tmp_path, 4)
    ts = [Task("echo done > out", f"dir{i}", backward_files=["out"]) for i in range(3)]
    ts.append(Task(f"sleep 60; echo late > {tmp_path}/late", "dir3", backward_files=["out"]))
    res = Resources(1, 1, 0, "", 1, strategy={"ratio_unfinished": 0.3})
    sub = fast(Submission("work", machine(tmp_path), res, task_list=ts))
    sub.run_submission(check_interval=0.2)
    assert len(sub.belonging_jobs) == 3 and len(sub.dropped_jobs) == 1
    straggler = sub.dropped_jobs[0]
    assert _group_dead(straggler.job_id)  # the whole process group was killed
    for i in range(3):
        assert (tmp_path / f"local/work/dir{i}/out").exists()


def _group_dead(pgid: str, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        out = subprocess.run(["ps", "-o", "stat=", "-g", pgid], capture_output=True, text=True)
        if all(line.strip().startswith("Z") for line in out.stdout.splitlines()):
            return True
        time.sleep(0.05)
    return False


def test_dry_run_uploads_and_submits_nothing(tmp_path):
    make_work(tmp_path, 2)
    sub = fast(Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks(2)))
    sub.run_submission(dry_run=True)
    root = tmp_path / "remote" / sub.submission_hash
    assert (root / "dir0" / "example.txt").is_symlink()
    assert list(root.glob(".*.sub")) and not list(root.glob("*_job_id"))
    assert all(j.job_state == JobStatus.unsubmitted for j in sub.belonging_jobs)


def test_exit_on_submit_then_resume(tmp_path):
    make_work(tmp_path, 3)
    ts = tasks(3, command=f"echo r >> {tmp_path}/count; sleep 0.3; cat example.txt")
    first = fast(Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=ts))
    first.run_submission(exit_on_submit=True)
    ids = {j.job_hash: j.job_id for j in first.belonging_jobs}
    assert all(ids.values())
    again = fast(
        Submission(
            "work",
            machine(tmp_path),
            Resources(1, 1, 0, "", 1),
            task_list=tasks(3, command=f"echo r >> {tmp_path}/count; sleep 0.3; cat example.txt"),
        )
    )
    again.run_submission(check_interval=0.2)
    assert {j.job_hash: j.job_id for j in again.belonging_jobs} == ids  # re-attached
    assert (tmp_path / "count").read_text().count("r") == 3
    assert (tmp_path / "local/work/dir2/out.txt").read_text() == "example 2\n"


def test_missing_backward_file_raises_after_fetching_the_rest(tmp_path):
    make_work(tmp_path, 2)
    ts = [Task("echo ok > out", f"dir{i}", backward_files=["out", "missing.dat"]) for i in range(2)]
    sub = fast(Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 2), task_list=ts))
    with pytest.raises(RemoteFileNotFoundError, match=r"missing\.dat") as err:
        sub.run_submission(check_interval=0.1)
    assert isinstance(err.value, FileNotFoundError)
    assert (tmp_path / "local/work/dir0/out").exists() and (
        tmp_path / "local/work/dir1/out"
    ).exists()


def test_check_exists_marks_missing_downloads(tmp_path):
    make_work(tmp_path, 1)
    sub = fast(
        Submission(
            "work",
            machine(tmp_path),
            Resources(1, 1, 0, "", 1),
            task_list=[Task("true", "dir0", backward_files=["gone/*.x"])],
        )
    )
    sub.download_options = {"check_exists": True, "mark_failure": True, "back_error": True}
    sub.run_submission(check_interval=0.1)
    assert (tmp_path / "local/work/dir0" / names.download_failure_marker("gone/*.x")).exists()


def test_back_error_fetches_error_files(tmp_path):
    make_work(tmp_path, 1)
    sub = fast(
        Submission(
            "work",
            machine(tmp_path),
            Resources(1, 1, 0, "", 1),
            task_list=[Task("echo e > error.log", "dir0")],
        )
    )
    sub.download_options = {"check_exists": False, "mark_failure": True, "back_error": True}
    sub.run_submission(check_interval=0.1)
    assert (tmp_path / "local/work/dir0/error.log").read_text() == "e\n"


def _one_task(tmp_path, command, **kw):
    return fast(
        Submission(
            "work",
            machine(tmp_path),
            Resources(1, 1, 0, "", 1),
            task_list=[Task(command, "dir0", **kw)],
        )
    )


def test_result_replaces_a_local_file_of_the_same_name(tmp_path):
    """B1: the remote wrote "theirs"; a stale local "mine" must not win."""
    work = make_work(tmp_path, 1)
    (work / "dir0" / "out").write_text("mine\n")
    _one_task(tmp_path, "echo theirs > out", backward_files=["out"]).run_submission(
        check_interval=0.1
    )
    assert (work / "dir0" / "out").read_text() == "theirs\n"


def test_present_locally_counts_only_where_the_remote_matched_nothing(tmp_path):
    work = make_work(tmp_path, 1)
    (work / "dir0" / "kept").write_text("earlier result\n")
    _one_task(tmp_path, "true", backward_files=["kept"]).run_submission(check_interval=0.1)
    assert (work / "dir0" / "kept").read_text() == "earlier result\n"


def test_rerun_with_a_changed_command_replaces_the_result(tmp_path):
    work = make_work(tmp_path, 1)
    _one_task(tmp_path, "echo v1 > result.txt", backward_files=["result.txt"]).run_submission(
        check_interval=0.1
    )
    assert (work / "dir0/result.txt").read_text() == "v1\n"
    _one_task(tmp_path, "echo v2 > result.txt", backward_files=["result.txt"]).run_submission(
        check_interval=0.1
    )
    assert (work / "dir0/result.txt").read_text() == "v2\n"


@pytest.mark.parametrize("symlink", [True, False])
def test_forward_file_edited_in_place_comes_back_edited(tmp_path, symlink):
    work = make_work(tmp_path, 1)
    (work / "dir0/conf.txt").write_text("step=0\n")
    sub = fast(
        Submission(
            "work",
            machine(tmp_path, remote_profile={"symlink": symlink}),
            Resources(1, 1, 0, "", 1),
            task_list=[
                Task(
                    "sed -i s/step=0/step=100/ conf.txt",
                    "dir0",
                    forward_files=["conf.txt"],
                    backward_files=["conf.txt"],
                )
            ],
        )
    )
    sub.run_submission(check_interval=0.1)
    conf = work / "dir0/conf.txt"
    assert not conf.is_symlink() and conf.read_text() == "step=100\n"


def test_forward_file_written_through_its_link_is_kept(tmp_path):
    """A linked forward file appended to in place is the local file itself: not a loop."""
    work = make_work(tmp_path, 1)
    (work / "dir0/log.txt").write_text("a\n")
    sub = _one_task(
        tmp_path, "echo b >> log.txt", forward_files=["log.txt"], backward_files=["log.txt"]
    )
    sub.run_submission(check_interval=0.1)
    log = work / "dir0/log.txt"
    assert not log.is_symlink() and log.read_text() == "a\nb\n"


def test_directory_result_replaces_the_local_directory(tmp_path):
    work = make_work(tmp_path, 1)
    (work / "dir0/res").mkdir()
    (work / "dir0/res/stale.txt").write_text("old\n")
    (work / "dir0/res/in.txt").write_text("input\n")
    sub = _one_task(
        tmp_path,
        "cat res/in.txt > res/new.txt",
        forward_files=["res/in.txt"],
        backward_files=["res"],
    )
    sub.run_submission(check_interval=0.1)
    res = work / "dir0/res"
    assert sorted(p.name for p in res.iterdir()) == ["in.txt", "new.txt"]
    assert (res / "new.txt").read_text() == "input\n"
    assert not (res / "in.txt").is_symlink() and (res / "in.txt").read_text() == "input\n"
    assert not [p for p in (work / "dir0").iterdir() if "dpdispatcher" in p.name]


def test_async_run_submission(tmp_path):
    make_work(tmp_path, 2)
    sub = fast(
        Submission(
            "work",
            machine(tmp_path),
            Resources(1, 1, 0, "", 1),
            forward_common_files=["graph.pb"],
            task_list=tasks(2),
        )
    )
    asyncio.run(sub.async_run_submission(check_interval=0.1))
    assert (tmp_path / "local/work/dir1/out.txt").exists()


def test_hostile_names_and_values_run_literally(tmp_path):
    work = tmp_path / "local" / "work"
    weird = "d $(touch PWNED) 'q' \"dq\"; x"
    (work / weird).mkdir(parents=True)
    (work / weird / "in put.txt").write_text("data\n")
    env = {"V1": "a b; touch PWNED2", "V2": "$(touch PWNED3)", "V3": "l1\nl2", "V4": "`id`"}
    res = Resources(1, 1, 0, "", 1, envs=env)
    task = Task(
        'cat "in put.txt" > "out put"; printf "%s|%s|%s|%s" "$V1" "$V2" "$V3" "$V4" > env',
        weird,
        ["in put.txt"],
        ["out put", "env"],
        outlog="o u t",
        errlog="e;rr",
    )
    sub = fast(Submission("work", machine(tmp_path), res, task_list=[task]))
    sub.run_submission(check_interval=0.1)
    assert (work / weird / "out put").read_text() == "data\n"
    assert (work / weird / "env").read_text() == "a b; touch PWNED2|$(touch PWNED3)|l1\nl2|`id`"
    assert not list(tmp_path.rglob("PWNED*"))


def test_unknown_state_file_mismatch_is_a_clear_error(tmp_path):
    make_work(tmp_path, 1)
    sub = fast(Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks(1)))
    sub.run_submission(dry_run=True)
    state = tmp_path / "remote" / sub.submission_hash / names.state_file(sub.submission_hash)
    state.write_text("{not json")
    again = fast(
        Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks(1))
    )
    from dpdispatcher.errors import RecoveryError

    with pytest.raises(RecoveryError, match=r"not valid JSON"):
        again.run_submission()


def test_tampered_job_id_in_state_file_is_refused(tmp_path):
    import json

    from dpdispatcher.errors import RecoveryError

    make_work(tmp_path, 1)
    sub = fast(Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks(1)))
    sub.run_submission(exit_on_submit=True)
    state = tmp_path / "remote" / sub.submission_hash / names.state_file(sub.submission_hash)
    data = json.loads(state.read_text())
    (body,) = data["belonging_jobs"][0].values()
    body["job_id"] = "1; touch PWNED"
    state.write_text(json.dumps(data))
    again = fast(
        Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=tasks(1))
    )
    with pytest.raises(RecoveryError, match="refusing job id"):
        again.run_submission()
    assert not list(tmp_path.rglob("PWNED"))


# -- B9: a failed ps is not "every job is gone" ---------------------------------------------
def test_failed_ps_with_an_error_is_transient_and_silent_exit_1_means_gone():
    from dpdispatcher.base_context import CommandResult
    from dpdispatcher.errors import TransientSchedulerError
    from dpdispatcher.machines.shell import Shell

    job = Submission(".", None, Resources(1, 1, 0, "", 1), task_list=[Task("true", ".")])
    job.generate_jobs()
    the_job = job.belonging_jobs[0]
    the_job.job_id = "4242"
    shell = Shell.__new__(Shell)
    with pytest.raises(TransientSchedulerError, match="command not found"):
        shell.parse_status_output(CommandResult(127, "", "bash: ps: command not found"), [the_job])
    assert shell.parse_status_output(CommandResult(1, "", ""), [the_job]) == {}


def test_failed_ps_does_not_resubmit_a_running_job(tmp_path, monkeypatch):
    from dpdispatcher.machines.shell import Shell

    work = make_work(tmp_path, 1)
    count = tmp_path / "count"
    real = Shell.status_command
    calls = []

    def flaky(self, jobs):
        calls.append(1)
        if len(calls) <= 3:
            return "echo 'ps: permission denied by sandbox' >&2; exit 1"
        return real(self, jobs)

    monkeypatch.setattr(Shell, "status_command", flaky)
    sub = _one_task(
        tmp_path, f"echo run >> {count}; sleep 1; echo done > out", backward_files=["out"]
    )
    sub.run_submission(check_interval=0.1)
    assert count.read_text() == "run\n"
    assert (work / "dir0/out").read_text() == "done\n"
    assert sub.belonging_jobs[0].fail_count == 0
    assert len(calls) > 3


# -- exactly once through clean; local state copies (B11, B13) ------------------------------
def _counted(tmp_path, n=3):
    if not (tmp_path / "local").exists():
        make_work(tmp_path, n)
    (tmp_path / "count").mkdir(exist_ok=True)
    ts = [
        Task(
            f"echo run >> {tmp_path}/count/{i}; echo r{i} > out", f"dir{i}", backward_files=["out"]
        )
        for i in range(n)
    ]
    return fast(Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=ts))


def _local_copy(sub):
    from dpdispatcher.utils.record import record

    return record.get_submission(sub.submission_hash, not_exist_ok=True)


def test_local_state_copy_removed_when_cleaned_kept_otherwise(tmp_path):
    sub = _counted(tmp_path)
    sub.run_submission(check_interval=0.1, clean=False)
    assert _local_copy(sub).is_file()
    again = _counted(tmp_path)
    again.run_submission(check_interval=0.1)
    assert not _local_copy(again).exists()
    assert not (tmp_path / "remote" / sub.submission_hash).exists()
    assert not list((tmp_path / "remote").iterdir())  # nothing left aside either


def test_run_killed_after_the_job_root_went_recovers_from_the_local_copy(tmp_path):
    """The job root renamed away (a clean killed midway) must not rerun finished tasks."""
    sub = _counted(tmp_path)
    sub.run_submission(check_interval=0.1, clean=False)
    root = tmp_path / "remote" / sub.submission_hash
    root.rename(tmp_path / "aside")  # as a clean killed after renaming it aside
    again = _counted(tmp_path)
    again.run_submission(check_interval=0.1)
    for i in range(3):
        assert (tmp_path / f"count/{i}").read_text() == "run\n"
        assert (tmp_path / f"local/work/dir{i}/out").read_text() == f"r{i}\n"
    assert not list((tmp_path / "remote").iterdir())
    assert not _local_copy(again).exists()


def test_ratio_unfinished_rerun_with_clean_false_recovers(tmp_path):
    """B13: the state saved after dropping stragglers still describes the submission."""
    make_work(tmp_path, 4)
    (tmp_path / "count").mkdir()

    def build():
        ts = [
            Task(
                f"echo run >> {tmp_path}/count/{i}; echo done > out",
                f"dir{i}",
                ["example.txt"],
                ["out"],
            )
            for i in range(3)
        ]
        ts.append(Task("sleep 60", "dir3", backward_files=["out"]))
        res = Resources(1, 1, 0, "", 1, strategy={"ratio_unfinished": 0.3})
        return fast(Submission("work", machine(tmp_path), res, task_list=ts))

    first = build()
    first.run_submission(check_interval=0.2, clean=False)
    assert len(first.dropped_jobs) == 1
    second = build()
    second.run_submission(check_interval=0.2, clean=False)  # no RecoveryError
    assert second.submission_hash == first.submission_hash
    for i in range(3):
        assert (tmp_path / f"count/{i}").read_text() == "run\n"
    for job in second.dropped_jobs:
        assert _group_dead(job.job_id)


def test_resumed_run_does_not_resend_inputs_of_tasks_that_already_ran(tmp_path):
    """A forward file a finished task edited in place is its result: a resumed run's upload
    must not replace it with the original input."""
    work = make_work(tmp_path, 2)
    for i in range(2):
        (work / f"dir{i}/conf").write_text("step=0\n")

    def build():
        ts = [
            Task("sed -i s/step=0/step=1/ conf", "dir0", ["conf"], ["conf"]),
            Task("sleep 1.5; sed -i s/step=0/step=2/ conf", "dir1", ["conf"], ["conf"]),
        ]
        return fast(Submission("work", machine(tmp_path), Resources(1, 1, 0, "", 1), task_list=ts))

    first = build()
    first.run_submission(exit_on_submit=True)
    root = tmp_path / "remote" / first.submission_hash
    quick = next(j for j in first.belonging_jobs if j.job_task_list[0].task_work_path == "dir0")
    deadline = time.monotonic() + 20
    while not (root / names.job_tag_file(quick.job_hash)).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    build().run_submission(check_interval=0.1)  # resumes: one job finished, one running
    assert (work / "dir0/conf").read_text() == "step=1\n"
    assert (work / "dir1/conf").read_text() == "step=2\n"


def test_tasks_run_one_after_another_read_no_stdin_and_share_no_shell_state(tmp_path):
    """With para_deg 1 the tasks run in the job's shell, one at a time (no background job
    per task): each still reads /dev/null like a background job, runs in a subshell of its
    own (a variable, ``cd`` or ``exit`` stays there) and is recorded by its exit code."""
    make_work(tmp_path, 3)
    commands = [
        'read -r line; echo "read=$? cwd=${PWD##*/}" > out.txt; rc=7; cd /; exit 0',
        'echo "rc=${rc-unset} dpdispatcher_rc=${dpdispatcher_rc-unset}" > out.txt',
        "echo third > out.txt",
    ]
    sub = fast(
        Submission(
            "work",
            machine(tmp_path),
            Resources(1, 1, 0, "", 3, envs={"rc": "from-envs"}),
            task_list=[
                Task(c, f"dir{i}/", backward_files=["out.txt"]) for i, c in enumerate(commands)
            ],
        )
    )
    sub.generate_jobs()
    assert "fi &" not in sub.machine.gen_run_body(sub.belonging_jobs[0])
    sub.run_submission(check_interval=0.1)
    work = tmp_path / "local/work"
    assert (work / "dir0/out.txt").read_text() == "read=1 cwd=dir0\n"  # EOF: no stdin
    # the environment the job set is what each task sees; the dispatcher's own variable
    # is set in the job's shell (a task may see it), never one of the user's
    assert (work / "dir1/out.txt").read_text().startswith("rc=from-envs ")
    assert (work / "dir2/out.txt").read_text() == "third\n"
