"""SGE offline: header, commands, parsers on every recorded (real SGE 8.1.9) output, states."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.base_context import BaseContext, CommandResult
from dpdispatcher.errors import ConfigurationError, SchedulerError, TransientSchedulerError
from dpdispatcher.machines.sge import (
    SGE,
    SGE_STATES,
    parse_error_reasons,
    parse_qstat_table,
    parse_qstat_xml,
    parse_qsub_output,
    sge_state_by_letters,
)
from dpdispatcher.utils.job_status import JobStatus
from tests.scheduler_doubles import FakeContext
from tests.scheduler_doubles import recorded as shared_recorded

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scheduler_output" / "sge"


def recorded(name: str) -> CommandResult:
    """A recorded SGE command (see the folder's README)."""
    return shared_recorded("sge", name)


def machine(ctx: BaseContext | None = None) -> SGE:
    return SGE(context=ctx or FakeContext())


def job(
    n_tasks: int = 1,
    job_id: str = "",
    task_name: str | None = None,
    queue: str = "",
    cpus: int = 4,
    **kwargs: object,
) -> Job:
    tasks = [Task(f"echo {i}", f"t{i}", task_name=task_name) for i in range(n_tasks)]
    j = Job(tasks, resources=Resources(1, cpus, 0, queue, n_tasks, kwargs=dict(kwargs)))
    j.job_id = job_id
    return j


# ------------------------------------------------------------------ registry / header
def test_registered_and_flat_import_path() -> None:
    import dpdispatcher.sge as flat

    assert flat.SGE is SGE and Machine.get_class("sge") is SGE


def test_header_defaults() -> None:
    assert machine().header_lines(job()) == [
        "#!/bin/bash",
        "#$ -S /bin/bash",
        "#$ -cwd",
        "#$ -N wDPjob",
        "#$ -pe mpi 4",
    ]


def test_header_pe_queue_and_names() -> None:
    lines = machine().header_lines(job(queue="all.q", cpus=8, pe_name="smp", job_name="my_run"))
    assert lines[3:] == ["#$ -N my_run", "#$ -pe smp 8", "#$ -q all.q"]
    assert "#$ -N relax" in machine().header_lines(job(task_name="relax"))
    assert "#$ -N wDPjob" in machine().header_lines(job(2, task_name="relax"))
    assert "#$ -N given" in machine().header_lines(job(2, task_name="relax", job_name="given"))


def test_pe_name_alias_is_accepted() -> None:
    res = Resources.load_from_dict(
        {"batch_type": "SGE", "group_size": 1, "kwargs": {"sge_pe_name": "orte"}}
    )
    j = Job([Task("true", "t")], resources=res)
    assert "#$ -pe orte 1" in machine().header_lines(j)


def test_kwargs_schema_defaults() -> None:
    fields = {arg.name: arg for arg in SGE.kwargs_subfields()}
    assert fields["pe_name"].default == "mpi" and "sge_pe_name" in fields["pe_name"].alias
    # job_name has no default: an omitted one stays out of kwargs, as in 1.1.0
    # (tests/unit/test_job_names.py::test_sge_resources_leave_an_omitted_job_name_out)
    assert fields["job_name"].optional


@pytest.mark.parametrize("bad", [{"queue": "a\n#$ -l evil"}, {"pe_name": "mpi 4\n#$ -x"}])
def test_values_cannot_inject(bad: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        machine().header_lines(job(**bad))  # type: ignore[arg-type]


# ------------------------------------------------------------------ submit
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("qsub_ok", "86"),
        ("qsub_stdin", "97"),
        ("qsub_terse", "94"),
        ("qsub_binary", "96"),
        ("qsub_held", "103"),
        ("qsub_long_name", "98"),
        ("qsub_duplicate_N", "91"),
        ("qsub_eqw", "105"),
        ("qsub_toobig", "104"),
    ],
)
def test_recorded_qsub_outputs(case: str, expected: str) -> None:
    result = recorded(case)
    assert result.ok and parse_qsub_output(result.stdout) == expected


def test_qsub_garbage_refused() -> None:
    for garbage in ("", "Unable to run job: denied\n", "Your job is great\n"):
        with pytest.raises(SchedulerError):
            parse_qsub_output(garbage)


