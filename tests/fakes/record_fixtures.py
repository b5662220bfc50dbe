#!/usr/bin/env python3
"""Re-record tests/fixtures/scheduler_output/{pbs,torque,lsf}/from_fake/ from the fakes
(the fakes' own output: it checks the fakes and the text fallback, it is no evidence of
the real tools, whose fixtures sit one directory up with their provenance).

PBS, Torque and LSF cannot be installed here, so their fixtures are recorded
from tests/fakes/fakesched.py (whose formats follow the tools' sources and
manuals, see each README.md) by running real scenarios through the fake
commands, plus ``*_all_states.stdout`` files synthesised with the same
formatter for every state code the real tool can print (several of which
the fake never reaches). Grid Engine's fixtures come from a real SGE 8.1.9
(tests/fixtures/scheduler_output/sge/capture_real_sge.sh); this script only
adds the synthesised ``qstat_all_states.stdout`` there.

Every case writes NAME.stdout, NAME.stderr and NAME.rc.

Usage: python3 tests/fakes/record_fixtures.py [--only pbs,torque,lsf,sge]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "scheduler_output"
sys.path.insert(0, str(HERE))

import fakesched  # noqa: E402


class Recorder:
    def __init__(self, flavour: str, state_dir: Path, work: Path) -> None:
        self.flavour = flavour
        self.out = FIXTURES / flavour / "from_fake"
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.env = dict(os.environ)
        self.env["PATH"] = "{}:{}".format(HERE / flavour / "bin", self.env.get("PATH", ""))
        self.env["FAKESCHED_DIR"] = str(state_dir)
        for k in ("FAKESCHED_FAIL", "FAKESCHED_PENDING_SECONDS", "FAKESCHED_KEEP_FINISHED"):
            self.env.pop(k, None)

    def run(
        self,
        *cmd: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run(
            list(cmd),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=e,
            cwd=self.work,
            timeout=60,
        )
        if name:
            (self.out / (name + ".stdout")).write_text(p.stdout)
            (self.out / (name + ".stderr")).write_text(p.stderr)
            (self.out / (name + ".rc")).write_text(f"{p.returncode}\n")
        return p

    def write(self, name: str, stdout: str, stderr: str = "", rc: int = 0) -> None:
        (self.out / (name + ".stdout")).write_text(stdout)
        (self.out / (name + ".stderr")).write_text(stderr)
        (self.out / (name + ".rc")).write_text(f"{rc}\n")

    def script(self, name: str, text: str) -> str:
        (self.work / name).write_text(text)
        return name

    def wait(self, pred: Callable[[], bool], timeout: float = 20) -> None:
        t0 = time.time()
        while not pred():
            if time.time() - t0 > timeout:
                raise TimeoutError(self.flavour)
            time.sleep(0.1)


def synthetic_job(
    flavour: str, jid: int, name: str, state: str, display: str, **kw: Any
) -> dict[str, Any]:
    now = time.time()
    job = {
        "id": jid,
        "flavour": flavour,
        "name": name,
        "user": kw.pop("user", "alice"),
        "host": kw.pop("host", "node01"),
        "queue": kw.pop("queue", fakesched.DEFAULT_QUEUE[flavour]),
        "slots": kw.pop("slots", 1),
        "submit_time": now - 600,
        "start_time": now - 300,
        "end_time": None,
        "state": state,
        "display_state": display,
        "cpu": kw.pop("cpu", 0.0),
    }
    job.update(kw)
    return job


# ------------------------------------------------------------------ PBS/Torque
def record_pbs_like(flavour: str, r: Recorder) -> None:
    x = ["-x"] if flavour == "pbs" else []
    done = "F" if flavour == "pbs" else "C"
    ok = r.script("ok.sh", "#!/bin/bash\n#PBS -N okjob\n#PBS -l walltime=00:10:00\necho hello\n")
    fail = r.script("fail.sh", "#!/bin/bash\n#PBS -N failjob\necho oops >&2\nexit 3\n")
    long = r.script("long.sh", "#!/bin/bash\n#PBS -N longjob\n#PBS -j oe\nsleep 600\n")
    with_long_name = r.script("a_rather_long_job_script_name.sh", "#!/bin/bash\nsleep 600\n")
    r.script("bad_queue.sh", "#!/bin/bash\n#PBS -q bad_queue\necho x\n")
    r.script("bad_option.sh", "#!/bin/bash\n#PBS -Z\necho x\n")
    r.script("bad_j.sh", "#!/bin/bash\n#PBS -j maybe\necho x\n")
    r.script("bad_l.sh", "#!/bin/bash\n#PBS -l walltime\necho x\n")

    r.run("qstat", name="qstat_empty")
    p_ok = r.run("qsub", ok, name="qsub")
    p_fail = r.run("qsub", fail)
    p_long = r.run("qsub", long)
    p_held = r.run("qsub", "-h", long, name="qsub_held")
    p_pend = r.run(
        "qsub",
        "-q",
        "workq" if flavour == "pbs" else "batch",
        long,
        env={"FAKESCHED_PENDING_SECONDS": "3600"},
    )
    p_name = r.run("qsub", with_long_name)
    ids = [p.stdout.strip() for p in (p_ok, p_fail, p_long, p_held, p_pend, p_name)]
    r.run("qsub", "bad_queue.sh", name="qsub_bad_queue")
    r.run("qsub", "bad_option.sh", name="qsub_bad_option")
    r.run("qsub", "bad_j.sh", name="qsub_bad_j")
    r.run("qsub", "bad_l.sh", name="qsub_bad_l")
    r.run("qsub", "no_such_script.sh", name="qsub_missing_script")
    r.run("qsub", ok, env={"FAKESCHED_FAIL": "submit:1"}, name="qsub_transient")
    if flavour == "pbs":
        r.run("qsub", "-d", "/tmp", ok, name="qsub_torque_only_option")

    def finished(i: str) -> bool:
        p = r.run("qstat", *x, i)
        return (f" {done} ") in p.stdout

    r.wait(lambda: finished(ids[0]) and finished(ids[1]))
    r.wait(
        lambda: " R " in r.run("qstat", ids[2]).stdout and " R " in r.run("qstat", ids[5]).stdout
    )
    unknown = f"99999.{fakesched.SERVER[flavour]}"
    r.run("qstat", *x, *ids, unknown, name="qstat_mixed")
    r.run("qstat", *x, unknown, name="qstat_unknown")
    r.run("qstat", name="qstat_all_jobs")
    if flavour == "pbs":
        r.run("qstat", ids[0], name="qstat_finished_without_x")
        r.run("qstat", "-x", "not-a-job", name="qstat_malformed_id")
    r.run("qstat", "-f", *x, ids[0], name="qstat_f_done")
    r.run("qstat", "-f", *x, ids[1], name="qstat_f_failed")
    r.run("qstat", "-f", ids[2], name="qstat_f_running")
    r.run("qstat", ids[0], env={"FAKESCHED_FAIL": "status:1"}, name="qstat_transient")
    if flavour == "torque":
        r.run("qstat", "-x", ids[0], ids[1], name="qstat_x_xml")
    # qdel: running, held, finished, unknown
    r.run("qdel", ids[2], name="qdel_running")
    r.wait(lambda: finished(ids[2]))
    r.run("qstat", "-f", *x, ids[2], name="qstat_f_killed")
    r.run("qdel", ids[3], name="qdel_held")
    r.run("qdel", ids[0], name="qdel_finished")
    r.run("qdel", unknown, name="qdel_unknown")
    r.run("qdel", ids[4], env={"FAKESCHED_FAIL": "kill:1"}, name="qdel_transient")
    r.run("qdel", ids[4], ids[5])
    # Keep-finished expiry: the finished job vanishes.
    r.run("qstat", *x, ids[0], env={"FAKESCHED_KEEP_FINISHED": "0"}, name="qstat_expired")

    # Every state code of the real tool, synthesised with the same formatter.
    if flavour == "pbs":
        states = [
            ("B", "queued", "array_parent"),
            ("E", "exiting", "exiting_job"),
            ("F", "finished", "finished_job"),
            ("H", "held", "held_job"),
            ("M", "queued", "moved_job"),
            ("Q", "queued", "queued_job"),
            ("R", "running", "running_job"),
            ("S", "running", "suspended"),
            ("T", "queued", "in_transit"),
            ("U", "running", "user_susp"),
            ("W", "queued", "waiting_job"),
            ("X", "finished", "expired_sub"),
        ]
    else:
        states = [
            ("C", "finished", "completed_job"),
            ("E", "exiting", "exiting_job"),
            ("H", "held", "held_job"),
            ("Q", "queued", "queued_job"),
            ("R", "running", "running_job"),
            ("T", "queued", "in_transit"),
            ("W", "queued", "waiting_job"),
            ("S", "running", "suspended"),
        ]
    lines = [fakesched.PBS_HEADER if flavour == "pbs" else fakesched.TORQUE_HEADER]
    for n, (letter, st, name) in enumerate(states, start=1001):
        cpu = 0.0 if st in ("queued", "held") else 61.0 * (n - 1000)
        job = synthetic_job(flavour, n, name, st, letter, cpu=cpu)
        lines.append(fakesched.pbs_row(flavour, job))
    long_job = synthetic_job(
        flavour,
        1100,
        "a_job_name_longer_than_sixteen",
        "running",
        "R",
        user="averyveryverylongusername",
        queue="a_very_long_queue_name",
        cpu=3725.0,
    )
    lines.append(fakesched.pbs_row(flavour, long_job))
    r.write("qstat_all_states", "\n".join(lines) + "\n")


# ------------------------------------------------------------------ LSF
def record_lsf(r: Recorder) -> None:
    ok = (
        "#!/bin/bash\n#BSUB -J okjob\n#BSUB -o %J.out\n#BSUB -e %J.err\necho hello\necho warn >&2\n"
    )
    fail = "#!/bin/bash\n#BSUB -J failjob\n#BSUB -o %J.out\necho oops >&2\nexit 3\n"
    long = "#!/bin/bash\n#BSUB -J longjob\n#BSUB -q short\n#BSUB -n 4\n#BSUB -o %J.out\nsleep 600\n"
    noname = "#!/bin/bash\n#BSUB -o %J.out\nsleep 600\n"
    r.run("bjobs", name="bjobs_no_jobs")
    p_ok = r.run("bsub", stdin=ok, name="bsub_default_queue")
    p_fail = r.run("bsub", stdin=fail)
    p_long = r.run("bsub", stdin=long, name="bsub_queue")
    p_held = r.run("bsub", "-H", stdin=noname, name="bsub_held")
    p_pend = r.run("bsub", stdin=noname, env={"FAKESCHED_PENDING_SECONDS": "3600"})
    p_cmd = r.run("bsub", "-o", "%J.out", "sleep", "600", name="bsub_command")
    ids = [
        p.stdout.split("<")[1].split(">")[0] for p in (p_ok, p_fail, p_long, p_held, p_pend, p_cmd)
    ]
    r.run("bsub", stdin="#!/bin/bash\n#BSUB -q bad_queue\necho x\n", name="bsub_bad_queue")
    r.run("bsub", stdin="#!/bin/bash\n#BSUB -Z\necho x\n", name="bsub_bad_option")
    r.run("bsub", stdin="#!/bin/bash\n#BSUB -W 1:xx\necho x\n", name="bsub_bad_runlimit")
    r.run("bsub", stdin="#!/bin/bash\n#BSUB -n zero\necho x\n", name="bsub_bad_n")
    r.run("bsub", stdin=ok, env={"FAKESCHED_FAIL": "submit:1"}, name="bsub_transient")

    def stat(i: str) -> str:
        p = r.run("bjobs", i)
        rows = p.stdout.splitlines()[1:]
        return rows[0].split()[2] if rows else ""

    r.wait(lambda: stat(ids[0]) == "DONE" and stat(ids[1]) == "EXIT")
    r.wait(lambda: stat(ids[2]) == "RUN" and stat(ids[5]) == "RUN")
    r.run("bjobs", *ids, "99999", name="bjobs_mixed")
    r.run("bjobs", "-w", *ids, name="bjobs_mixed_wide")
    r.run("bjobs", name="bjobs_unfinished")
    r.run("bjobs", "-a", name="bjobs_all")
    r.run("bjobs", "99999", name="bjobs_unknown")
    r.run("bjobs", "not-a-job", name="bjobs_malformed_id")
    r.run("bjobs", ids[0], env={"FAKESCHED_FAIL": "status:1"}, name="bjobs_transient")
    r.run("bkill", ids[2], name="bkill_running")
    r.wait(lambda: stat(ids[2]) == "EXIT")
    r.run("bkill", ids[3], name="bkill_pending")
    r.run("bkill", ids[0], name="bkill_finished")
    r.run("bkill", "99999", name="bkill_unknown")
    r.run("bkill", ids[4], env={"FAKESCHED_FAIL": "kill:1"}, name="bkill_transient")
    r.run("bkill", ids[4], ids[5])
    r.run("bjobs", ids[0], env={"FAKESCHED_KEEP_FINISHED": "0"}, name="bjobs_expired")
    # The -o files sbatchd writes (job report + output).
    for i, tag in ((ids[0], "done"), (ids[1], "exit"), (ids[2], "killed")):
        out_file = r.work / f"{i}.out"
        r.wait(out_file.exists)
        text = (r.work / (f"{i}.out")).read_text()
        (r.out / (f"job_output_{tag}.out")).write_text(text)
    (r.out / "job_output_done.err").write_text((r.work / (f"{ids[0]}.err")).read_text())

    states = [
        ("PEND", "queued"),
        ("PROV", "queued"),
        ("PSUSP", "held"),
        ("RUN", "running"),
        ("USUSP", "running"),
        ("SSUSP", "running"),
        ("DONE", "finished"),
        ("EXIT", "finished"),
        ("UNKWN", "running"),
        ("WAIT", "queued"),
        ("ZOMBI", "finished"),
    ]
    lines = [fakesched.LSF_HEADER]
    for n, (stat_, st) in enumerate(states, start=5001):
        job = synthetic_job(
            "lsf",
            n,
            f"job_{stat_.lower()}",
            st,
            stat_,
            host="login01",
            start_time=None if st in ("queued", "held") else time.time() - 300,
        )
        lines.append(fakesched.lsf_row(job, wide=False))
    lines.append(
        fakesched.lsf_row(
            synthetic_job(
                "lsf",
                5100,
                "#!/bin/bash;#BSUB -n 8;mpirun ./a.out",
                "running",
                "RUN",
                slots=8,
                user="averylongname",
                host="login01.cluster.example.org",
                queue="a_long_queue_name",
            ),
            wide=False,
        )
    )
    r.write("bjobs_all_states", "\n".join(lines) + "\n")


# ------------------------------------------------------------------ SGE (synthetic only)
def record_sge_synthetic(r: Recorder) -> None:
    states = [
        "qw",
        "hqw",
        "hRwq",
        "Eqw",
        "Ehqw",
        "t",
        "r",
        "Rr",
        "Rt",
        "s",
        "ts",
        "S",
        "tS",
        "T",
        "tT",
        "dr",
        "dt",
        "Rq",
        "hr",
    ]
    lines = [fakesched.SGE_HEADER]
    for n, state in enumerate(states, start=3001):
        job = synthetic_job(
            "sge", n, f"job_{state}", "queued", state, host="node01", slots=1 if n % 3 else 16
        )
        lines.append(fakesched.sge_row(job))
    r.write("qstat_all_states", "\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="pbs,torque,lsf,sge")
    args = ap.parse_args()
    for flavour in args.only.split(","):
        # A fixed path, so that re-recording does not churn the paths that
        # qstat -f prints.
        tmp = Path(tempfile.gettempdir()) / "fakesched-fixtures" / flavour
        shutil.rmtree(tmp, ignore_errors=True)
        work = tmp / "work"
        work.mkdir(parents=True)
        r = Recorder(flavour, tmp / "state", work)
        try:
            if flavour in ("pbs", "torque"):
                record_pbs_like(flavour, r)
            elif flavour == "lsf":
                record_lsf(r)
            else:
                record_sge_synthetic(r)
        finally:
            r.run(sys.executable, str(HERE / "fakesched.py"), flavour, "ctl", "killall")
        print(f"recorded {flavour} into {FIXTURES / flavour}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
