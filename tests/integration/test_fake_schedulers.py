"""PBS, Torque, SGE, LSF, Fugaku and JH UniScheduler end to end through the fakes of
``tests/fakes``.

Each test puts ``tests/fakes/<flavour>/bin`` first on PATH and gives the fake a private
state directory, then runs real submissions with LocalContext: jobs really run (in the
background, under the fake's supervisor), fail, are resubmitted, are killed. A last
test runs the same against the real Grid Engine of ``tests/infra/sge.sh`` when it is up.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.base_context import CommandResult
from dpdispatcher.errors import JobFailedError, SchedulerError
from dpdispatcher.utils.job_status import JobStatus
from tests.conftest import require

FAKES = Path(__file__).resolve().parent.parent / "fakes"
BATCH = {
    "pbs": "PBS",
    "torque": "Torque",
    "sge": "SGE",
    "lsf": "LSF",
    "fugaku": "Fugaku",
    "jh": "JH_UniScheduler",
}
SUBMIT = {
    "pbs": "qsub ",
    "torque": "qsub ",
    "sge": "qsub ",
    "lsf": "bsub ",
    "fugaku": "pjsub ",
    "jh": "jsub ",
}
#: the machine-readable status commands (the fakes emit JSON / XML like the real tools)
STATUS = {
    "pbs": "qstat -f -F json -x ",
    "torque": "qstat -x ",
    "sge": "qstat -xml -u",
    "lsf": "bjobs -a -o 'jobid stat' -json ",
    "fugaku": "pjstat -v ",
    "jh": "jjobs ",
}
KILL = {
    "pbs": "qdel ",
    "torque": "qdel ",
    "sge": "qdel ",
    "lsf": "bkill ",
    "fugaku": "pjdel ",
    "jh": "jctrl kill ",
}
#: tool invocations in one status command, where more than one
TOOL_CALLS_PER_STATUS = {"fugaku": 2}
#: raw states meaning "the job has ended" in each fake (absent = ended, too)
ENDED_RAW = {
    "pbs": {"F"},
    "torque": {"C"},
    "sge": {"dr", "dt"},
    "lsf": {"EXIT", "DONE"},
    "fugaku": {"EXT", "CCL", "ERR"},
    "jh": {"EXIT", "DONE"},
}


@pytest.fixture(params=sorted(BATCH))
def flavour(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """One fake scheduler on PATH with a private state dir; its jobs killed afterwards."""
    name: str = request.param
    for key in [k for k in os.environ if k.startswith("FAKESCHED_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", f"{FAKES / name / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKESCHED_DIR", str(tmp_path / "sched"))
    monkeypatch.setenv("FAKESCHED_KILL_GRACE", "0.5")
    yield name
    subprocess.run(
        [sys.executable, str(FAKES / "fakesched.py"), name, "ctl", "killall"],
        capture_output=True,
        check=False,
        timeout=30,
    )


def make_work(tmp_path: Path, n: int) -> Path:
    work = tmp_path / "local" / "work"
    for i in range(n):
        (work / f"task{i}").mkdir(parents=True)
        (work / f"task{i}" / "in.txt").write_text(f"input {i}\n")
    return work


def make_machine(batch_type: str, tmp_path: Path, retry_count: int = 3) -> Machine:
    return Machine.load_from_dict(
        {
            "batch_type": batch_type,
            "context_type": "LocalContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(tmp_path / "remote"),
            "retry_count": retry_count,
        }
    )


def record_commands(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every command the machine's context runs, in order."""
    calls: list[str] = []
    original = machine.context.run

    def run(cmd: str, timeout: float | None = None, *, idempotent: bool = False) -> CommandResult:
        calls.append(cmd)
        return original(cmd, timeout, idempotent=idempotent)

    monkeypatch.setattr(machine.context, "run", run)
    return calls


def fast(
    sub: Submission, limit: float = 40.0, diagnose: Callable[[], str] = lambda: ""
) -> Submission:
    """Short polling and retry delays, and a deadline instead of hanging forever."""
    deadline = time.monotonic() + limit
    sub.timing.first_interval = 0.05
    sub.timing.growth = 1.3
    sub.timing.resubmit_delay = 0.05

    def sleep(seconds: float) -> None:
        if time.monotonic() > deadline:
            pytest.fail(f"submission still running after {limit} s\n{diagnose()}")
        time.sleep(seconds)

    sub.timing.sleep = sleep
    return sub