def test_submit_command() -> None:
    j = job(1, "77")  # a resubmission is a plain qsub as well
    assert machine().submit_command(j, ".abc.sub") == "qsub .abc.sub"
    j.submit_tag = "dpd1234abcd5678"  # the submit tag is the scheduler name
    assert machine().submit_command(j, ".abc.sub") == "qsub -N dpd1234abcd5678 .abc.sub"


def test_queue_search_finds_a_job_by_its_tag_in_real_qstat_xml() -> None:
    m = machine()
    assert m.find_command(["dpd1234abcd5678"]) == 'qstat -xml -u "$(id -un)"'
    found = m.parse_find_output(recorded("qstat_xml_mixed"), ["dpd1234abcd5678", "dpdnothere0000"])
    assert found == {"dpd1234abcd5678": "18"}


@pytest.mark.parametrize(
    "case",
    [
        "qsub_bad_option",
        "qsub_bad_pe",
        "qsub_bad_queue",
        "qsub_bad_resource",
        "qsub_cli_N_digit",
        "qsub_cli_N_slash",
        "qsub_cli_bad_option",
        "qsub_cli_h_rt_mm_ss",
        "qsub_cli_j_bad",
        "qsub_late_directive",
        "qsub_missing_script",
        "qsub_pe_no_range",
    ],
)
def test_submit_refusals_are_errors_not_transient(case: str) -> None:
    m = machine()
    outcome = m._submit_outcome(job(), recorded(case))
    assert isinstance(outcome, SchedulerError)
    assert not isinstance(outcome, TransientSchedulerError)


def test_qmaster_down_is_transient_everywhere() -> None:
    m = machine()
    for case in ("qsub_qmaster_down", "qstat_qmaster_down", "qdel_qmaster_down"):
        assert m.is_transient(recorded(case)), case
    assert isinstance(
        m._submit_outcome(job(), recorded("qsub_qmaster_down")), TransientSchedulerError
    )


# ------------------------------------------------------------------ status
def text_machine(ctx: BaseContext | None = None) -> SGE:
    """A machine that already fell back to the plain ``qstat`` table."""
    m = machine(ctx)
    m._format_index = m.status_formats.index("text")
    return m


def test_status_command_is_one_qstat_and_validates_ids() -> None:
    both = [job(1, "1"), job(2, "2")]
    assert machine().status_command(both) == 'qstat -xml -u "$(id -un)"'
    assert text_machine().status_command(both) == 'qstat -u "$(id -un)"'
    with pytest.raises(SchedulerError):
        machine().status_command([job(1, "1; touch PWNED")])


def _raw(case: str, ids: Iterable[str]) -> dict[str, str]:
    jobs = [job(i + 1, jid) for i, jid in enumerate(ids)]
    return text_machine().parse_status_output(recorded(case), jobs)


def test_recorded_xml_with_array_tasks() -> None:
    jobs = [job(i + 1, jid) for i, jid in enumerate(["14", "15", "16", "17", "18", "99"])]
    assert machine().parse_status_output(recorded("qstat_xml_mixed"), jobs) == {
        "14": "r",
        "15": "hqw",
        "16": "Eqw",
        "17": "r",  # three tasks running, three pending: running wins
        "18": "qw",
    }
    assert parse_qstat_xml(recorded("qstat_xml_after_qdel").stdout) == []


def test_recorded_mixed() -> None:
    assert _raw("qstat_mixed", ["102", "103", "104", "105", "86"]) == {
        "102": "r",
        "103": "hqw",
        "104": "qw",
        "105": "Eqw",
    }


def test_recorded_after_qdel_and_transferring() -> None:
    assert _raw("qstat_after_qdel", ["106", "102"]) == {"106": "dr", "102": "r"}
    assert _raw("qstat_transferring", ["99", "101"]) == {"99": "r", "101": "t"}


def test_all_users_and_empty() -> None:
    assert _raw("qstat_all_users", ["102"]) == {"102": "r"}
    assert _raw("qstat_empty", ["102"]) == {}


def test_other_outputs_are_skipped_not_guessed() -> None:
    assert _raw("qstat_j_eqw", ["105"]) == {}


@pytest.mark.parametrize("case", ["qstat_j_unknown", "qstat_j_finished"])
def test_failed_other_command_is_an_error(case: str) -> None:
    with pytest.raises(SchedulerError):
        _raw(case, ["105"])


