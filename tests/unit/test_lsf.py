"""LSF offline: header (GPU syntaxes), commands, parsers on every recorded output, states."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.base_context import BaseContext, CommandResult
from dpdispatcher.errors import ConfigurationError, SchedulerError, TransientSchedulerError
from dpdispatcher.machine import NOT_REPORTED
from dpdispatcher.machines.lsf import (
    LSF,
    LSF_STATES,
    gone_job_ids,
    gpu_line,
    parse_bjobs_json,
    parse_bjobs_table,
    parse_bsub_output,
)
from dpdispatcher.utils.job_status import JobStatus
from tests.scheduler_doubles import FakeContext
from tests.scheduler_doubles import recorded as shared_recorded

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scheduler_output" / "lsf" / "from_fake"


def recorded(name: str) -> CommandResult:
    """An LSF output recorded from the project's fake (``from_fake/``: not evidence of the
    real tool, see its README); the real outputs are tested in test_scheduler_real_output."""
    return shared_recorded("lsf/from_fake", name)


def machine(ctx: BaseContext | None = None) -> LSF:
    return LSF(context=ctx or FakeContext())


def text_machine(ctx: BaseContext | None = None) -> LSF:
    """An LSF machine that already fell back to the plain ``bjobs`` table (old LSF)."""
    m = machine(ctx)
    m._format_index = m.status_formats.index("text")
    return m


def res(
    nodes: int = 1, cpus: int = 4, gpus: int = 0, queue: str = "", n: int = 1, **kwargs: Any
) -> Resources:
    return Resources(nodes, cpus, gpus, queue, n, kwargs=kwargs)


def job(
    n_tasks: int = 1,
    job_id: str = "",
    task_name: str | None = None,
    resources: Resources | None = None,
) -> Job:
    tasks = [Task(f"echo {i}", f"t{i}", task_name=task_name) for i in range(n_tasks)]
    j = Job(tasks, resources=resources or res(n=n_tasks))
    j.job_id = job_id
    return j


# ------------------------------------------------------------------ registry / header
def test_registered_and_reference_import_path() -> None:
    import dpdispatcher.lsf as flat

    assert flat.LSF is LSF and Machine.get_class("lsf") is LSF


def test_header_cpu_only() -> None:
    assert machine().header_lines(job(resources=res(nodes=2, cpus=8))) == [
        "#!/bin/bash -l",
        "#BSUB -e %J.err",
        "#BSUB -o %J.out",
        "#BSUB -n 16",
        "#BSUB -R 'span[ptile=8]'",
    ]


def test_header_queue_and_job_name() -> None:
    lines = machine().header_lines(job(task_name="relax Fe", resources=res(queue="short")))
    assert lines[5:] == ["#BSUB -q short", "#BSUB -J relax-Fe"]
    assert not any("-J" in line for line in machine().header_lines(job(2, task_name="x")))


@pytest.mark.parametrize(
    ("kwargs", "gpus", "expected"),
    [
        ({}, 2, None),
        ({"gpu_usage": True}, 0, None),
        ({"gpu_usage": True}, 2, '#BSUB -R "select[ngpus >0] rusage[ngpus_excl_p=2]"'),
        (
            {"gpu_usage": True, "gpu_new_syntax": True},
            1,
            "#BSUB -gpu 'num=1:mode=shared:j_exclusive=yes'",
        ),
        (
            {"gpu_usage": True, "gpu_new_syntax": True, "gpu_exclusive": False},
            4,
            "#BSUB -gpu 'num=4:mode=shared:j_exclusive=no'",
        ),
        (
            {"gpu_usage": True, "custom_gpu_line": "#BSUB -gpu 'num=2:gmodel=A100'"},
            2,
            "#BSUB -gpu 'num=2:gmodel=A100'",
        ),
        ({"custom_gpu_line": "#BSUB -gpu num=1"}, 0, "#BSUB -gpu num=1"),
    ],
)
def test_gpu_line(kwargs: dict[str, Any], gpus: int, expected: str | None) -> None:
    r = res(gpus=gpus, **kwargs)
    assert gpu_line(r) == expected
    lines = machine().header_lines(job(resources=r))
    assert (expected in lines) if expected else not any("gpu" in line for line in lines)


def test_kwargs_schema_defaults() -> None:
    defaults = {arg.name: arg.default for arg in LSF.kwargs_subfields()}
    assert defaults == {
        "gpu_usage": False,
        "gpu_new_syntax": False,
        "gpu_exclusive": True,
        "custom_gpu_line": None,
    }


def test_kwargs_given_flat_or_from_a_dict() -> None:
    r = Resources.load_from_dict(
        {
            "batch_type": "LSF",
            "group_size": 1,
            "gpu_per_node": 1,
            "kwargs": {"gpu_usage": True, "gpu_new_syntax": True},
        }
    )
    assert gpu_line(r) == "#BSUB -gpu 'num=1:mode=shared:j_exclusive=yes'"


def test_queue_cannot_inject() -> None:
    with pytest.raises(ConfigurationError):
        machine().header_lines(job(resources=res(queue="normal\n#BSUB -x")))


# ------------------------------------------------------------------ submit
@pytest.mark.parametrize(
    ("case", "expected"),
    [("bsub_default_queue", "1"), ("bsub_queue", "3"), ("bsub_held", "4"), ("bsub_command", "6")],
)
def test_recorded_bsub_outputs(case: str, expected: str) -> None:
    assert parse_bsub_output(recorded(case).stdout) == expected


def test_bsub_garbage_refused() -> None:
    for garbage in ("", "Job <x> is submitted\n", "Job not submitted.\n"):
        with pytest.raises(SchedulerError):
            parse_bsub_output(garbage)


def test_submit_reads_the_script_from_stdin() -> None:
    assert machine().submit_command(job(), ".abc.sub") == "bsub < .abc.sub"
    assert machine().submit_command(job(), "a b.sub") == "bsub < 'a b.sub'"


@pytest.mark.parametrize(
    "case", ["bsub_bad_n", "bsub_bad_option", "bsub_bad_queue", "bsub_bad_runlimit"]
)
def test_submit_refusals_are_errors_not_transient(case: str) -> None:
    outcome = machine()._submit_outcome(job(), recorded(case))
    assert isinstance(outcome, SchedulerError)
    assert not isinstance(outcome, TransientSchedulerError)


def test_transient_wordings() -> None:
    m = machine()
    for case in ("bsub_transient", "bjobs_transient", "bkill_transient"):
        assert m.is_transient(recorded(case)), case
    for case in ("bjobs_unknown", "bsub_bad_queue", "bkill_unknown"):
        assert not m.is_transient(recorded(case)), case
    assert isinstance(m._submit_outcome(job(), recorded("bsub_transient")), TransientSchedulerError)


# ------------------------------------------------------------------ status
def test_status_command_is_one_bjobs_and_validates_ids() -> None:
    both = [job(1, "1"), job(2, "22")]
    assert machine().status_command(both) == "bjobs -a -o 'jobid stat' -json 1 22"
    assert text_machine().status_command(both) == "bjobs 1 22"
    with pytest.raises(SchedulerError):
        machine().status_command([job(1, "1; touch PWNED")])


def _raw(case: str, ids: Iterable[str]) -> dict[str, str]:
    jobs = [job(i + 1, jid) for i, jid in enumerate(ids)]
    return text_machine().parse_status_output(recorded(case), jobs)


@pytest.mark.parametrize("case", ["bjobs_mixed", "bjobs_mixed_wide", "bjobs_all"])
def test_recorded_mixed(case: str) -> None:
    ids = ["1", "2", "3", "4", "5", "6"] + (["99999"] if case == "bjobs_mixed" else [])
    assert _raw(case, ids) == {
        "1": "DONE",
        "2": "EXIT",
        "3": "RUN",
        "4": "PSUSP",
        "5": "PEND",
        "6": "RUN",
    }


def test_a_job_the_answer_does_not_mention_is_unknown_not_ended() -> None:
    assert _raw("bjobs_unfinished", ["1", "3"]) == {"3": "RUN", "1": NOT_REPORTED}


@pytest.mark.parametrize(("case", "jid"), [("bjobs_unknown", "99999"), ("bjobs_expired", "1")])
def test_jobs_lsf_forgot_are_absent_not_errors(case: str, jid: str) -> None:
    assert _raw(case, [jid]) == {}
    assert _raw("bjobs_no_jobs", ["1", "99999"]) == {}


def test_silent_failure_is_an_error_and_leaves_the_jobs_unknown() -> None:
    with pytest.raises(SchedulerError):
        _raw("bjobs_malformed_id", ["1"])
    with pytest.raises(SchedulerError, match="no message"):
        text_machine().parse_status_output(CommandResult(255, "", ""), [job(1, "1")])
    ctx = FakeContext([CommandResult(255, "", "")])
    assert text_machine(ctx).check_status_many([job(1, "1")]) == {
        job(1, "1").job_hash: JobStatus.unknown
    }


def test_continuation_and_unexpected_lines_are_skipped() -> None:
    stdout = recorded("bjobs_mixed").stdout + "                 4*hostB\nsomething else\n"
    result = CommandResult(0, stdout, "")
    raw = text_machine().parse_status_output(result, [job(1, "1"), job(3, "3")])
    assert raw == {"1": "DONE", "3": "RUN"}


def test_json_records_are_read_and_errors_mean_gone() -> None:
    # the ERROR record shape follows PSI/J's LSF executor (no verbatim public sample)
    stdout = (
        '{"COMMAND":"bjobs","JOBS":4,"RECORDS":['
        '{"JOBID":"7","STAT":"RUN"},{"JOBID":"8","STAT":"EXIT"},'
        '{"JOBID":"8","STAT":"RUN"},{"JOBID":"9","ERROR":"Job <9> is not found"}]}'
    )
    jobs = [job(1, "7"), job(2, "8"), job(3, "9"), job(4, "10")]
    assert machine().parse_status_output(CommandResult(0, stdout, ""), jobs) == {
        "7": "RUN",
        "8": "RUN",  # array elements: an active one wins
        "10": NOT_REPORTED,
    }
    assert parse_bjobs_json(stdout)[1] == {"9"}


def test_old_lsf_without_json_falls_back_to_the_table() -> None:
    refusal = CommandResult(255, "", "-json: Illegal option.\nUsage: bjobs [-h] [-V] ...\n")
    ctx = FakeContext([refusal, recorded("bjobs_mixed")])
    m = machine(ctx)
    states = m.check_status_many([job(3, "3")])
    assert states == {job(3, "3").job_hash: JobStatus.running}
    assert ctx.commands == ["bjobs -a -o 'jobid stat' -json 3", "bjobs 3"]
    assert m.status_format == "text"


def test_every_state_code_parses_and_maps() -> None:
    table = parse_bjobs_table(recorded("bjobs_all_states").stdout)
    assert sorted(set(table.values())) == sorted(code for code, _, _ in LSF_STATES)
    assert all(code in LSF.state_map for code in table.values())
    assert table["5100"] == "RUN"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("PEND", JobStatus.waiting),
        ("PROV", JobStatus.waiting),
        ("PSUSP", JobStatus.waiting),
        ("WAIT", JobStatus.waiting),
        ("RUN", JobStatus.running),
        ("USUSP", JobStatus.running),
        ("SSUSP", JobStatus.running),
        ("DONE", JobStatus.finished),
        ("EXIT", JobStatus.terminated),
        ("ZOMBI", JobStatus.terminated),
        ("UNKWN", JobStatus.running),  # B7: LSF keeps such jobs; they carry on
    ],
)
def test_state_decisions(code: str, status: JobStatus) -> None:
    assert LSF.state_map[code] == status


def test_gone_job_ids_wordings() -> None:
    assert gone_job_ids("Job <5> is not found\nJob <6[2]>: No matching job found\n") == (
        {"5", "6"},
        [],
    )
    assert gone_job_ids("No unfinished job found\n") == ({""}, [])


def test_ended_and_gone_jobs_are_judged_by_their_tag_with_one_command() -> None:
    done, failed, running, gone = job(1, "1"), job(2, "2"), job(3, "3"), job(4, "99999")
    ctx = FakeContext(
        [recorded("bjobs_mixed")],
        files=[names.job_tag_file(done.job_hash), names.job_tag_file(gone.job_hash)],
    )
    states = text_machine(ctx).check_status_many([done, failed, running, gone])
    assert {j.job_id: states[j.job_hash] for j in (done, failed, running, gone)} == {
        "1": JobStatus.finished,
        "2": JobStatus.terminated,
        "3": JobStatus.running,
        "99999": JobStatus.finished,
    }
    assert ctx.commands == ["bjobs 1 2 3 99999"]


def test_transient_status_failure_raises_transient() -> None:
    with pytest.raises(TransientSchedulerError):
        machine(FakeContext([recorded("bjobs_transient")])).check_status_many([job(1, "3")])


# ------------------------------------------------------------------ kill
def test_kill_command_and_quiet_failures() -> None:
    assert machine().kill_command("3") == "bkill 3"
    ctx = FakeContext([recorded("bkill_finished")])
    machine(ctx).kill(job(1, "1"))
    assert ctx.commands == ["bkill 1"]


# ------------------------------------------------------------------ docstring examples
def test_docstring_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest

    import dpdispatcher.machines.lsf as module

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
