"""Fugaku offline: header, commands, parsers on every public output, states, one poll."""

from __future__ import annotations

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.base_context import CommandResult
from dpdispatcher.errors import ConfigurationError, SchedulerError, TransientSchedulerError
from dpdispatcher.machines.fugaku import (
    FUGAKU_STATES,
    Fugaku,
    parse_pjstat_tables,
    parse_pjsub_output,
)
from dpdispatcher.utils.job_status import JobStatus
from tests.scheduler_doubles import FakeContext, recorded


def job(job_id: str = "", cpus: int = 4, queue: str = "", nodes: int = 1) -> Job:
    j = Job([Task("echo 1", "t0")], resources=Resources(nodes, cpus, 0, queue, 1))
    j.job_id = job_id
    return j


def test_registered_under_both_spellings() -> None:
    assert Machine.get_class("Fugaku") is Fugaku
    assert Machine.get_class("fugaku") is Fugaku


def test_header_directives() -> None:
    m = Fugaku(context=FakeContext())
    assert m.header_lines(job(nodes=3, cpus=48, queue="small")) == [
        "#!/bin/bash -l",
        '#PJM -L "rscgrp=small"',
        '#PJM -L "node=3" ',
        '#PJM --mpi "max-proc-per-node=48"',
    ]
    assert not any("rscgrp" in line for line in m.header_lines(job()))


@pytest.mark.parametrize("queue", ['sm"all', "a,node=99", "q\n#PJM -L node=1000"])
def test_resource_group_that_would_break_the_directive_is_refused(queue: str) -> None:
    with pytest.raises(ConfigurationError, match="queue_name"):
        Fugaku(context=FakeContext()).header_lines(job(queue=queue))


def test_submit_command_and_id() -> None:
    m = Fugaku(context=FakeContext())
    assert m.submit_command(job(), ".abc.sub") == "pjsub .abc.sub"
    tagged = job()
    tagged.submit_tag = "dpd0123456704e4"
    assert m.submit_command(tagged, ".abc.sub") == "pjsub -N dpd0123456704e4 .abc.sub"
    assert parse_pjsub_output(recorded("fugaku", "pjsub_ok").stdout) == "167661"


def test_refusal_with_exit_code_zero_is_not_a_job_id() -> None:
    refused = recorded("fugaku", "pjsub_staging_error_rc0")
    assert refused.ok  # the real pjsub exits 0 here
    with pytest.raises(SchedulerError, match="Staging option error"):
        parse_pjsub_output(refused.stdout)


def test_every_public_pjstat_table_parses() -> None:
    every = parse_pjstat_tables(recorded("fugaku", "pjstat_choose_every_state").stdout)
    assert set(every.values()) == {code for code, _, _ in FUGAKU_STATES} - {"SPP", "SPD", "RSM"}
    assert every["167736"] == "HLD" and every["167739"] == "RJT"
    manual = parse_pjstat_tables(recorded("fugaku", "pjstat_manual_two_jobs").stdout)
    assert manual == {"238": "RUN", "239": "RUN"}
    current = parse_pjstat_tables(recorded("fugaku", "pjstat_v_current").stdout)
    assert current == {
        "167687": "ACC", "167688": "RUN", "167689": "RNO",
        "167690": "RNA", "167691": "RNP", "167692": "HLD",
    }  # fmt: skip
    history = parse_pjstat_tables(recorded("fugaku", "pjstat_H_v_history").stdout)
    assert history["167661"] == "ERR" and history["167662"] == "CCL"


def test_current_list_wins_over_history_and_a_stray_line_is_refused() -> None:
    both = "JOB_ID ST REASON\n7 RUN -\nJOB_ID ST REASON\n7 EXT COMPLETED\n"
    assert parse_pjstat_tables(both) == {"7": "RUN"}
    with pytest.raises(SchedulerError):
        parse_pjstat_tables("garbage before any header\n")


def test_every_state_is_mapped() -> None:
    m = Fugaku(context=FakeContext())
    for code, _, status in FUGAKU_STATES:
        assert m.map_state(code) == status
    assert m.map_state("RNE") == JobStatus.completing


def test_one_status_command_for_all_jobs_and_ended_jobs_judged_by_tag() -> None:
    table = (
        "JOB_ID     ST  REASON\n1     RUN -\n2     QUE -\n"
        "JOB_ID     ST  REASON\n3     EXT COMPLETED\n4     ERR -\n"
    )
    a, b, c, d, e = (job(str(i), cpus=i) for i in range(1, 6))
    ctx = FakeContext([CommandResult(0, table, "")], files={names.job_tag_file(c.job_hash)})
    states = Fugaku(context=ctx).check_status_many([a, b, c, d, e])
    assert len(ctx.commands) == 1
    assert ctx.commands[0].startswith("pjstat -v --choose jid,st,ermsg 1 2 3 4 5;")
    assert "pjstat -H -v --choose jid,st,ermsg 1 2 3 4 5" in ctx.commands[0]
    assert states == {
        a.job_hash: JobStatus.running,
        b.job_hash: JobStatus.waiting,
        c.job_hash: JobStatus.finished,
        d.job_hash: JobStatus.terminated,  # ERR and no tag
        e.job_hash: JobStatus.terminated,  # in neither list, no tag
    }


def test_invalid_jobid_means_gone_other_errors_refused_or_deferred() -> None:
    m = Fugaku(context=FakeContext())
    gone = recorded("fugaku", "pjstat_invalid_jobid")
    assert m.parse_status_output(gone, [job("9")]) == {}
    broken = CommandResult(1, "", "[ERR.] PJM 0999 pjstat something unexpected\n")
    with pytest.raises(SchedulerError, match="unexpected"):
        m.parse_status_output(broken, [job("9")])
    away = CommandResult(1, "", "[ERR.] PJM 0010 pjstat Connection refused\n")
    with pytest.raises(TransientSchedulerError):
        m.parse_status_output(away, [job("9")])


def test_kill_command_and_hostile_id() -> None:
    m = Fugaku(context=FakeContext())
    assert m.kill_command("42") == "pjdel 42"
    with pytest.raises(SchedulerError):
        m.status_command([job("1; rm -rf ~")])


def test_an_ambiguous_submission_is_found_again_by_its_job_name() -> None:
    m = Fugaku(context=FakeContext())
    listing = recorded("fugaku", "pjstat_manual_two_jobs").stdout  # job.sh, bulk.sh
    history = "JOB_ID     JOB_NAME   MD ST  USER\n231        job.sh     NM EXT user1\n"
    result = CommandResult(0, listing + history, "")
    assert m.find_command(["job.sh"]) == "pjstat; pjstat -H"
    assert m.parse_find_output(result, ["job.sh", "absent"]) == {"job.sh": "238"}