def test_every_state_of_the_man_page_parses_and_maps() -> None:
    table = parse_qstat_table(recorded("qstat_all_states").stdout)
    codes = [states[0] for states in table.values()]
    assert sorted(codes) == sorted(code for code, _, _ in SGE_STATES)
    assert all(code in SGE.state_map for code in codes)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("qw", JobStatus.waiting),
        ("hqw", JobStatus.waiting),
        ("hRwq", JobStatus.waiting),
        ("Rq", JobStatus.waiting),
        ("t", JobStatus.running),
        ("r", JobStatus.running),
        ("Rr", JobStatus.running),
        ("s", JobStatus.running),
        ("T", JobStatus.running),
        ("hr", JobStatus.running),
        ("Eqw", JobStatus.terminated),
        ("Ehqw", JobStatus.terminated),
        ("dr", JobStatus.terminated),
        ("dt", JobStatus.terminated),
    ],
)
def test_state_decisions(code: str, status: JobStatus) -> None:
    assert SGE.state_map[code] == status


def test_unlisted_combinations_are_classified_by_letters() -> None:
    m = machine()
    assert m.map_state("dRr") == JobStatus.terminated
    assert m.map_state("hRq") == JobStatus.waiting
    assert m.map_state("Rs") == JobStatus.running
    assert m.map_state("zz") == JobStatus.unknown
    assert sge_state_by_letters("") is None


def test_array_rows_are_combined() -> None:
    out = (
        "job-ID  prior   name       user         state submit/start at     queue\n"
        "-----------------------------------------------------------------------\n"
        "     7 0.5 arr        bob          r     11/25/2026 14:54:52 all.q@vm  1 1\n"
        "     7 0.5 arr        bob          qw    11/25/2026 14:54:52           1 2-4:1\n"
    )
    assert text_machine().parse_status_output(CommandResult(0, out, ""), [job(1, "7")]) == {
        "7": "r"
    }


def test_failed_qstat_is_an_error() -> None:
    with pytest.raises(SchedulerError):
        text_machine().parse_status_output(CommandResult(1, "", "qstat: boom"), [job(1, "1")])


def test_error_reason_parsed_from_recorded_qstat_j() -> None:
    reasons = parse_error_reasons(recorded("qstat_j_eqw").stdout)
    assert list(reasons) == ["105"] and "can't open output file" in reasons["105"]


def test_check_status_judges_by_tag_without_side_effects() -> None:
    running, eqw, gone_ok, gone_bad = job(1, "102"), job(2, "105"), job(3, "86"), job(4, "87")
    ctx = FakeContext([recorded("qstat_mixed")], files=[names.job_tag_file(gone_ok.job_hash)])
    states = text_machine(ctx).check_status_many([running, eqw, gone_ok, gone_bad])
    assert {j.job_id: states[j.job_hash] for j in (running, eqw, gone_ok, gone_bad)} == {
        "102": JobStatus.running,
        "105": JobStatus.terminated,
        "86": JobStatus.finished,
        "87": JobStatus.terminated,
    }
    assert ctx.commands == ['qstat -u "$(id -un)"']  # a query, no qdel hidden in it


def test_settle_terminated_deletes_and_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    eqw, gone_bad = job(2, "105"), job(4, "87")
    ctx = FakeContext([recorded("qstat_j_eqw")])
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        machine(ctx).settle_terminated([eqw, gone_bad])
    assert ctx.commands[0].startswith("qstat -j 105,87") and "qdel 105 87" in ctx.commands[0]
    assert "105" in caplog.text and "can't open output file" in caplog.text
    assert "deleted" in caplog.text and "87" in caplog.text


def test_transient_status_failure_raises_transient() -> None:
    with pytest.raises(TransientSchedulerError):
        text_machine(FakeContext([recorded("qstat_qmaster_down")])).check_status_many([job(1, "5")])


# ------------------------------------------------------------------ kill
def test_kill_command_and_quiet_failures() -> None:
    assert machine().kill_command("106") == "qdel 106"
    ctx = FakeContext([recorded("qdel_unknown")])
    machine(ctx).kill(job(1, "999999"))
    assert ctx.commands == ["qdel 999999"]


# ------------------------------------------------------------------ docstring examples
def test_docstring_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest

    import dpdispatcher.machines.sge as module

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
