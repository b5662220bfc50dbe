"""Slurm and SlurmJobArray offline: headers, commands, parsers on recorded output, states."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.base_context import BaseContext, CommandResult
from dpdispatcher.errors import ConfigurationError, SchedulerError, TransientSchedulerError
from dpdispatcher.machine import SUBMIT_MARK
from dpdispatcher.machines.slurm import (
    SLURM_STATES,
    Slurm,
    SlurmJobArray,
    array_indices,
    base_job_id,
    combine_states,
    element_tasks,
    format_indices,
    parse_sacct_output,
    parse_sbatch_output,
    parse_squeue_output,
    task_tag_path,
)
from dpdispatcher.utils.job_status import JobStatus
from tests.scheduler_doubles import FakeContext as SharedFakeContext
from tests.scheduler_doubles import recorded as shared_recorded

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scheduler_output" / "slurm"


def recorded(name: str) -> CommandResult:
    """A recorded real-Slurm command (see the folder's README)."""
    return shared_recorded("slurm", name)


class FakeContext(SharedFakeContext):
    """The shared scripted context; a submit command (the core's batch of wrapped
    ``sbatch`` calls) really runs in bash, in a scratch directory, with an ``sbatch``
    stub that replays the next answer, so the core's wrapping and splitting are
    exercised as they are on a cluster.
    """

    _abstract = True

    def run(
        self, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        answer = super().run(cmd, timeout)
        if SUBMIT_MARK in cmd:
            return _replay_submit(cmd, answer)
        return answer


def _replay_submit(cmd: str, answer: CommandResult) -> CommandResult:
    with tempfile.TemporaryDirectory() as tmp:
        stub = Path(tmp, "bin")
        stub.mkdir()
        for ext, text in (("out", answer.stdout), ("err", answer.stderr)):
            Path(tmp, ext).write_text(text)
        (stub / "sbatch").write_text(
            f"#!/bin/bash\ncat {tmp}/out; cat {tmp}/err >&2; exit {answer.exit_code}\n"
        )
        (stub / "sbatch").chmod(0o755)
        env = dict(os.environ, PATH=f"{stub}:{os.environ['PATH']}")
        done = subprocess.run(
            ["bash", "-c", cmd], cwd=tmp, env=env, capture_output=True, text=True, check=False
        )
    return CommandResult(done.returncode, done.stdout, done.stderr, cmd)


def machine(cls: type[Slurm] = Slurm, ctx: BaseContext | None = None) -> Slurm:
    m = cls(context=ctx or FakeContext())
    assert isinstance(m, Slurm)
    return m


def job(n_tasks: int = 1, job_id: str = "", **res: object) -> Job:
    tasks = [
        Task(f"echo {i}", f"t{i}", task_name=str(res.pop("task_name", "")) or None)
        for i in range(n_tasks)
    ]
    gpus = int(res.pop("gpu_per_node", 0))  # type: ignore[call-overload]
    queue = str(res.pop("queue_name", ""))
    j = Job(tasks, resources=Resources(1, 4, gpus, queue, n_tasks, **res))  # type: ignore[arg-type]
    j.job_id = job_id
    return j


def ok(stdout: str = "") -> CommandResult:
    return CommandResult(0, stdout, "")


# ------------------------------------------------------------------ registry / import paths
def test_registered_names_and_reference_import_path() -> None:
    import dpdispatcher.slurm as flat

    assert flat.Slurm is Slurm and flat.SlurmJobArray is SlurmJobArray
    for name in ("Slurm", "slurm", "SLURM"):
        assert Machine.get_class(name) is Slurm
    assert Machine.get_class("slurmjobarray") is SlurmJobArray


# ------------------------------------------------------------------ header
def test_header_cpu_only() -> None:
    assert machine().header_lines(job()) == [
        "#!/bin/bash -l",
        "#SBATCH --nodes 1",
        "#SBATCH --ntasks-per-node 4",
    ]


def test_gen_script_header_as_in_1_1_0() -> None:
    """1.1.0 returns the directives without a final newline and renders them from any
    object holding only ``resources`` (its own tests pass ``SimpleNamespace``)."""
    from types import SimpleNamespace

    res = job(gpu_per_node=1, queue_name="gpu", task_name="relax").resources
    header = machine().gen_script_header(SimpleNamespace(resources=res))  # type: ignore[arg-type]
    assert header == (
        "#!/bin/bash -l\n#SBATCH --nodes 1\n#SBATCH --ntasks-per-node 4\n"
        "#SBATCH --gres=gpu:1\n#SBATCH --partition gpu"
    )
    named = job(task_name="relax")
    assert machine().gen_script(named).startswith(machine().gen_script_header(named) + "\n")


def test_header_gpu_partition_and_name() -> None:
    lines = machine().header_lines(job(gpu_per_node=2, queue_name="gpu", task_name="relax"))
    assert lines[3:] == [
        "#SBATCH --gres=gpu:2",
        "#SBATCH --partition gpu",
        "#SBATCH --job-name relax",
    ]


def test_custom_gpu_line_replaces_gres() -> None:
    line = "#SBATCH --gpus-per-node=a100:2"
    lines = machine().header_lines(job(gpu_per_node=2, kwargs={"custom_gpu_line": line}))
    assert line in lines and not any("--gres" in x for x in lines)


def test_job_name_only_for_a_single_named_task() -> None:
    two = job(2, task_name="relax")
    assert not any("--job-name" in x for x in machine().header_lines(two))


@pytest.mark.parametrize("queue", ["a\nb", "a b", "normal\n#SBATCH --uid=0", " x"])
def test_partition_cannot_inject(queue: str) -> None:
    with pytest.raises(ConfigurationError, match="queue_name"):
        machine().header_lines(job(queue_name=queue))


def test_header_through_gen_script_starts_with_shebang() -> None:
    script = machine().gen_script(job(queue_name="normal"))
    assert script.splitlines()[0] == "#!/bin/bash -l"
    assert "#SBATCH --partition normal\n" in script


def test_kwargs_schema() -> None:
    assert [a.name for a in Slurm.kwargs_subfields()] == ["custom_gpu_line"]
    assert [a.name for a in SlurmJobArray.kwargs_subfields()] == [
        "custom_gpu_line",
        "slurm_job_size",
    ]
    res = Resources.load_from_dict(
        {"batch_type": "SlurmJobArray", "group_size": 4, "kwargs": {"slurm_job_size": 2}}
    )
    assert res.kwargs["slurm_job_size"] == 2
    other = {"batch_type": "Slurm", "group_size": 1, "kwargs": {"slurm_job_size": 2}}
    with pytest.raises(ConfigurationError, match="slurm_job_size"):
        Resources.load_from_dict(other, strict=True)
    with pytest.raises(ConfigurationError, match="slurm_job_size"):
        machine().check_resources(Resources.load_from_dict(other), strict=True)


def test_kwargs_of_another_batch_type_warn_when_submitting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = Resources.load_from_dict(
        {"batch_type": "Slurm", "group_size": 1, "kwargs": {"slurm_job_siz": 2}}
    )
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        machine().check_resources(res)
    assert [r.getMessage() for r in caplog.records] == [
        "resources/kwargs of batch type Slurm: unknown key 'slurm_job_siz' ignored "
        "(valid keys: custom_gpu_line)"
    ]


# ------------------------------------------------------------------ submit
def test_submit_command_and_parse() -> None:
    m = machine()
    assert m.submit_command(job(), ".abc.sub") == "sbatch --parsable .abc.sub"
    assert m.submit_command(job(), "a b.sub") == "sbatch --parsable 'a b.sub'"
    for name in ("sbatch_plain", "sbatch_array", "sbatch_held", "sbatch_partition_gpu"):
        out = recorded(name).stdout
        assert m.parse_submit_output(out) == out.strip() and out.strip().isdigit()
    assert parse_sbatch_output("123;cluster\n") == "123"
    assert parse_sbatch_output("warning text\n124\n") == "124"


@pytest.mark.parametrize("out", ["", "\n", "Submitted batch job 5", "12;x; rm -rf /"])
def test_parse_submit_refuses_garbage(out: str) -> None:
    if out == "12;x; rm -rf /":  # text before ';' is the id
        assert parse_sbatch_output(out) == "12"
        return
    with pytest.raises(SchedulerError):
        parse_sbatch_output(out)


def _submit(answer: CommandResult) -> str:
    ctx = FakeContext([answer])
    m = machine(ctx=ctx)
    return m.submit_prepared(job())


def test_submit_prepared_records_the_id() -> None:
    ctx = FakeContext([recorded("sbatch_partition_gpu")])
    j = job()
    assert machine(ctx=ctx).submit_prepared(j) == recorded("sbatch_partition_gpu").stdout.strip()
    assert names.job_id_file(j.job_hash) in ctx.commands[0]
    assert "sbatch --parsable" in ctx.commands[0]


@pytest.mark.parametrize(
    "stderr",
    [
        recorded("sbatch_ctld_down").stderr,
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission "
        "failed: Job violates accounting/QOS policy (job submit limit, user's size and/or "
        "time limits)",
        "sbatch: error: Batch job submission failed: Resource temporarily unavailable",
        "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying",
    ],
)
def test_submit_transient_errors_are_deferred(stderr: str) -> None:
    with pytest.raises(TransientSchedulerError):
        _submit(CommandResult(1, "", stderr))


def test_submit_refusal_is_an_error() -> None:
    with pytest.raises(SchedulerError, match="Invalid partition") as info:
        _submit(recorded("sbatch_bad_partition"))
    assert not isinstance(info.value, TransientSchedulerError)


# ------------------------------------------------------------------ status
def test_status_command_is_one_squeue_for_all() -> None:
    jobs = [job(job_id=str(i)) for i in (6, 7, 8)]
    assert machine().status_command(jobs) == (
        "squeue --noheader --states=all --format='%i %t' --jobs=6,7,8"
    )


def test_status_command_validates_ids() -> None:
    with pytest.raises(SchedulerError):
        machine().status_command([job(job_id="6;rm -rf /")])


def test_parse_squeue_gathers_array_lines() -> None:
    table = parse_squeue_output(recorded("squeue_array").stdout)
    assert {k: sorted(v) for k, v in table.items()} == {ids_of("squeue_array")[0]: ["PD", "R", "R"]}
    assert base_job_id("7_[2-3%2]") == "7" and base_job_id("9+1") == "9"


def ids_of(fixture: str) -> list[str]:
    """The job ids a recorded squeue was asked about, in the order given."""
    cmd = recorded(fixture).cmd
    match = re.search(r"--jobs=(\S+)", cmd)
    assert match, cmd
    return match.group(1).split(",")


def _raw(fixture: str, ids: Iterable[str] | None = None) -> dict[str, str]:
    jobs = [job(job_id=i) for i in (ids if ids is not None else ids_of(fixture))]
    return machine().parse_status_output(recorded(fixture), jobs)


# roles of the ids in squeue_many* (see recording.txt): order of the --jobs list
MANY_ROLES = ("run", "array", "gpu", "held", "begin", "quick", "fail", "cancelled", "stubborn")


def _by_role(fixture: str) -> dict[str, str]:
    ids = ids_of(fixture)
    assert len(ids) == len(MANY_ROLES)
    raw = _raw(fixture)
    return {role: raw[i] for role, i in zip(MANY_ROLES, ids) if i in raw}


def test_parse_many_default_states() -> None:
    assert _by_role("squeue_many") == {
        "run": "R",
        "array": "R",
        "gpu": "R",
        "held": "PD",
        "begin": "PD",
        "stubborn": "CG",
    }


def test_parse_many_states_all() -> None:
    assert _by_role("squeue_many_states_all") == {
        "run": "R",
        "array": "R",
        "gpu": "R",
        "held": "PD",
        "begin": "PD",
        "quick": "CD",
        "fail": "F",
        "cancelled": "CA",
        "stubborn": "CG",
    }


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("squeue_running", ["R"]),
        ("squeue_pending_held", ["PD"]),
        ("squeue_pending_begin", ["PD"]),
        ("squeue_completing", ["CG"]),
        ("squeue_array", ["R"]),
        ("squeue_completed", [None]),
        ("squeue_completed_states_all", ["CD"]),
        ("squeue_failed_states_all", ["F"]),
        ("squeue_cancelled_states_all", ["CA"]),
        ("squeue_unknown_among_known", ["R", None]),
        ("squeue_unknown_among_known_states_all", ["R", None]),
        ("squeue_unknown_single", [None]),
        ("squeue_unknown_single_states_all", [None]),
        ("squeue_gone_single", [None]),
        ("squeue_gone_single_states_all", [None]),
        ("squeue_gone_among_known", ["R", None]),
        ("squeue_gone_among_known_states_all", ["R", None]),
        ("squeue_after_ctld_restart", ["R", "R"]),
    ],
)
def test_parse_recorded_squeue(fixture: str, expected: list[str | None]) -> None:
    raw = _raw(fixture)
    assert [raw.get(i) for i in ids_of(fixture)] == expected


