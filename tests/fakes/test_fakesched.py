"""End-to-end tests of the fake batch schedulers in tests/fakes/.

Each test puts ``tests/fakes/<flavour>/bin`` first on PATH, points
``FAKESCHED_DIR`` at a private directory and drives the fake commands
exactly like dpdispatcher would: submit a real script, poll until it is
done, kill a long one, ask about unknown ids, survive injected transient
failures. A last group compares the fake Grid Engine with the outputs
recorded from a real SGE 8.1.9 (tests/fixtures/scheduler_output/sge) and,
when ``DPDISP_SGE=1`` (tests/infra/sge.sh up), with the live cluster.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import require

FAKES = Path(__file__).resolve().parent
FIXTURES = FAKES.parent / "fixtures" / "scheduler_output"
FLAVOURS = ("pbs", "torque", "sge", "lsf")
SUBMIT = {"pbs": "qsub", "torque": "qsub", "sge": "qsub", "lsf": "bsub"}
STATUS = {"pbs": "qstat", "torque": "qstat", "sge": "qstat", "lsf": "bjobs"}
KILL = {"pbs": "qdel", "torque": "qdel", "sge": "qdel", "lsf": "bkill"}
PREFIX = {"pbs": "#PBS", "torque": "#PBS", "sge": "#$", "lsf": "#BSUB"}


class Sched:
    """Runs one flavour's fake commands in a private state dir."""

    def __init__(self, flavour: str, root: Path) -> None:
        self.flavour = flavour
        self.work = root / "work"
        self.work.mkdir(parents=True)
        self.state = root / "state"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAKESCHED_")}
        self.env["PATH"] = "{}:{}".format(FAKES / flavour / "bin", self.env.get("PATH", ""))
        self.env["FAKESCHED_DIR"] = str(self.state)
        self.env["FAKESCHED_KILL_GRACE"] = "1"

    def run(
        self, *cmd: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        e = dict(self.env)
        e.update(env)
        return subprocess.run(
            list(cmd),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=e,
            cwd=self.work,
            timeout=60,
        )

    # ---------------------------------------------------------------- submit
    def script(self, body: str, directives: tuple[str, ...] = (), name: str = "job.sh") -> str:
        lines = ["#!/bin/bash"] + [f"{PREFIX[self.flavour]} {d}" for d in directives] + [body]
        (self.work / name).write_text("\n".join(lines) + "\n")
        return name

    def submit(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        if self.flavour == "lsf":
            return self.run("bsub", *args, stdin=(self.work / script).read_text(), **env)
        return self.run("qsub", *args, script, **env)

    def submit_ok(self, script: str, *args: str, **env: str) -> str:
        p = self.submit(script, *args, **env)
        assert p.returncode == 0, p.stderr
        return parse_id(self.flavour, p.stdout)

    # ---------------------------------------------------------------- status
    def status(self, *ids: str, **env: str) -> subprocess.CompletedProcess[str]:
        if self.flavour == "pbs":
            return self.run("qstat", "-x", *ids, **env)
        if self.flavour == "sge":
            return self.run("qstat", **env)
        return self.run(STATUS[self.flavour], *ids, **env)

    def state_of(self, jid: str) -> str | None:
        """The state code the status command shows for JID (None: not listed)."""
        p = self.status(jid)
        return parse_states(self.flavour, p.stdout).get(jid)

    def wait_state(
        self, jid: str, pred: Callable[[str | None], bool], timeout: float = 20
    ) -> str | None:
        t0 = time.time()
        while True:
            s = self.state_of(jid)
            if pred(s):
                return s
            if time.time() - t0 > timeout:
                raise AssertionError(f"job {jid} stuck in state {s!r}")
            time.sleep(0.1)

    def wait_done(self, jid: str) -> str | None:
        return self.wait_state(jid, lambda s: s in FINAL[self.flavour])

    def exit_status(self, jid: str) -> int | None:
        if self.flavour in ("pbs", "torque"):
            p = (
                self.run("qstat", "-f", "-x", jid)
                if self.flavour == "pbs"
                else self.run("qstat", "-f", jid)
            )
            m = re.search(r"^\s+[Ee]xit_status = (-?\d+)$", p.stdout, re.M)
            return int(m.group(1)) if m else None
        raise NotImplementedError(self.flavour)

    def kill(self, *ids: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(KILL[self.flavour], *ids, **env)


# The states in which a job counts as over: SGE simply stops listing it.
FINAL = {"pbs": ("F",), "torque": ("C",), "sge": (None,), "lsf": ("DONE", "EXIT")}
RUNNING = {"pbs": ("R",), "torque": ("R",), "sge": ("r", "t"), "lsf": ("RUN",)}
PENDING = {"pbs": ("Q",), "torque": ("Q",), "sge": ("qw",), "lsf": ("PEND",)}
HELD = {"pbs": "H", "torque": "H", "sge": "hqw", "lsf": "PSUSP"}


def parse_id(flavour: str, stdout: str) -> str:
    if flavour in ("pbs", "torque"):
        m = re.fullmatch(r"(\d+)\.(pbsserver|torqueserver)\n", stdout)
    elif flavour == "sge":
        m = re.fullmatch(r'Your job (\d+) \(".*"\) has been submitted\n', stdout)
    else:
        m = re.fullmatch(r"Job <(\d+)> is submitted to (?:default )?queue <[^>]+>\.\n", stdout)
    assert m, f"unexpected submit output {stdout!r}"
    return stdout.strip() if flavour in ("pbs", "torque") else m.group(1)


def parse_states(flavour: str, stdout: str) -> dict[str, str]:
    """A deliberately simple parser: header + dashes, then whitespace columns."""
    lines = stdout.splitlines()
    if not lines:
        return {}
    states = {}
    if flavour in ("pbs", "torque", "sge"):
        assert lines[1].startswith("-"), stdout
        for line in lines[2:]:
            f = line.split()
            states[f[0]] = f[4]
    else:
        assert lines[0].startswith("JOBID"), stdout
        for line in lines[1:]:
            f = line.split()
            states[f[0]] = f[2]
    return states


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def make_sched(tmp_path: Path) -> Iterator[Callable[[str], Sched]]:
    made: list[Sched] = []

    def make(flavour: str) -> Sched:
        s = Sched(flavour, tmp_path / flavour)
        made.append(s)
        return s

    yield make
    for s in made:
        s.run(sys.executable, str(FAKES / "fakesched.py"), s.flavour, "ctl", "killall")


@pytest.fixture(params=FLAVOURS)
def sched(request: pytest.FixtureRequest, make_sched: Callable[[str], Sched]) -> Sched:
    return make_sched(request.param)


# ==================================================================== lifecycle
def test_submit_runs_script_and_poll_until_done(sched: Sched) -> None:
    fl = sched.flavour
    directives = {
        "pbs": ("-N hello", "-l walltime=00:05:00"),
        "torque": ("-N hello", "-l nodes=1:ppn=2"),
        "sge": ("-N hello", "-cwd", "-pe smp 2"),
        "lsf": ("-J hello", "-o %J.out", "-e %J.err", "-n 2"),
    }[fl]
    script = sched.script('echo "out in $PWD"; echo err >&2; touch "$PWD/ran.marker"', directives)
    jid = sched.submit_ok(script)
    final = sched.wait_done(jid)
    assert (sched.work / "ran.marker").exists(), "the job script did not run in the submission dir"
    num = jid.split(".")[0]
    if fl in ("pbs", "torque", "sge"):
        out = (sched.work / (f"hello.o{num}")).read_text()
        err = (sched.work / (f"hello.e{num}")).read_text()
        assert out == f"out in {sched.work}\n"
        assert err == "err\n"
    else:
        assert final == "DONE"
        out = (sched.work / (f"{num}.out")).read_text()
        assert "Successfully completed." in out
        assert out.split("The output (if any) follows:\n\n", 1)[1].startswith(
            f"out in {sched.work}\n"
        )
        assert (sched.work / (f"{num}.err")).read_text() == "err\n"
    if fl in ("pbs", "torque"):
        assert sched.exit_status(jid) == 0


def test_job_ids_are_sequential(sched: Sched) -> None:
    script = sched.script("true")
    ids = [int(sched.submit_ok(script).split(".")[0]) for _ in range(3)]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]


def test_concurrent_submits_get_unique_ids(sched: Sched) -> None:
    script = sched.script("true")
    ids: list[str] = []
    lock = threading.Lock()

    def go() -> None:
        jid = sched.submit_ok(script)
        with lock:
            ids.append(jid)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    nums = sorted(int(j.split(".")[0]) for j in ids)
    assert nums == list(range(nums[0], nums[0] + 8))


def test_exit_code_decides_final_state(sched: Sched) -> None:
    script = sched.script("exit 3", {"lsf": ("-o %J.out",)}.get(sched.flavour, ()))
    if sched.flavour == "sge":
        p = sched.run("qsub", "-sync", "y", script)
        assert p.returncode == 3
        jid = parse_id("sge", p.stdout)
        assert p.stderr == f"Job {jid} exited with exit code 3.\n"  # stderr, as on real SGE
        return
    jid = sched.submit_ok(script)
    final = sched.wait_done(jid)
    if sched.flavour == "lsf":
        assert final == "EXIT"
        assert "Exited with exit code 3." in (sched.work / (f"{jid}.out")).read_text()
    else:
        assert sched.exit_status(jid) == 3


def test_kill_long_job_kills_process_group(sched: Sched) -> None:
    fl = sched.flavour
    # A child in the background too: the whole job must die, not just bash.
    script = sched.script(
        'sleep 300 & echo $! > "$PWD/child.pid"; echo $$ > "$PWD/job.pid"; wait',
        {"lsf": ("-o %J.out",)}.get(fl, ()),
    )
    jid = sched.submit_ok(script)
    sched.wait_state(jid, lambda s: s in RUNNING[fl])
    for f in ("job.pid", "child.pid"):
        deadline = time.time() + 10
        while not (sched.work / f).exists() or not (sched.work / f).read_text().strip():
            assert time.time() < deadline
            time.sleep(0.05)
    pids = [int((sched.work / f).read_text()) for f in ("job.pid", "child.pid")]
    assert all(pid_alive(p) for p in pids)
    p = sched.kill(jid)
    assert p.returncode == 0, p.stderr
    if fl == "pbs" or fl == "torque":
        assert p.stdout == "" and p.stderr == ""
    elif fl == "sge":
        assert re.fullmatch(rf"\S+ has registered the job {jid} for deletion\n", p.stdout)
    else:
        assert p.stdout == f"Job <{jid}> is being terminated\n"
    final = sched.wait_done(jid)
    deadline = time.time() + 10
    while any(pid_alive(p) for p in pids):
        assert time.time() < deadline, "job processes survived the kill"
        time.sleep(0.1)
    if fl in ("pbs", "torque"):
        assert sched.exit_status(jid) == 256 + 15
    elif fl == "lsf":
        assert final == "EXIT"


def test_kill_pending_and_held_jobs(sched: Sched) -> None:
    fl = sched.flavour
    script = sched.script('touch "$PWD/must_not_run"')
    held_flag = {"pbs": "-h", "torque": "-h", "sge": "-h", "lsf": "-H"}[fl]
    held = sched.submit_ok(script, held_flag)
    pending = sched.submit_ok(script, FAKESCHED_PENDING_SECONDS="60")
    assert sched.state_of(held) == HELD[fl]
    assert sched.state_of(pending) in PENDING[fl]
    p = sched.kill(held, pending)
    assert p.returncode == 0, p.stderr
    if fl == "sge":
        assert p.stdout.splitlines()[0].endswith(f"has deleted job {held}")
    sched.wait_done(held)
    sched.wait_done(pending)
    time.sleep(0.3)
    assert not (sched.work / "must_not_run").exists()


def test_pending_seconds_delays_start(sched: Sched) -> None:
    script = sched.script("sleep 30")
    jid = sched.submit_ok(script, FAKESCHED_PENDING_SECONDS="1.5")
    t0 = time.time()
    assert sched.state_of(jid) in PENDING[sched.flavour]
    sched.wait_state(jid, lambda s: s in RUNNING[sched.flavour])
    assert time.time() - t0 > 1.0
    sched.kill(jid)


def test_finished_jobs_stay_listed_then_vanish(sched: Sched) -> None:
    fl = sched.flavour
    jid = sched.submit_ok(sched.script("true", {"lsf": ("-o %J.out",)}.get(fl, ())))
    sched.wait_done(jid)
    # Within FAKESCHED_KEEP_FINISHED (default 30 s) the real tool still shows it ...
    if fl != "sge":
        assert sched.state_of(jid) in FINAL[fl]
    # ... and afterwards it is unknown.
    p = sched.status(jid, FAKESCHED_KEEP_FINISHED="0")
    assert jid not in parse_states(fl, p.stdout)
    expected = {
        "pbs": (f"qstat: Unknown Job Id {jid}\n", 153),
        "torque": (f"qstat: Unknown Job Id Error {jid}\n", 153),
        "sge": ("", 0),
        "lsf": (f"Job <{jid}> is not found\n", 255),
    }[fl]
    assert (p.stderr, p.returncode) == expected


def test_pbs_finished_job_without_x(make_sched: Callable[[str], Sched]) -> None:
    s = make_sched("pbs")
    jid = s.submit_ok(s.script("true"))
    s.wait_done(jid)
    p = s.run("qstat", jid)
    assert p.returncode == 35
    assert (
        p.stderr
        == f"qstat: {jid} Job has finished, use -x or -H to obtain historical job information\n"
    )


# ==================================================================== unknown ids
def test_status_with_unknown_ids(sched: Sched) -> None:
    fl = sched.flavour
    jid = sched.submit_ok(sched.script("sleep 30"))
    if fl == "sge":
        # qstat (no args) lists only what exists; qstat -j names the missing ones.
        p = sched.run("qstat", "-j", "99999")
        assert (p.returncode, p.stdout, p.stderr) == (
            1,
            "",
            "Following jobs do not exist: \n99999\n",
        )
        assert jid in parse_states(fl, sched.run("qstat").stdout)
        return
    unknown = {"pbs": "99999.pbsserver", "torque": "99999.torqueserver", "lsf": "99999"}[fl]
    p = sched.status(jid, unknown)
    assert jid in parse_states(fl, p.stdout), "known ids must still be printed"
    expected = {
        "pbs": ("qstat: Unknown Job Id 99999.pbsserver\n", 153),
        "torque": ("qstat: Unknown Job Id Error 99999.torqueserver\n", 153),
        "lsf": ("Job <99999> is not found\n", 255),
    }[fl]
    assert (p.stderr, p.returncode) == expected


def test_kill_unknown_id(sched: Sched) -> None:
    fl = sched.flavour
    unknown = {"pbs": "99999.pbsserver", "torque": "99999.torqueserver"}.get(fl, "99999")
    p = sched.kill(unknown)
    expected = {
        "pbs": ("", "qdel: Unknown Job Id 99999.pbsserver\n", 153),
        "torque": ("", "qdel: Unknown Job Id Error 99999.torqueserver\n", 153),
        "sge": ('denied: job "99999" does not exist\n', "", 1),
        "lsf": ("", "Job <99999>: No matching job found\n", 255),
    }[fl]
    assert (p.stdout, p.stderr, p.returncode) == expected


def test_status_without_jobs(sched: Sched) -> None:
    p = sched.run(STATUS[sched.flavour])
    if sched.flavour == "lsf":
        assert (p.stdout, p.stderr, p.returncode) == ("", "No unfinished job found\n", 255)
    else:
        assert (p.stdout, p.stderr, p.returncode) == ("", "", 0)


# ==================================================================== transient failures
TRANSIENT = {
    "pbs": {
        "submit": ("Connection refused\nqsub: cannot connect to server pbsserver (errno=111)\n", 2),
        "status": (
            "Connection refused\nqstat: cannot connect to server pbsserver (errno=111)\n",
            2,
        ),
    },
    "torque": {
        "submit": ("cannot connect to server torqueserver (errno=111) Connection refused", 111),
        "status": ("cannot connect to server torqueserver (errno=111) Connection refused", 111),
    },
    "sge": {
        "submit": (
            "error: commlib error: got select error (Connection refused)\n"
            "Unable to run job: unable to send message to qmaster",
            1,
        ),
        "status": (
            "error: commlib error: got select error (Connection refused)\n"
            "error: unable to send message to qmaster",
            1,
        ),
    },
    "lsf": {
        "submit": ("LSF daemon (LIM) not responding ... still trying", 255),
        "status": ("LSF is processing your request. Please wait ...", 255),
    },
}


def test_injected_transient_failures(sched: Sched) -> None:
    fl = sched.flavour
    script = sched.script("sleep 30")
    env = {"FAKESCHED_FAIL": "submit:2,status:1"}
    for _ in range(2):
        p = sched.submit(script, **env)
        text, rc = TRANSIENT[fl]["submit"]
        assert p.returncode == rc and text in p.stderr and p.stdout == ""
    jid = parse_id(fl, sched.submit(script, **env).stdout)
    p = sched.status(jid, **env)
    text, rc = TRANSIENT[fl]["status"]
    assert p.returncode == rc and text in p.stderr and p.stdout == ""
    assert jid in parse_states(fl, sched.status(jid, **env).stdout)
    # A new value re-arms the counters; the failed submits created no job.
    p = sched.kill(jid, FAKESCHED_FAIL="kill:1")
    assert p.returncode != 0
    assert sched.kill(jid, FAKESCHED_FAIL="kill:1").returncode == 0
    assert int(jid.split(".")[0]) == 1


# ==================================================================== bad input
def test_bad_queue_is_rejected(sched: Sched) -> None:
    fl = sched.flavour
    p = sched.submit(sched.script("true", ("-q bad_queue",)))
    expected = {
        "pbs": ("qsub: Unknown queue\n", 170),
        "torque": ("qsub: submit error (Unknown queue MSG=requested queue not found)\n", 170),
        "sge": (
            "Unable to run job: Job was rejected because job requests unknown queue"
            ' "bad_queue"\nExiting.\n',
            1,
        ),
        "lsf": ("bad_queue: No such queue. Job not submitted.\n", 255),
    }[fl]
    assert (p.stderr, p.returncode, p.stdout) == (*expected, "")


@pytest.mark.parametrize(
    "flavour,directive,stderr_start,rc",
    [
        ("pbs", "-Z", "qsub: invalid option -- 'Z'\nusage: qsub", 2),
        ("pbs", "-j maybe", "qsub: illegal -j value\n", 2),
        ("pbs", "-l walltime=soon", "qsub: illegal -l value\n", 2),
        ("torque", "-Z", "qsub: invalid option -- 'Z'\nusage: qsub", 2),
        ("torque", "-l nodes", "qsub: illegal -l value\n", 2),
        (
            "sge",
            "-bogus",
            'Unable to read script file because of error: invalid option argument "-bogus"\n',
            2,
        ),
        (
            "sge",
            "-pe smp",
            "Unable to read script file because of error:"
            " -pe option must have range as 2nd argument\n",
            2,
        ),
        (
            "sge",
            "-pe bad_pe 2",
            'Unable to run job: job rejected: the requested parallel environment "bad_pe" does '
            "not exist\nExiting.\n",
            1,
        ),
        (
            "sge",
            "-l h_rt=10:00",
            'Unable to run job: attribute "h_rt" is not a time value\nExiting.\n',
            1,
        ),
        ("lsf", "-Z", "bsub: illegal option -- Z\nUsage: bsub", 255),
        ("lsf", "-W 1:xx", "1:xx: Bad RUNLIMIT specification. Job not submitted.\n", 255),
        ("lsf", "-n zero", "zero: Bad argument for option -n. Job not submitted.\n", 255),
    ],
)
def test_bad_directive_is_rejected(
    make_sched: Callable[[str], Sched], flavour: str, directive: str, stderr_start: str, rc: int
) -> None:
    s = make_sched(flavour)
    p = s.submit(s.script("touch must_not_run", (directive,)))
    assert p.returncode == rc
    assert p.stderr.startswith(stderr_start), p.stderr
    assert p.stdout == ""
    time.sleep(0.2)
    assert not (s.work / "must_not_run").exists()


def test_directives_after_first_command(sched: Sched) -> None:
    fl = sched.flavour
    (sched.work / "late.sh").write_text(f"#!/bin/bash\ntrue\n{PREFIX[fl]} -q bad_queue\n")
    p = sched.submit("late.sh")
    if fl == "sge":
        # Grid Engine reads #$ lines in the whole script (real SGE 8.1.9 does).
        assert p.returncode == 1 and "unknown queue" in p.stderr
    else:
        # PBS, Torque and LSF stop at the first command.
        assert p.returncode == 0, p.stderr
        sched.wait_done(parse_id(fl, p.stdout))


def test_command_line_overrides_directives(sched: Sched) -> None:
    fl = sched.flavour
    name_opt = {"pbs": "-N", "torque": "-N", "sge": "-N", "lsf": "-J"}[fl]
    script = sched.script("true", (f"{name_opt} fromscript", "-q bad_queue"))
    p = sched.submit(script, "-q", "good")
    assert p.returncode == 0, p.stderr
    if fl == "lsf":
        assert p.stdout.endswith("is submitted to queue <good>.\n")
    elif fl == "sge":
        assert '("fromscript")' in p.stdout


# ==================================================================== flavour specifics
def test_pbs_join_oe_and_env(make_sched: Callable[[str], Sched]) -> None:
    s = make_sched("pbs")
    jid = s.submit_ok(
        s.script('echo "$PBS_JOBID $PBS_JOBNAME $PBS_O_WORKDIR"; echo e >&2', ("-N j", "-j oe"))
    )
    s.wait_done(jid)
    num = jid.split(".")[0]
    assert (s.work / (f"j.o{num}")).read_text() == f"{jid} j {s.work}\ne\n"
    assert not (s.work / (f"j.e{num}")).exists()


def test_pbs_output_is_staged_out_at_the_end(make_sched: Callable[[str], Sched]) -> None:
    s = make_sched("pbs")
    jid = s.submit_ok(s.script("echo early; sleep 30", ("-N stage",)))
    s.wait_state(jid, lambda st: st == "R")
    time.sleep(0.3)
    assert not (s.work / ("stage.o{}".format(jid.split(".")[0]))).exists()
    s.kill(jid)
    s.wait_done(jid)
    assert (s.work / ("stage.o{}".format(jid.split(".")[0]))).read_text() == "early\n"


def test_pbs_rejects_torque_only_option(make_sched: Callable[[str], Sched]) -> None:
    s = make_sched("pbs")
    p = s.run("qsub", "-d", "/tmp", s.script("true"))
    assert p.returncode == 2 and p.stderr.startswith("qsub: invalid option -- 'd'")


def test_torque_xml_status(make_sched: Callable[[str], Sched]) -> None:
    s = make_sched("torque")
    jid = s.submit_ok(s.script("exit 5"))
    s.wait_done(jid)
    p = s.run("qstat", "-x", jid)
    assert f"<Job_Id>{jid}</Job_Id>" in p.stdout
    assert "<job_state>C</job_state>" in p.stdout and "<exit_status>5</exit_status>" in p.stdout


def test_sge_terse_eqw_and_qdel_wordings(make_sched: Callable[[str], Sched]) -> None:
    s = make_sched("sge")
    p = s.run("qsub", "-terse", s.script("true"))
    assert re.fullmatch(r"\d+\n", p.stdout)
    eqw = parse_id("sge", s.run("qsub", "-o", "/nonexistent/dir/out", s.script("sleep 1")).stdout)
    assert s.state_of(eqw) == "Eqw"
    p = s.run("qdel", eqw, "notanumber")
    assert p.returncode == 1
    assert (
        p.stdout.splitlines()[1]
        == f"The job notanumber of user(s) {pwd.getpwuid(os.getuid()).pw_name} does not exist"
    )


def test_lsf_reads_script_from_stdin_and_names_job_after_it(
    make_sched: Callable[[str], Sched],
) -> None:
    s = make_sched("lsf")
    p = s.run("bsub", stdin="#!/bin/bash\n#BSUB -o %J.out\nsleep 30\n")
    jid = parse_id("lsf", p.stdout)
    assert p.stdout == f"Job <{jid}> is submitted to default queue <normal>.\n"
    row = s.run("bjobs", jid).stdout.splitlines()[1]
    # The default job name is the command, i.e. the script; bjobs cuts it to
    # '*' + its last 9 characters.
    assert row[57:68].strip() == "*;sleep 30"
    s.kill(jid)


def test_lsf_bjobs_columns(make_sched: Callable[[str], Sched]) -> None:
    s = make_sched("lsf")
    jid = s.submit_ok(s.script("sleep 30", ("-J columns", "-q short", "-n 4")))
    s.wait_state(jid, lambda st: st == "RUN")
    out = s.run("bjobs", jid).stdout.splitlines()
    assert (
        out[0] == "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME"
    )
    row = out[1]
    assert row[:8].strip() == jid and row[16:22].strip() == "RUN" and row[22:33].strip() == "short"
    assert row[45:57].strip().startswith("4*") and row[57:68].strip() == "columns"
    assert re.fullmatch(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d", row[68:])
    s.kill(jid)


# ==================================================================== fixtures
def fixture_dir(flavour: str) -> Path:
    """The fixtures recorded from this fake (pbs, torque, lsf) or from real SGE."""
    return FIXTURES / flavour if flavour == "sge" else FIXTURES / flavour / "from_fake"


def fixture_names(flavour: str) -> set[str]:
    d = fixture_dir(flavour)
    return {
        p.name.rsplit(".", 1)[0] for p in d.iterdir() if p.suffix in (".stdout", ".stderr", ".rc")
    }


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fixtures_are_complete(flavour: str) -> None:
    d = fixture_dir(flavour)
    assert (d / "README.md").is_file()
    names = fixture_names(flavour)
    assert len(names) >= 10
    for n in names:
        for ext in (".stdout", ".stderr", ".rc"):
            assert (d / (n + ext)).is_file(), n + ext
        assert re.fullmatch(r"\d+\n", (d / (n + ".rc")).read_text())


@pytest.mark.parametrize(
    "flavour,fixture,code_re",
    [
        ("pbs", "qstat_all_states", r"[BEFHMQRSTUWX]"),
        ("torque", "qstat_all_states", r"[CEHQRTWS]"),
        ("sge", "qstat_all_states", r"qw|hqw|hRwq|Eqw|Ehqw|t|r|Rr|Rt|s|ts|S|tS|T|tT|dr|dt|Rq|hr"),
        ("lsf", "bjobs_all_states", r"PEND|PROV|PSUSP|RUN|USUSP|SSUSP|DONE|EXIT|UNKWN|WAIT|ZOMBI"),
    ],
)
def test_fixture_state_codes(flavour: str, fixture: str, code_re: str) -> None:
    states = parse_states(flavour, (fixture_dir(flavour) / (fixture + ".stdout")).read_text())
    assert states and all(re.fullmatch(code_re, s) for s in states.values())


def test_fake_sge_matches_real_sge_fixtures(make_sched: Callable[[str], Sched]) -> None:
    """The fake's SGE output has the byte layout recorded from real SGE 8.1.9."""
    real = FIXTURES / "sge"
    s = make_sched("sge")
    jid = s.submit_ok(s.script("sleep 30", ("-N longjob",)))
    s.wait_state(jid, lambda st: st == "r")
    held = s.submit_ok(s.script("true"), "-h")
    fake = s.run("qstat").stdout.splitlines()
    real_lines = (real / "qstat_mixed.stdout").read_text().splitlines()
    assert fake[:2] == real_lines[:2]
    real_row = next(r for r in real_lines if " r " in r)
    fake_row = next(r for r in fake if r.split()[0] == jid)
    assert len(fake_row) == len(real_row)
    for a, b in ((0, 7), (8, 15), (16, 26), (27, 39), (40, 45), (46, 65), (66, 96), (97, 102)):
        assert (fake_row[a:b].strip() != "") == (real_row[a:b].strip() != ""), (a, b)
    assert fake_row[40:45].strip() == "r" and fake_row[16:26].strip() == "longjob"
    fake_held = next(r for r in fake if r.split()[0] == held)
    real_held = next(r for r in real_lines if " hqw " in r)
    assert len(fake_held) == len(real_held) and fake_held[40:45] == real_held[40:45]
    # Error wordings, byte for byte.
    for fixture, cmd in (
        ("qdel_unknown", ["qdel", "999999"]),
        ("qstat_j_unknown", ["qstat", "-j", "999999"]),
    ):
        p = s.run(*cmd)
        assert p.stdout == (real / (fixture + ".stdout")).read_text()
        assert p.stderr == (real / (fixture + ".stderr")).read_text()
        assert p.returncode == int((real / (fixture + ".rc")).read_text())
    for fixture, directive in (
        ("qsub_bad_queue", "-q bad_queue"),
        ("qsub_bad_option", "-bogus"),
        ("qsub_pe_no_range", "-pe smp"),
        ("qsub_bad_resource", "-l h_rt=notatime"),
    ):
        p = s.submit(s.script("true", (directive,)))
        assert p.stderr == (real / (fixture + ".stderr")).read_text(), fixture
        assert p.returncode == int((real / (fixture + ".rc")).read_text()), fixture
    s.kill(jid, held)


def test_real_sge_behaves_like_the_fake(tmp_path: Path, make_sched: Callable[[str], Sched]) -> None:
    # tests/conftest.py loads env-sge.sh written by `tests/infra/sge.sh up`.
    require("DPDISP_SGE", what="real Grid Engine (tests/infra/sge.sh up)")
    assert shutil.which("qsub", path="/usr/bin"), "DPDISP_SGE=1 but no /usr/bin/qsub"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKESCHED_")}
    env["PATH"] = "/usr/bin:/bin"
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#$ -N realjob\n#$ -cwd\necho real; exit 3\n")

    def real(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    p = real("qsub", "-sync", "y", "job.sh")
    assert p.returncode == 3
    jid = parse_id("sge", p.stdout)
    assert p.stderr == f"Job {jid} exited with exit code 3.\n"
    assert (tmp_path / (f"realjob.o{jid}")).read_text() == "real\n"
    s = make_sched("sge")
    fake = s.run("qsub", "-sync", "y", s.script("exit 3", ("-N realjob", "-cwd")))
    fid = parse_id("sge", fake.stdout)
    assert (fake.returncode, fake.stderr) == (3, f"Job {fid} exited with exit code 3.\n")
    for cmd in (["qdel", "999999"], ["qstat", "-j", "999999"]):
        r, f = real(*cmd), s.run(*cmd)
        assert (r.stdout, r.stderr, r.returncode) == (f.stdout, f.stderr, f.returncode)
    r = real("qsub", "-q", "bad_queue", "job.sh")
    f = s.run("qsub", "-q", "bad_queue", s.script("true"))
    assert (r.stderr, r.returncode) == (f.stderr, f.returncode)
