"""PBS and Torque offline: headers, commands, parsers on every recorded output, states."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.base_context import BaseContext, CommandResult
from dpdispatcher.errors import (
    AmbiguousSubmitError,
    ConfigurationError,
    SchedulerError,
    StatusFormatError,
    TransientSchedulerError,
)
from dpdispatcher.machine import NOT_REPORTED
from dpdispatcher.machines._pbs_parse import (
    PBS_STATES,
    TORQUE_STATES,
    gone_job_ids,
    parse_qstat_json,
    parse_qstat_table,
    parse_qstat_xml,
    parse_qsub_output,
    sequence_number,
)
from dpdispatcher.machines.pbs import PBS, Torque
from dpdispatcher.utils.job_status import JobStatus
from tests.scheduler_doubles import FakeContext
from tests.scheduler_doubles import recorded as shared_recorded

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scheduler_output"


def recorded(flavour: str, name: str) -> CommandResult:
    """An output recorded from the project's fake (``from_fake/``: not evidence of the
    real tool, see its README); the real outputs are tested in test_scheduler_real_output."""
    return shared_recorded(f"{flavour}/from_fake", name)


def text_machine(cls: type[PBS] = PBS, ctx: BaseContext | None = None) -> PBS:
    """A machine that already fell back to the plain ``qstat`` table."""
    m = machine(cls, ctx)
    m._format_index = m.status_formats.index("text")
    return m


def machine(cls: type[PBS] = PBS, ctx: BaseContext | None = None) -> PBS:
    m = cls(context=ctx or FakeContext())
    assert isinstance(m, cls)
    return m


def job(
    n_tasks: int = 1,
    job_id: str = "",
    task_name: str | None = None,
    gpus: int = 0,
    queue: str = "",
    nodes: int = 1,
    cpus: int = 4,
) -> Job:
    tasks = [Task(f"echo {i}", f"t{i}", task_name=task_name) for i in range(n_tasks)]
    j = Job(tasks, resources=Resources(nodes, cpus, gpus, queue, n_tasks))
    j.job_id = job_id
    return j


# ------------------------------------------------------------------ registry / import paths
def test_registered_names_and_reference_import_paths() -> None:
    import dpdispatcher.pbs as flat

    assert flat.PBS is PBS and flat.Torque is Torque
    assert Machine.get_class("pbs") is PBS and Machine.get_class("TORQUE") is Torque
    assert issubclass(Torque, PBS)


# ------------------------------------------------------------------ headers
def test_pbs_header_cpu_only() -> None:
    assert machine().header_lines(job()) == [
        "#!/bin/bash -l",
        "#PBS -l select=1:ncpus=4",
        "#PBS -j oe",
    ]


def test_pbs_header_gpus_queue_nodes() -> None:
    lines = machine().header_lines(job(gpus=2, queue="gpuq", nodes=3, cpus=8))
    assert lines[1:] == ["#PBS -l select=3:ncpus=8:ngpus=2", "#PBS -j oe", "#PBS -q gpuq"]


def test_torque_header() -> None:
    lines = machine(Torque).header_lines(job(gpus=1, queue="batch", nodes=2))
    assert lines[1:] == ["#PBS -l nodes=2:ppn=4:gpus=1", "#PBS -j oe", "#PBS -q batch"]
    assert machine(Torque).header_lines(job())[1] == "#PBS -l nodes=1:ppn=4"


def test_job_name_only_for_a_single_named_task() -> None:
    assert "#PBS -N relax" in machine().header_lines(job(task_name="relax"))
    assert not any("-N" in line for line in machine().header_lines(job(2, task_name="relax")))
    assert not any("-N" in line for line in machine().header_lines(job()))


def test_pbs_and_torque_job_names_are_cut_to_15_with_a_digest() -> None:
    # as the original 1.1.0 writes them: 6 characters, "-", 8 hex digits of SHA-1
    for cls in (PBS, Torque):
        lines = machine(cls).header_lines(job(task_name="a_rather_long_job_name_for_pbs"))
        assert "#PBS -N a_rath-789ceaa9" in lines


@pytest.mark.parametrize("queue", ["a b", "q\n#PBS -l evil", " q"])
def test_queue_cannot_inject(queue: str) -> None:
    with pytest.raises(ConfigurationError):
        machine().header_lines(job(queue=queue))


def test_script_starts_with_shebang() -> None:
    assert machine().gen_script(job()).startswith("#!/bin/bash -l\n#PBS -l select=")


def test_no_kwargs() -> None:
    assert PBS.kwargs_subfields() == [] and Torque.kwargs_subfields() == []


# ------------------------------------------------------------------ submit
@pytest.mark.parametrize("flavour", ["pbs", "torque"])
def test_recorded_qsub_outputs(flavour: str) -> None:
    server = "pbsserver" if flavour == "pbs" else "torqueserver"
    assert parse_qsub_output(recorded(flavour, "qsub").stdout) == f"1.{server}"
    assert parse_qsub_output(recorded(flavour, "qsub_held").stdout) == f"4.{server}"


def test_qsub_parse_variants() -> None:
    assert parse_qsub_output("12[].server.example.org\n") == "12[].server.example.org"
    assert parse_qsub_output("note: something\n77.srv\n") == "77.srv"
    for garbage in ("", "qsub: Unknown queue\n", "; rm -rf /\n"):
        with pytest.raises(SchedulerError):
            parse_qsub_output(garbage)


def test_submit_command_names_the_job_on_the_command_line() -> None:
    j = job()
    # PBS Pro 11-13 derive a name from the script file (a dot first) and refuse it
    assert machine().submit_command(j, ".abc.sub") == f"qsub -N dp-{j.job_hash[:8]} .abc.sub"
    assert machine(Torque).submit_command(j, "s") == f"qsub -N dp-{j.job_hash[:8]} s"
    j.submit_tag = "dpd0123456704e4"
    assert machine().submit_command(j, "my script") == "qsub -N dpd0123456704e4 'my script'"
    named = job(task_name="relax Fe")
    assert machine().submit_command(named, "s") == "qsub -N relax-Fe s"


@pytest.mark.parametrize("flavour", ["pbs", "torque"])
def test_submit_failures(flavour: str) -> None:
    m = machine(PBS if flavour == "pbs" else Torque)
    assert m.is_transient(recorded(flavour, "qsub_transient"))
    for case in (
        "qsub_bad_queue",
        "qsub_bad_option",
        "qsub_bad_j",
        "qsub_bad_l",
        "qsub_missing_script",
    ):
        result = recorded(flavour, case)
        assert not result.ok and not m.is_transient(result), case


def test_submit_outcomes_through_the_core() -> None:
    m = machine()
    j = job()
    assert m._submit_outcome(j, recorded("pbs", "qsub")) == "1.pbsserver"
    # the server was unreachable: maybe queued, so the queue is searched before a retry
    assert isinstance(m._submit_outcome(j, recorded("pbs", "qsub_transient")), AmbiguousSubmitError)
    refused = m._submit_outcome(j, recorded("pbs", "qsub_bad_queue"))
    assert isinstance(refused, SchedulerError) and "Unknown queue" in str(refused)
    assert not isinstance(refused, TransientSchedulerError)


# ------------------------------------------------------------------ status
def test_status_command_is_one_qstat_for_all() -> None:
    jobs = [job(1, "1.pbsserver"), job(2, "2.pbsserver")]
    assert machine().status_command(jobs) == "qstat -f -F json -x 1.pbsserver 2.pbsserver"
    assert machine(Torque).status_command(jobs) == "qstat -x 1.pbsserver 2.pbsserver"
    assert text_machine().status_command(jobs) == "qstat -x 1.pbsserver 2.pbsserver"
    assert text_machine(Torque).status_command(jobs) == "qstat 1.pbsserver 2.pbsserver"


def test_status_command_validates_ids() -> None:
    with pytest.raises(SchedulerError):
        machine().status_command([job(1, "1; touch PWNED")])


def _raw(cls: type[PBS], flavour: str, case: str, ids: Iterable[str]) -> dict[str, str]:
    jobs = [job(i + 1, jid) for i, jid in enumerate(ids)]
    return text_machine(cls).parse_status_output(recorded(flavour, case), jobs)


def test_pbs_mixed_with_an_unknown_id() -> None:
    ids = [f"{n}.pbsserver" for n in range(1, 7)] + ["99999.pbsserver"]
    assert _raw(PBS, "pbs", "qstat_mixed", ids) == {
        "1.pbsserver": "F",
        "2.pbsserver": "F",
        "3.pbsserver": "R",
        "4.pbsserver": "H",
        "5.pbsserver": "Q",
        "6.pbsserver": "R",
    }


def test_torque_mixed_with_an_unknown_id() -> None:
    ids = [f"{n}.torqueserver" for n in range(1, 7)] + ["99999.torqueserver"]
    assert _raw(Torque, "torque", "qstat_mixed", ids) == {
        "1.torqueserver": "C",
        "2.torqueserver": "C",
        "3.torqueserver": "R",
        "4.torqueserver": "H",
        "5.torqueserver": "Q",
        "6.torqueserver": "R",
    }


@pytest.mark.parametrize(
    ("flavour", "case", "jid"),
    [
        ("pbs", "qstat_unknown", "99999.pbsserver"),
        ("pbs", "qstat_expired", "1.pbsserver"),
        ("pbs", "qstat_finished_without_x", "1.pbsserver"),
        ("torque", "qstat_unknown", "99999.torqueserver"),
        ("torque", "qstat_expired", "1.torqueserver"),
    ],
)
def test_jobs_the_server_forgot_are_absent_not_errors(flavour: str, case: str, jid: str) -> None:
    cls = PBS if flavour == "pbs" else Torque
    assert _raw(cls, flavour, case, [jid]) == {}


@pytest.mark.parametrize("flavour", ["pbs", "torque"])
def test_a_job_the_answer_does_not_mention_is_unknown_not_ended(flavour: str) -> None:
    cls = PBS if flavour == "pbs" else Torque
    assert _raw(cls, flavour, "qstat_empty", ["1.x"]) == {"1.x": NOT_REPORTED}


def test_malformed_id_failure_is_an_error() -> None:
    with pytest.raises(SchedulerError):
        _raw(PBS, "pbs", "qstat_malformed_id", ["1.x"])


def test_other_formats_are_skipped_line_by_line_not_guessed() -> None:
    # `qstat -f` given to the table parser: nothing it could mistake for a row
    assert _raw(PBS, "pbs", "qstat_f_running", ["1.x"]) == {"1.x": NOT_REPORTED}


def test_json_and_xml_status_and_fallback_to_the_table() -> None:
    xml = recorded("torque", "qstat_x_xml")
    assert parse_qstat_xml(xml.stdout)
    refusal = CommandResult(2, "", "qstat: invalid option -- 'F'\nusage: qstat [-f] ...\n")
    ctx = FakeContext([refusal, recorded("pbs", "qstat_mixed")])
    m = machine(PBS, ctx)
    states = m.check_status_many([job(3, "3.pbsserver")])
    assert states == {job(3, "3.pbsserver").job_hash: JobStatus.running}
    assert ctx.commands == ["qstat -f -F json -x 3.pbsserver", "qstat -x 3.pbsserver"]
    assert parse_qstat_json('{"Jobs": {"7.s": {"job_state": "F"}}}') == {"7": "F"}
    with pytest.raises(StatusFormatError):
        parse_qstat_json("not json")


def test_a_json_answer_leaving_out_jobs_switches_to_the_table_at_once() -> None:
    """openpbs#2672 (real outputs of both commands): ``qstat -f -F json 10 11`` answers
    only job 10; the plain table of the same server lists both running."""
    ctx = FakeContext(
        [
            shared_recorded("pbs", "qstat_f_json_openpbs2672"),
            shared_recorded("pbs", "qstat_openpbs2672"),
        ]
    )
    m = machine(PBS, ctx)
    jobs = [job(1, "10.ip-10-0-6-176"), job(2, "11.ip-10-0-6-176")]
    states = m.check_status_many(jobs)
    assert states == {j.job_hash: JobStatus.running for j in jobs}
    assert ctx.commands == [
        "qstat -f -F json -x 10.ip-10-0-6-176 11.ip-10-0-6-176",
        "qstat -x 10.ip-10-0-6-176 11.ip-10-0-6-176",
    ]
    assert m.status_format == "text"


def test_silent_failure_is_an_error_not_a_verdict() -> None:
    with pytest.raises(SchedulerError, match="no message"):
        text_machine().parse_status_output(CommandResult(1, "", ""), [job(1, "1.s")])


@pytest.mark.parametrize("flavour", ["pbs", "torque"])
def test_transient_wordings(flavour: str) -> None:
    m = machine(PBS if flavour == "pbs" else Torque)
    for case in ("qstat_transient", "qdel_transient", "qsub_transient"):
        assert m.is_transient(recorded(flavour, case)), case
    for case in ("qstat_unknown", "qdel_unknown", "qsub_bad_queue"):
        assert not m.is_transient(recorded(flavour, case)), case


def test_every_pbs_state_code_parses_and_maps() -> None:
    table = parse_qstat_table(recorded("pbs", "qstat_all_states").stdout)
    assert sorted(set(table.values())) == sorted(code for code, _, _ in PBS_STATES if code != "K")
    assert all(code in PBS.state_map for code in table.values())
    assert table["1100"] == "R"  # over-long id, name, user and queue


def test_every_torque_state_code_parses_and_maps() -> None:
    table = parse_qstat_table(recorded("torque", "qstat_all_states").stdout)
    assert sorted(set(table.values())) == sorted(code for code, _, _ in TORQUE_STATES)
    assert all(code in Torque.state_map for code in table.values())


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Q", JobStatus.waiting),
        ("H", JobStatus.waiting),
        ("W", JobStatus.waiting),
        ("T", JobStatus.waiting),
        ("M", JobStatus.waiting),
        ("R", JobStatus.running),
        ("B", JobStatus.running),
        ("S", JobStatus.running),
        ("U", JobStatus.running),
        ("E", JobStatus.completing),
        ("F", JobStatus.finished),
        ("X", JobStatus.finished),
        ("K", JobStatus.terminated),
    ],
)
def test_pbs_state_decisions(code: str, status: JobStatus) -> None:
    assert PBS.state_map[code] == status


def test_torque_completed_is_ended_and_pbs_letters_are_not_borrowed() -> None:
    assert Torque.state_map["C"] == JobStatus.finished
    assert Torque.state_map["E"] == JobStatus.completing
    assert "F" not in Torque.state_map and "C" not in PBS.state_map


def test_truncated_ids_match_by_sequence_number() -> None:
    out = (
        "Job id            Name             User              Time Use S Queue\n"
        "----------------  ---------------- ----------------  -------- - -----\n"
        "3084.groq-r01-co* run              alice             00:01:00 R workq\n"
    )
    j = job(1, "3084.groq-r01-cores.example.org")
    assert text_machine().parse_status_output(CommandResult(0, out, ""), [j]) == {j.job_id: "R"}
    assert sequence_number("12.a.b") == "12"


def test_gone_job_ids_wordings() -> None:
    text = (
        "qstat: Unknown Job Id 5.s\nqstat: Unknown Job Id Error 6.t\n"
        "qstat: 7.s Job has finished, use -x or -H to obtain historical job information\n"
        "qdel: Job has finished 8.s\n"
    )
    assert gone_job_ids(text) == ({"5", "6", "7", "8"}, [])


def _check(
    cls: type[PBS], answer: CommandResult, jobs: list[Job], files: Iterable[str] = ()
) -> tuple[dict[str, JobStatus], FakeContext]:
    ctx = FakeContext([answer], files)
    states = text_machine(cls, ctx).check_status_many(jobs)
    return {j.job_id: states[j.job_hash] for j in jobs}, ctx


def test_ended_and_gone_jobs_are_judged_by_their_tag_with_one_command() -> None:
    done, failed, running, gone = (
        job(1, "1.pbsserver"),
        job(2, "2.pbsserver"),
        job(3, "3.pbsserver"),
        job(4, "99999.pbsserver"),
    )
    states, ctx = _check(
        PBS,
        recorded("pbs", "qstat_mixed"),
        [done, failed, running, gone],
        files=[names.job_tag_file(done.job_hash), names.job_tag_file(gone.job_hash)],
    )
    assert states == {
        "1.pbsserver": JobStatus.finished,
        "2.pbsserver": JobStatus.terminated,
        "3.pbsserver": JobStatus.running,
        "99999.pbsserver": JobStatus.finished,
    }
    assert len(ctx.commands) == 1 and ctx.commands[0].startswith("qstat -x ")


def test_torque_completed_job_without_tag_is_terminated() -> None:
    states, _ = _check(
        Torque,
        recorded("torque", "qstat_mixed"),
        [job(1, "2.torqueserver"), job(2, "5.torqueserver")],
    )
    assert states == {"2.torqueserver": JobStatus.terminated, "5.torqueserver": JobStatus.waiting}


def test_transient_status_failure_raises_transient() -> None:
    for cls, flavour in ((PBS, "pbs"), (Torque, "torque")):
        with pytest.raises(TransientSchedulerError):
            _check(cls, recorded(flavour, "qstat_transient"), [job(1, "3.x")])


# ------------------------------------------------------------------ kill
def test_kill_command_and_quiet_failures() -> None:
    assert machine().kill_command("3.pbsserver") == "qdel 3.pbsserver"
    ctx = FakeContext([recorded("pbs", "qdel_finished")])
    machine(ctx=ctx).kill(job(1, "1.pbsserver"))  # a job already gone is not an error
    assert ctx.commands == ["qdel 1.pbsserver"]


# ------------------------------------------------------------------ docstring examples
def test_docstring_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest

    import dpdispatcher.machines.pbs as module

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