def test_squeue_controller_down_is_transient() -> None:
    ctx = FakeContext([recorded("squeue_ctld_down")])
    with pytest.raises(TransientSchedulerError):
        machine(ctx=ctx).check_status_many([job(job_id="6")])


def test_squeue_unexpected_failure_leaves_the_jobs_unknown_not_aborted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = FakeContext([CommandResult(127, "", "bash: squeue: command not found")])
    j = job(job_id="6")
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        assert machine(ctx=ctx).check_status_many([j]) == {j.job_hash: JobStatus.unknown}
    assert "command not found" in caplog.text


def test_every_slurm_state_is_mapped() -> None:
    codes = {code for code, _, _ in SLURM_STATES}
    assert codes == {
        "PD",
        "CF",
        "S",
        "R",
        "CG",
        "CD",
        "F",
        "CA",
        "TO",
        "NF",
        "PR",
        "BF",
        "OOM",
        "DL",
        "RQ",
        "RS",
        "RH",
        "RD",
        "RF",
        "RV",
        "SE",
        "SI",
        "SO",
        "ST",
    }
    m = machine()
    for code, long, status in SLURM_STATES:
        assert m.map_state(code) == status == m.map_state(long)


@pytest.mark.parametrize("code", ["PD", "CF", "S"])
def test_waiting_states(code: str) -> None:
    assert machine().map_state(code) == JobStatus.waiting


