"""JH UniScheduler offline: header and GPU lines, commands, parsers, states, one poll."""

from __future__ import annotations

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.base_context import CommandResult
from dpdispatcher.errors import SchedulerError
from dpdispatcher.machine import NOT_REPORTED
from dpdispatcher.machines.JH_UniScheduler import JH_UNISCHEDULER_STATES, JH_UniScheduler
from dpdispatcher.utils.job_status import JobStatus
from tests.scheduler_doubles import FakeContext, recorded


def job(job_id: str = "", gpus: int = 0, queue: str = "", cpus: int = 4, **kwargs: str) -> Job:
    res = Resources(2, cpus, gpus, queue, 1, kwargs=kwargs)
    j = Job([Task("echo 1", "t0", task_name="named")], resources=res)
    j.job_id = job_id
    return j


def machine(ctx: FakeContext | None = None) -> JH_UniScheduler:
    return JH_UniScheduler(context=ctx or FakeContext())


def test_registered_and_kwargs_schema() -> None:
    assert Machine.get_class("jh_unischeduler") is JH_UniScheduler
    res = Resources.load_from_dict(
        {"batch_type": "JH_UniScheduler", "group_size": 1,
         "kwargs": {"custom_gpu_line": "#JSUB -gpgpu 1"}}
    )  # fmt: skip
    assert res.kwargs["custom_gpu_line"] == "#JSUB -gpgpu 1"


def test_header_gpu_line_and_no_job_name() -> None:
    lines = machine().header_lines(job(gpus=2, queue="gpu"))
    assert lines == [
        "#!/bin/bash -l",
        "#JSUB -e %J.err",
        "#JSUB -o %J.out",
        "#JSUB -n 8",
        "#JSUB -R 'span[ptile=4]'",
        "#JSUB -q gpu",
        "#JSUB -gpgpu 2",
    ]
    custom = machine().header_lines(job(gpus=2, custom_gpu_line='#JSUB -gpgpu "1 type=A100"'))
    assert custom[-1] == '#JSUB -gpgpu "1 type=A100"' and "#JSUB -gpgpu 2" not in custom
    assert not any(line.startswith("#JSUB -gpgpu") for line in machine().header_lines(job()))


def test_commands() -> None:
    m = machine()
    assert m.submit_command(job(), ".h.sub") == "jsub < .h.sub"
    tagged = job()
    tagged.submit_tag = "dpd0123456704e4"
    assert m.submit_command(tagged, ".h.sub") == "jsub -J dpd0123456704e4 < .h.sub"
    assert 'jjobs -a -J "$t"' in str(m.find_command(["dpd0123456704e4"]))
    assert m.status_command([job("5"), job("6", cpus=2)]) == "jjobs 5 6"
    assert m.kill_command("5") == "jctrl kill 5"
    assert m.parse_submit_output(recorded("jh_unischeduler", "jsub_queue").stdout) == "462270"


def test_manual_listings_parse() -> None:
    rows = recorded("jh_unischeduler", "jjobs_manual_rows")
    ids = [job(str(i), cpus=i % 5 + 1) for i in (237, 239, 999)]
    # 999 is neither listed nor reported "not found": not known for certain (polled again)
    assert machine().parse_status_output(rows, ids) == {
        "237": "RUN",
        "239": "PEND",
        "999": NOT_REPORTED,
    }
    renamed = recorded("jh_unischeduler", "jjobs_renamed_job")
    assert machine().parse_status_output(renamed, [job("18")]) == {"18": "RUN"}


def test_every_state_is_mapped() -> None:
    m = machine()
    for code, _, status in JH_UNISCHEDULER_STATES:
        assert m.map_state(code) == status


def test_one_jjobs_per_poll_and_gone_jobs_judged_by_tag() -> None:
    listing = (
        "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME\n"
        "1       u       RUN   normal     h           h           x          Mar 30 15:40\n"
        "2       u       DONE  normal     h           h           x          Mar 30 15:40\n"
    )
    a, b, c = job("1", cpus=1), job("2", cpus=2), job("3", cpus=3)
    ctx = FakeContext(
        [CommandResult(255, listing, "Job <3> is not found\n")],
        files={names.job_tag_file(b.job_hash)},
    )
    states = machine(ctx).check_status_many([a, b, c])
    assert ctx.commands == ["jjobs 1 2 3"]
    assert states == {
        a.job_hash: JobStatus.running,
        b.job_hash: JobStatus.finished,
        c.job_hash: JobStatus.terminated,
    }


def test_unexplained_failure_is_refused() -> None:
    with pytest.raises(SchedulerError, match="jjobs failed"):
        machine().parse_status_output(CommandResult(255, "", "jjobs: weird\n"), [job("1")])