def tasks(
    n: int, command: Callable[[int], str] = lambda i: "cat in.txt > out.txt", **kw: Any
) -> list[Task]:
    return [
        Task(command(i), f"task{i}/", forward_files=["in.txt"], backward_files=["out.txt"], **kw)
        for i in range(n)
    ]


# ------------------------------------------------------------------ multi-task submission
def test_multi_task_submission_with_groups_and_para_deg(
    flavour: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_work(tmp_path, 6)
    machine = make_machine(BATCH[flavour], tmp_path)
    calls = record_commands(machine, monkeypatch)
    res = Resources(1, 2, 0, "", 2, para_deg=2)
    sub = fast(Submission("work", machine, res, task_list=tasks(6)))
    sub.run_submission(check_interval=0.5)
    for i in range(6):
        assert (work / f"task{i}" / "out.txt").read_text() == f"input {i}\n"
    assert all(job.job_state == JobStatus.finished for job in sub.belonging_jobs)
    assert all(job.fail_count == 0 for job in sub.belonging_jobs)
    submits = [c for c in calls if SUBMIT[flavour] in c]
    assert len(submits) == 1 and submits[0].count(SUBMIT[flavour]) == 3  # one batch of 3
    statuses = [c for c in calls if c.startswith(STATUS[flavour])]
    assert statuses, "no status command was issued"
    # the first (machine-readable, where the tool has one) format is still in use
    assert machine.status_format == machine.status_formats[0], "fell back to the text table"
    if flavour != "sge":  # SGE's qstat lists every job of the user without naming them
        assert all(job.job_id in statuses[0] for job in sub.belonging_jobs)


# ------------------------------------------------------------------ failure, resubmission
def test_failing_task_is_resubmitted_then_reported(
    flavour: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_work(tmp_path, 2)
    machine = make_machine(BATCH[flavour], tmp_path, retry_count=1)
    calls = record_commands(machine, monkeypatch)

    def command(i: int) -> str:
        return "cat in.txt > out.txt" if i == 0 else "echo boom-$((6*7)) >&2; exit 3"

    sub = fast(Submission("work", machine, Resources(1, 1, 0, "", 2), task_list=tasks(2, command)))
    with pytest.raises(JobFailedError) as failure:
        sub.run_submission(check_interval=0.5)
    message = str(failure.value)
    assert "boom-42" in message and "exit code 3" in message
    assert "failed 2 times" in message
    assert sum(c.count(SUBMIT[flavour]) for c in calls) == 2  # first run + one resubmission


# ------------------------------------------------------------------ transient failures
def test_transient_submit_and_status_failures_fail_nothing(
    flavour: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_work(tmp_path, 2)
    monkeypatch.setenv("FAKESCHED_FAIL", "submit:1,status:2")
    machine = make_machine(BATCH[flavour], tmp_path, retry_count=0)
    calls = record_commands(machine, monkeypatch)
    sub = fast(Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=tasks(2)))
    sub.run_submission(check_interval=0.5)
    assert all((work / f"task{i}" / "out.txt").exists() for i in range(2))
    assert all(job.fail_count == 0 for job in sub.belonging_jobs)
    assert sum(c.count(SUBMIT[flavour]) for c in calls) >= 3  # the refused one went again
    # two failed tool calls: two deferred polls, or one where the status command runs the
    # tool twice (Fugaku: pjstat, then pjstat -H), then one that answers
    # (queue searches after the ambiguous submit count alike: the fakes count them as status)
    polls = 2 // TOOL_CALLS_PER_STATUS.get(flavour, 1)
    tools = (STATUS[flavour].split()[0] + " ", "qselect ")
    asked = [c for c in calls if any(t in c for t in tools) and SUBMIT[flavour] not in c]
    assert len(asked) >= polls + 1


# ------------------------------------------------------------------ ratio_unfinished
def _straggler_command(pid_file: Path) -> Callable[[int], str]:
    def command(i: int) -> str:
        if i == 3:
            return f"echo $BASHPID > {pid_file}; exec sleep 120"
        return "cat in.txt > out.txt"

    return command


def _assert_killed(
    machine: Machine,
    calls: list[str],
    kill: str,
    ended_raw: set[str],
    pid_file: Path,
    sub: Submission,
) -> None:
    """The one dropped job was killed with ``kill``, left the scheduler, and its process died."""
    assert len(sub.dropped_jobs) == 1
    straggler = sub.dropped_jobs[0]
    assert f"{kill}{straggler.job_id}" in calls
    deadline = time.monotonic() + 20
    while True:
        result = machine.context.run(machine.status_command([straggler]))
        raw = machine.parse_status_output(result, [straggler]).get(straggler.job_id)
        if raw is None or raw in ended_raw:
            break
        assert time.monotonic() < deadline, f"the killed job is still {raw}"
        time.sleep(0.2)
    if not pid_file.exists():
        return  # killed before it started
    pid = int(pid_file.read_text())
    while _alive(pid):
        assert time.monotonic() < deadline, "the straggler's process survived the kill"
        time.sleep(0.2)


def test_ratio_unfinished_kills_the_straggler(
    flavour: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_work(tmp_path, 4)
    pid_file = tmp_path / "straggler.pid"
    machine = make_machine(BATCH[flavour], tmp_path)
    calls = record_commands(machine, monkeypatch)
    res = Resources(1, 1, 0, "", 1, strategy={"ratio_unfinished": 0.25})
    sub = Submission("work", machine, res, task_list=tasks(4, _straggler_command(pid_file)))
    fast(sub).run_submission(check_interval=0.5)
    assert all((work / f"task{i}" / "out.txt").exists() for i in range(3))
    _assert_killed(machine, calls, KILL[flavour], ENDED_RAW[flavour], pid_file, sub)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


# ------------------------------------------------------------------ real Grid Engine
def _sge_diagnosis() -> str:
    """What the real Grid Engine says about its queue and pending jobs."""
    out = subprocess.run(
        "qstat -f; qstat -j '*' 2>/dev/null | grep -A2 'scheduling info' | head -20",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return f"Grid Engine state (qstat -f):\n{out.stdout}{out.stderr}"


@pytest.fixture
def real_sge() -> dict[str, str]:
    """Queue and parallel environment of the real Grid Engine (tests/infra/sge.sh up)."""
    require("DPDISP_SGE", what="real Grid Engine")
    return {
        "queue": os.environ.get("DPDISP_SGE_QUEUE", "all.q"),
        "pe_name": os.environ.get("DPDISP_SGE_PE", "smp"),
    }


def _run_real(sub: Submission, machine: Machine) -> None:
    """Run a submission on the real Grid Engine; kill what is left whatever happens."""
    try:
        sub.run_submission(check_interval=1.0)
    finally:
        for job in sub.belonging_jobs:
            if job.job_id and job.job_state != JobStatus.finished:
                machine.kill(job)


def test_real_sge_failing_task_resubmitted_then_reported(
    real_sge: dict[str, str], tmp_path: Path
) -> None:
    make_work(tmp_path, 3)

    def command(i: int) -> str:
        return "cat in.txt > out.txt" if i < 2 else "echo real-boom >&2; exit 5"

    machine = make_machine("SGE", tmp_path, retry_count=1)
    res = Resources(1, 1, 0, real_sge["queue"], 1, kwargs={"pe_name": real_sge["pe_name"]})
    sub = Submission("work", machine, res, task_list=tasks(3, command))
    fast(sub, limit=90, diagnose=_sge_diagnosis)
    with pytest.raises(JobFailedError, match="real-boom"):
        _run_real(sub, machine)
    job_root = Path(machine.context.remote_root)
    for i in range(2):
        assert (job_root / f"task{i}" / "out.txt").read_text() == f"input {i}\n"
    done = [job for job in sub.belonging_jobs if job.job_state == JobStatus.finished]
    assert len(done) == 2


def test_real_sge_error_state_job_is_deleted_resubmitted_and_reported(
    real_sge: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An output file in a missing directory puts the job in ``Eqw`` (a real SGE error)."""
    make_work(tmp_path, 1)
    machine = make_machine("SGE", tmp_path, retry_count=1)
    res = Resources(
        1,
        1,
        0,
        real_sge["queue"],
        1,
        custom_flags=[f"#$ -o {tmp_path}/no/such/dir/out.txt"],
        kwargs={"pe_name": real_sge["pe_name"]},
    )
    sub = Submission("work", machine, res, task_list=tasks(1))
    fast(sub, limit=90, diagnose=_sge_diagnosis)
    calls = record_commands(machine, monkeypatch)
    with caplog.at_level("WARNING", logger="dpdispatcher"), pytest.raises(JobFailedError):
        _run_real(sub, machine)
    assert "error state" in caplog.text and "no/such/dir" in caplog.text
    assert sum(c.count("qsub ") for c in calls) == 2
    deleted = {jid for c in calls for ids in re.findall(r"qdel ([\d ]+)", c) for jid in ids.split()}
    assert len(deleted) == 2, "each job in error state is deleted once judged terminated"
    listed = subprocess.run(["qstat"], capture_output=True, text=True, check=False).stdout
    still_listed = {line.split()[0] for line in listed.splitlines()[2:] if line.strip()}
    assert not deleted & still_listed


def test_real_sge_ratio_unfinished_kills_the_straggler(
    real_sge: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_work(tmp_path, 4)
    pid_file = tmp_path / "straggler.pid"
    machine = make_machine("SGE", tmp_path)
    calls = record_commands(machine, monkeypatch)
    res = Resources(
        1,
        1,
        0,
        real_sge["queue"],
        1,
        strategy={"ratio_unfinished": 0.25},
        kwargs={"pe_name": real_sge["pe_name"]},
    )
    sub = Submission("work", machine, res, task_list=tasks(4, _straggler_command(pid_file)))
    fast(sub, limit=90, diagnose=_sge_diagnosis)
    _run_real(sub, machine)
    assert all((work / f"task{i}" / "out.txt").exists() for i in range(3))
    _assert_killed(machine, calls, "qdel ", set(), pid_file, sub)  # gone from qstat for real


# ------------------------------------------------------------------ ambiguous submits
#: what each wrapper prints after the real submit queued the job (a transient wording of
#: the tool, or nothing with the exit code of a submit cut short by ``timeout``)
AMBIGUOUS = {
    "pbs": ("qsub: Error communicating with pbsserver(127.0.0.1)", 1),
    "torque": ("cannot connect to server torqueserver (errno=111) Connection refused", 1),
    "sge": ("error: commlib error: got select error (Connection refused)", 1),
    "lsf": ("", 124),
    "fugaku": ("", 124),
    "jh": ("", 124),
}


def _ambiguous_submit_wrapper(flavour: str, tmp_path: Path, every: int) -> Path:
    """A submit command that queues the job with the fake, then on every ``every``-th call
    reports a failure (as a timed-out or cut connection does after the server queued it)."""
    tool = SUBMIT[flavour].split()[0]
    bindir = tmp_path / "wrap"
    bindir.mkdir()
    message, code = AMBIGUOUS[flavour]
    counter = tmp_path / "submit-calls"
    script = bindir / tool
    script.write_text(
        "#!/bin/bash\n"
        f"n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}\n"
        f'out=$({FAKES / flavour / "bin" / tool} "$@"); rc=$?\n'
        f"if [ $rc -eq 0 ] && [ $((n % {every})) -eq 1 ]; then\n"
        f'  [ -n "{message}" ] && echo "{message}" >&2; exit {code}\n'
        "fi\n"
        'printf "%s\\n" "$out"; exit $rc\n'
    )
    script.chmod(0o755)
    return bindir


def _use_fake(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FAKESCHED_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", f"{FAKES / name / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKESCHED_DIR", str(tmp_path / "sched"))


@pytest.mark.parametrize("flavour", sorted(AMBIGUOUS))
def test_ambiguous_submits_are_found_in_the_queue_never_submitted_twice(
    flavour: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _use_fake(flavour, tmp_path, monkeypatch)
    n = 4
    work = make_work(tmp_path, n)
    runs = tmp_path / "runs"  # outside the work tree: one line per task run
    wrap = _ambiguous_submit_wrapper(flavour, tmp_path, every=2)
    monkeypatch.setenv("PATH", f"{wrap}:{os.environ['PATH']}")
    machine = make_machine(BATCH[flavour], tmp_path, retry_count=0)
    calls = record_commands(machine, monkeypatch)
    task_list = tasks(n, lambda i: f"echo {i} >> {runs}; sleep 1; cat in.txt > out.txt")
    sub = fast(Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=task_list))
    with caplog.at_level(logging.INFO, logger="dpdispatcher"):
        sub.run_submission(check_interval=0.5)
    assert sorted(runs.read_text().split()) == [str(i) for i in range(n)]  # each ran once
    for i in range(n):
        assert (work / f"task{i}" / "out.txt").read_text() == f"input {i}\n"
    listed = subprocess.run(
        [sys.executable, str(FAKES / "fakesched.py"), flavour, "ctl", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len([line for line in listed.splitlines() if line.strip()]) == n  # n jobs, no more
    find = machine.find_command(["TAG"])
    assert find is not None and any(c.split()[0] == find.split()[0] for c in calls)
    found = caplog.text.count("was queued although its submit command failed")
    finished = caplog.text.count("ran to completion although its submit command failed")
    assert found + finished >= 1, "no ambiguous submission was reconciled"


def test_lsf_job_on_several_hosts_with_the_plain_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B2: bjobs prints further execution hosts on continuation lines; old LSF (no -json)."""
    _use_fake("lsf", tmp_path, monkeypatch)
    work = make_work(tmp_path, 2)
    machine = make_machine("LSF", tmp_path)
    machine._format_index = machine.status_formats.index("text")
    calls = record_commands(machine, monkeypatch)
    res = Resources(2, 2, 0, "", 2)  # 2 nodes x 2 CPUs: span[ptile=2] over 2 hosts
    sub = fast(
        Submission(
            "work", machine, res, task_list=tasks(2, lambda i: "sleep 1; cat in.txt > out.txt")
        )
    )
    sub.run_submission(check_interval=0.5)
    assert all((work / f"task{i}" / "out.txt").exists() for i in range(2))
    assert any(c.startswith("bjobs ") and "-json" not in c for c in calls)
    table = subprocess.run(
        ["bjobs", "-a", sub.belonging_jobs[0].job_id], capture_output=True, text=True
    ).stdout
    assert "\n" + " " * 45 in table  # the fake printed a continuation line


def test_an_ambiguous_submit_survives_a_restart_and_is_found_not_resubmitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The *unknown, no job id* state is persisted: a rerun searches before submitting."""
    _use_fake("pbs", tmp_path, monkeypatch)
    work = make_work(tmp_path, 1)
    wrap = _ambiguous_submit_wrapper("pbs", tmp_path, every=1000)  # only the first call
    monkeypatch.setenv("PATH", f"{wrap}:{os.environ['PATH']}")
    runs = tmp_path / "runs"

    def fresh() -> Submission:
        task_list = tasks(1, lambda i: f"echo {i} >> {runs}; sleep 1; cat in.txt > out.txt")
        machine = make_machine("PBS", tmp_path)
        return fast(Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=task_list))

    first = fresh()
    first.run_submission(exit_on_submit=True)  # the dispatcher stops right after submitting
    assert first.belonging_jobs[0].job_state == JobStatus.unknown
    assert first.belonging_jobs[0].job_id == ""
    second = fresh()
    second.run_submission(check_interval=0.5)
    assert runs.read_text().split() == ["0"]
    assert (work / "task0" / "out.txt").read_text() == "input 0\n"
    listed = subprocess.run(
        [sys.executable, str(FAKES / "fakesched.py"), "pbs", "ctl", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len(listed.splitlines()) == 1  # one scheduler job, found again by its tag


def test_fugaku_refusal_with_exit_code_zero_is_an_error_not_a_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pjsub reports some refusals as an [ERR.] line with exit code 0 (see the fixture
    README): the run stops with that message, and no job id is invented."""
    _use_fake("fugaku", tmp_path, monkeypatch)
    make_work(tmp_path, 1)
    machine = make_machine("Fugaku", tmp_path)
    sub = fast(Submission("work", machine, Resources(1, 1, 0, "bad_queue", 1), task_list=tasks(1)))
    with pytest.raises(SchedulerError, match="PJM 0049 pjsub"):
        sub.run_submission(check_interval=0.5)
    assert all(not job.job_id for job in sub.belonging_jobs)