@pytest.mark.parametrize("code", ["CD", "F", "CA", "TO", "NF", "PR", "BF", "OOM", "DL"])
def test_ended_states_mean_check_the_tag(code: str) -> None:
    assert machine().map_state(code) in (JobStatus.finished, JobStatus.terminated)


def test_combine_states_priority() -> None:
    sm = Slurm.state_map
    assert combine_states(["CD", "PD", "R"], sm) == "R"
    assert combine_states(["CD", "CG", "PD"], sm) == "CG"
    assert combine_states(["CD", "PD"], sm) == "PD"
    assert combine_states(["CD", "??"], sm) == "??"
    assert combine_states(["CD", "F"], sm) in ("CD", "F")


def _check(
    squeue: CommandResult,
    jobs: list[Job],
    files: Iterable[str] = (),
    extra: Iterable[CommandResult] = (),
) -> tuple[dict[str, JobStatus], FakeContext]:
    ctx = FakeContext([squeue, *extra], files)
    states = machine(ctx=ctx).check_status_many(jobs)
    return {j.job_id: states[j.job_hash] for j in jobs}, ctx


def test_gone_jobs_are_judged_by_their_tag_with_one_command() -> None:
    run_id = ids_of("squeue_running")[0]
    done, lost, running = job(1, "9911"), job(2, "9912"), job(3, run_id)
    sacct_off = recorded("sacct_disabled")
    states, ctx = _check(
        recorded("squeue_running"),
        [done, lost, running],
        files=[names.job_tag_file(done.job_hash)],
        extra=[sacct_off],
    )
    assert states == {
        "9911": JobStatus.finished,
        "9912": JobStatus.terminated,
        run_id: JobStatus.running,
    }
    assert len(ctx.commands) == 1 and ctx.commands[0].startswith("squeue")


def test_all_ids_unknown_means_gone_not_error() -> None:
    j = job(1, "999999")
    states, _ = _check(
        recorded("squeue_unknown_single"), [j], files=[names.job_tag_file(j.job_hash)]
    )
    assert states == {"999999": JobStatus.finished}


def test_sacct_is_asked_once_and_never_again_when_disabled() -> None:
    m = machine(ctx=FakeContext())
    ctx = m.context
    assert isinstance(ctx, FakeContext)
    ctx.answers = [recorded("sacct_disabled")]
    m.settle_terminated([job(1, "11")])
    # once more for the same job, and a new one terminates too: no sacct
    m.settle_terminated([job(1, "11"), job(2, "13")])
    assert [c.split()[0] for c in ctx.commands] == ["sacct"]


def test_sacct_explains_when_accounting_is_enabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dpdispatcher")
    sacct = ok("21|OUT_OF_MEMORY|0:125\n21.batch|OUT_OF_MEMORY|0:125\n")
    states, ctx = _check(ok(""), [job(1, "21")], extra=[sacct])
    assert states == {"21": JobStatus.terminated}
    Slurm(context=ctx).settle_terminated([job(1, "21")])
    assert "OUT_OF_MEMORY (exit code 0:125)" in caplog.text
    assert parse_sacct_output("5|CANCELLED by 0|0:15\n") == {"5": "CANCELLED by 0 (exit code 0:15)"}


def test_unmapped_state_is_unknown_not_failure() -> None:
    states, _ = _check(ok("6 XX\n"), [job(1, "6")])
    assert states == {"6": JobStatus.unknown}


def test_kill_command() -> None:
    assert machine().kill_command("8") == "scancel 8"
    ctx = FakeContext([recorded("scancel_unknown")])
    machine(ctx=ctx).kill(job(1, "999999"))
    assert ctx.commands == ["scancel 999999"]


# ------------------------------------------------------------------ arrays
def test_indices_round_trip() -> None:
    assert format_indices([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert format_indices([3]) == "3" and format_indices([]) == ""
    assert array_indices("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]
    assert array_indices("2-3%2") == [2, 3]


def test_element_tasks_chunks() -> None:
    tasks = [Task("true", f"t{i}") for i in range(5)]
    assert [len(e) for e in element_tasks(tasks, 2)] == [2, 2, 1]


def array_job(n: int = 5, size: int = 2, job_id: str = "") -> Job:
    return job(n, job_id, kwargs={"slurm_job_size": size})


def test_array_header_and_body() -> None:
    m = machine(SlurmJobArray)
    j = array_job()
    assert m.header_lines(j)[-1] == "#SBATCH --array=0-2"
    body = m.gen_run_body(j)
    assert body.startswith('case "$SLURM_ARRAY_TASK_ID" in\n0)\n')
    assert body.count(";;") == 4 and body.rstrip().endswith("esac")
    assert body.count("dpdispatcher_rc=$?") == 5 and "fi &" not in body  # one at a time


def test_array_element_with_cuda_devices() -> None:
    m = machine(SlurmJobArray)
    j = job(
        4, kwargs={"slurm_job_size": 2}, gpu_per_node=2, strategy={"if_cuda_multi_devices": True}
    )
    body = m.gen_run_body(j)
    branches = body.split(";;")
    for branch in branches[:2]:  # each element numbers its devices from 0
        assert "CUDA_VISIBLE_DEVICES=0" in branch and "CUDA_VISIBLE_DEVICES=1" in branch


def test_array_finished_means_every_task_tag() -> None:
    j = array_job(3, 1, "30")
    tags = [task_tag_path(t) for t in j.job_task_list]
    m = machine(SlurmJobArray, FakeContext([ok("")], files=tags))
    assert m.check_status_many([j]) == {j.job_hash: JobStatus.finished}
    m = machine(
        SlurmJobArray,
        FakeContext(
            [ok(""), recorded("sacct_disabled")], files=[*tags[:2], names.job_tag_file(j.job_hash)]
        ),
    )
    assert m.check_status_many([j]) == {j.job_hash: JobStatus.terminated}


def test_array_running_while_any_element_runs() -> None:
    j = array_job(4, 1, ids_of("squeue_array")[0])
    m = machine(SlurmJobArray, FakeContext([recorded("squeue_array")]))
    assert m.check_status_many([j]) == {j.job_hash: JobStatus.running}


def test_array_first_submission_uses_header_range_without_file_checks() -> None:
    ctx = FakeContext()
    m = machine(SlurmJobArray, ctx)
    fresh = array_job()
    m.prepare_submit([fresh])
    assert m.submit_command(fresh, "s.sub") == "sbatch --parsable s.sub"
    assert ctx.exist_queries == []
    fresh.submit_tag = "dpdabcdef120000"
    assert m.submit_command(fresh, "s.sub") == "sbatch --parsable --comment=dpdabcdef120000 s.sub"


def test_array_resubmission_lists_only_unfinished_elements() -> None:
    j = array_job(5, 2, "40")
    j.fail_count = 1
    t = j.job_task_list
    done = [task_tag_path(x) for x in (t[0], t[1], t[2], t[4])]  # element 1 misses t[3]
    ctx = FakeContext(files=done)
    m = machine(SlurmJobArray, ctx)
    m.prepare_submit([j])  # the one file check, before the pure submit command
    assert len(ctx.exist_queries) == 1
    assert m.submit_command(j, "s.sub") == "sbatch --parsable --array=1 s.sub"
    assert len(ctx.exist_queries) == 1


def test_array_header_range_is_written_as_the_original_writes_it() -> None:
    # observed with dpdispatcher==1.1.0 in a throwaway venv: 1 element -> "0-0", 3 -> "0-2"
    assert machine(SlurmJobArray).header_lines(array_job(1, 1))[-1] == "#SBATCH --array=0-0"
    assert machine(SlurmJobArray).header_lines(array_job(5, 2))[-1] == "#SBATCH --array=0-2"


def test_array_slurm_job_size_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="slurm_job_size"):
        machine(SlurmJobArray).header_lines(array_job(2, 0))


@pytest.mark.parametrize(
    "fixture", ["squeue_default_format", "squeue_too_many_cpus_default_format"]
)
def test_other_squeue_formats_are_skipped_not_guessed(
    fixture: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        assert _raw(fixture) == {}
    assert "unexpected squeue output" in caplog.text


# ------------------------------------------------------------------ hand-written fixtures
# (``*_man_*``: outputs the test cluster cannot produce on demand; see MANPAGE-FIXTURES.md)
def test_every_state_code_of_the_man_page_parses_and_maps() -> None:
    result = recorded("squeue_man_every_state")
    raw = _raw("squeue_man_every_state")
    codes = [line.split()[1] for line in result.stdout.splitlines()]
    assert sorted(raw.values()) == sorted(codes)
    assert set(codes) == {code for code, _, _ in SLURM_STATES}
    m = machine()
    assert all(m.map_state(code) != JobStatus.unknown for code in raw.values())


def test_array_ranges_map_back_to_their_job() -> None:
    assert _raw("squeue_man_array_ranges") == {"130": "R", "131": "PD"}


@pytest.mark.parametrize(
    "fixture", ["sbatch_man_socket_timeout", "sbatch_man_qos_submit_limit", "sbatch_man_busy"]
)
def test_hand_written_submit_errors_are_transient(fixture: str) -> None:
    with pytest.raises(TransientSchedulerError):
        _submit(recorded(fixture))


def test_squeue_socket_timeout_is_transient() -> None:
    ctx = FakeContext([recorded("squeue_man_socket_timeout")])
    with pytest.raises(TransientSchedulerError):
        machine(ctx=ctx).check_status_many([job(job_id="101")])


def test_sbatch_multi_cluster_answer() -> None:
    assert _submit(recorded("sbatch_man_cluster")) == "140"


def test_sacct_enabled_output() -> None:
    assert parse_sacct_output(recorded("sacct_man_enabled").stdout) == {
        "21": "OUT_OF_MEMORY (exit code 0:125)",
        "22": "CANCELLED by 0 (exit code 0:15)",
    }


def test_resources_subfields_has_the_1_1_0_shape() -> None:
    """1.1.0: one ``kwargs`` dict argument; its check refuses slurm_job_size < 1 with
    the message 1.1.0 gives (observed in a throwaway venv)."""
    from dargs.dargs import ArgumentValueError

    (kwargs_arg,) = SlurmJobArray.resources_subfields()
    assert kwargs_arg.name == "kwargs"
    assert list(kwargs_arg.sub_fields) == ["custom_gpu_line", "slurm_job_size"]
    with pytest.raises(ArgumentValueError, match="greater than or equal to 1"):
        kwargs_arg.check_value(kwargs_arg.normalize_value({"slurm_job_size": 0}))


def test_a_1_1_0_style_resources_subfields_override_is_honoured() -> None:
    from dargs import Argument

    class MySlurm(Slurm):
        _abstract = True  # not registered as a batch type

        @classmethod
        def resources_subfields(cls) -> list[Argument]:
            return [Argument("kwargs", dict, [Argument("extra_opt", str, optional=True)])]

    assert [a.name for a in MySlurm.kwargs_fields()] == ["extra_opt"]
