#!/usr/bin/env python3
"""fakesched -- small, faithful fakes of batch scheduler command line tools.

One implementation for four flavours, selected by the thin entry scripts in
``tests/fakes/<flavour>/bin/``:

=========  ===============================  =================================
flavour    commands                         imitates
=========  ===============================  =================================
pbs        qsub, qstat, qdel                PBS Professional / OpenPBS 20-23
torque     qsub, qstat, qdel                Torque 4-6
sge        qsub, qstat, qdel                (Son of) Grid Engine 8.1.9
lsf        bsub, bjobs, bkill               IBM Spectrum LSF 10.1
=========  ===============================  =================================

Submitting really runs the job script: ``bash <spooled copy of the script>``
in a new session, in the submission directory, under a small detached
supervisor process that records the exit status. Job state lives in
``$FAKESCHED_DIR/<flavour>/`` (default ``/tmp/fakesched-$UID``), serialised
by an ``fcntl`` lock; job ids are sequential per flavour.

Environment knobs (read by every invocation):

``FAKESCHED_DIR``              state directory (default /tmp/fakesched-$UID)
``FAKESCHED_KEEP_FINISHED``    seconds a finished job stays visible where the
                               real tool keeps it (PBS ``qstat -x``, Torque
                               ``C``, LSF ``DONE``/``EXIT``); default 30
``FAKESCHED_PENDING_SECONDS``  a newly submitted job stays queued (Q / qw /
                               PEND) this long before it starts; default 0
``FAKESCHED_FAIL``             ``submit:N,status:N,kill:N``: the next N calls of
                               that kind fail with the real tool's transient
                               "cannot reach the server" wording. The counters
                               live in the state dir; they are re-armed
                               whenever the variable's value changes.
``FAKESCHED_KILL_GRACE``       seconds between SIGTERM and SIGKILL on kill
                               (default 2; PBS's kill_delay is 10)

Admin helper (not a real tool): ``fakesched.py <flavour> ctl
list|killall|reset|release <id>|env``.

Stdlib only; Python >= 3.9.
"""

# The output formats below are printf-style on purpose: they transcribe the
# real tools' C printf formats (widths, truncation) one to one.
# ruff: noqa: UP031, E501
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

FLAVOURS = ("pbs", "torque", "sge", "lsf", "fugaku", "jh")
#: flavours whose tools behave as LSF's (JH UniScheduler copies bsub/bjobs/bkill)
LSF_LIKE = ("lsf", "jh")
TOOLS = {
    "pbs": ("qsub", "qstat", "qdel"),
    "torque": ("qsub", "qstat", "qdel"),
    "sge": ("qsub", "qstat", "qdel"),
    "lsf": ("bsub", "bjobs", "bkill"),
    "fugaku": ("pjsub", "pjstat", "pjdel"),
    "jh": ("jsub", "jjobs", "jctrl"),
}
SERVER = {"pbs": "pbsserver", "torque": "torqueserver"}
DEFAULT_QUEUE = {
    "pbs": "workq",
    "torque": "batch",
    "sge": "all.q",
    "lsf": "normal",
    "fugaku": "def_grp",
    "jh": "normal",
}
BAD_QUEUE = "bad_queue"
BAD_PE = "bad_pe"
KNOWN_PES = ("make", "smp", "mpi", "mpich", "openmpi", "orte")

Job = dict[str, Any]  # a job record, see new_job()

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- utilities
def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str = "") -> None:
    sys.stderr.write(text + "\n")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        return default


def username() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def hostname() -> str:
    return socket.gethostname().split(".")[0]


def hms(seconds: float) -> str:
    s = int(seconds)
    return "%02d:%02d:%02d" % (s // 3600, (s % 3600) // 60, s % 60)


def ctime(t: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(t))


def proc_starttime(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (None if the process is gone or a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2 :].split()
    if not rest or rest[0] == "Z":
        return None
    return rest[19]


# ---------------------------------------------------------------- state
class State:
    """The per-flavour state directory: lock, id sequence, job records."""

    def __init__(self, flavour: str) -> None:
        base = os.environ.get("FAKESCHED_DIR") or "/tmp/fakesched-%d" % os.getuid()
        self.flavour = flavour
        self.dir = os.path.join(os.path.abspath(base), flavour)
        self.jobs_dir = os.path.join(self.dir, "jobs")
        self.spool_dir = os.path.join(self.dir, "spool")
        for d in (self.jobs_dir, self.spool_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._depth = 0
        self._fd = -1

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        # Re-entrant within one process.
        if self._depth == 0:
            self._fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = -1

    def _write(self, path: str, text: str) -> None:
        tmp = "%s.tmp.%d" % (path, os.getpid())
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def next_id(self) -> int:
        with self.lock():
            path = os.path.join(self.dir, "seq")
            try:
                with open(path) as f:
                    last = int(f.read().strip() or 0)
            except (OSError, ValueError):
                last = 0
            self._write(path, "%d\n" % (last + 1))
            return last + 1

    def job_path(self, jid: int) -> str:
        return os.path.join(self.jobs_dir, "%d.json" % jid)

    def load(self, jid: int) -> Job | None:
        try:
            with open(self.job_path(jid)) as f:
                data: Job = json.load(f)
                return data
        except (OSError, ValueError):
            return None

    def save(self, job: Job) -> None:
        job["mtime"] = time.time()
        self._write(self.job_path(job["id"]), json.dumps(job, indent=1, sort_keys=True))

    def all_jobs(self) -> list[Job]:
        jobs = []
        for name in os.listdir(self.jobs_dir):
            if name.endswith(".json"):
                job = self.load(int(name[:-5]))
                if job is not None:
                    jobs.append(job)
        return sorted(jobs, key=lambda j: j["id"])

    def update(self, jid: int, **changes: Any) -> Job | None:
        with self.lock():
            job = self.load(jid)
            if job is None:
                return None
            job.update(changes)
            self.save(job)
            return job

    # -------------------------------------------------- failure injection
    def inject_failure(self, kind: str) -> bool:
        """True if this call of KIND ("submit", "status", "kill") must fail."""
        spec = os.environ.get("FAKESCHED_FAIL", "").strip()
        path = os.path.join(self.dir, "fail.json")
        with self.lock():
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = {"spec": None, "remaining": {}}
            if data.get("spec") != spec:
                remaining: dict[str, int] = {}
                for part in spec.split(","):
                    part = part.strip()
                    if not part:
                        continue
                    k, _, n = part.partition(":")
                    try:
                        remaining[k.strip()] = int(n) if n.strip() else 1
                    except ValueError:
                        remaining[k.strip()] = 1
                data = {"spec": spec, "remaining": remaining}
            left = int(data["remaining"].get(kind, 0))
            fail = left > 0
            if fail:
                data["remaining"][kind] = left - 1
            self._write(path, json.dumps(data))
            return fail

    # -------------------------------------------------- housekeeping
    def refresh(self) -> None:
        """Mark running jobs whose supervisor vanished as finished."""
        with self.lock():
            for job in self.all_jobs():
                if job["state"] in ("running", "exiting") and job.get("supervisor_pid"):
                    st = proc_starttime(job["supervisor_pid"])
                    if st is None or st != job.get("supervisor_start"):
                        job["state"] = "finished"
                        job["end_time"] = job.get("end_time") or time.time()
                        if job.get("exit_code") is None and job.get("signal") is None:
                            job["signal"] = signal.SIGKILL
                        job["lost"] = True
                        self.save(job)


def keep_finished() -> float:
    return env_float("FAKESCHED_KEEP_FINISHED", 30.0)


def visible_finished(job: Job) -> bool:
    """A finished job is still listed (where the real tool keeps it)."""
    return (
        job["state"] == "finished" and time.time() - (job.get("end_time") or 0) <= keep_finished()
    )


# ---------------------------------------------------------------- options
class OptError(Exception):
    def __init__(self, kind: str, opt: str, value: str = "") -> None:
        super().__init__(kind, opt, value)
        self.kind = kind  # "unknown", "missing"
        self.opt = opt
        self.value = value


def getopt_short(
    tokens: list[str], spec: dict[str, bool]
) -> tuple[list[tuple[str, str]], list[str]]:
    """POSIX getopt for single-letter options (PBS/Torque). SPEC: letter -> takes arg."""
    opts: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            return opts, tokens[i + 1 :]
        if not tok.startswith("-") or tok == "-":
            return opts, tokens[i:]
        j = 1
        while j < len(tok):
            ch = tok[j]
            if ch not in spec:
                raise OptError("unknown", ch)
            if spec[ch]:
                if j + 1 < len(tok):
                    val = tok[j + 1 :]
                else:
                    i += 1
                    if i >= len(tokens):
                        raise OptError("missing", ch)
                    val = tokens[i]
                opts.append((ch, val))
                break
            opts.append((ch, ""))
            j += 1
        i += 1
    return opts, []


def getopt_long(tokens: list[str], spec: dict[str, int]) -> tuple[list[tuple[str, Any]], list[str]]:
    """Whole-word options (SGE/LSF). SPEC: '-opt' -> number of arguments."""
    opts: list[tuple[str, Any]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            return opts, tokens[i + 1 :]
        if not tok.startswith("-") or tok == "-":
            return opts, tokens[i:]
        if tok not in spec:
            raise OptError("unknown", tok)
        n = spec[tok]
        if i + n >= len(tokens):
            raise OptError("missing", tok)
        vals = tokens[i + 1 : i + 1 + n]
        opts.append((tok, vals[0] if n == 1 else (vals if n else "")))
        i += 1 + n
    return opts, []


def directive_tokens(text: str, prefix: str, whole_script: bool = False) -> list[str]:
    """Options from the script's directive lines (#PBS, #$, #BSUB).

    PBS, Torque and LSF stop at the first line that is neither blank nor a
    comment; Grid Engine reads the WHOLE script (checked on SGE 8.1.9).
    Raises ValueError on unbalanced quotes.
    """
    tokens: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith(prefix):
            rest = s[len(prefix) :]
            if rest and not rest[0].isspace():
                continue  # e.g. "#PBSX" is just a comment
            tokens += shlex.split(rest, comments=True)
        elif s.startswith("#") or whole_script:
            continue
        else:
            break
    return tokens


# ---------------------------------------------------------------- jobs
def new_job(st: State, **fields: Any) -> Job:
    now = time.time()
    job: Job = {
        "id": 0,
        "flavour": st.flavour,
        "name": "STDIN",
        "user": username(),
        "host": hostname(),
        "queue": DEFAULT_QUEUE[st.flavour],
        "queue_explicit": False,
        "cwd": os.getcwd(),
        "script": "",
        "script_text": "",
        "command": "",
        "submit_args": "",
        "stdout_path": None,
        "stderr_path": None,
        "join": False,
        "stage_out": st.flavour in ("pbs", "torque", "lsf", "jh", "fugaku"),
        "slots": 1,
        "resources": {},
        "submit_time": now,
        "eligible_at": now + max(0.0, env_float("FAKESCHED_PENDING_SECONDS", 0.0)),
        "start_time": None,
        "end_time": None,
        "state": "queued",  # queued|held|error|running|exiting|finished
        "killed": False,
        "kill_time": None,
        "exit_code": None,
        "signal": None,
        "cpu": 0.0,
        "env": {},
        "supervisor_pid": None,
        "supervisor_start": None,
        "job_pgid": None,
        "mtime": now,
    }
    job.update(fields)
    return job


def spool_paths(st: State, jid: int) -> tuple[str, str, str]:
    base = os.path.join(st.spool_dir, str(jid))
    return base + ".SC", base + ".OU", base + ".ER"


def start_supervisor(st: State, job: Job) -> None:
    env = dict(os.environ)
    env["FAKESCHED_DIR"] = os.path.dirname(st.dir)
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), st.flavour, "_run", str(job["id"])],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        env=env,
        cwd="/",
    )
    # The supervisor re-reads the job under the lock; we record who it is.
    st.update(job["id"], supervisor_pid=proc.pid, supervisor_start=proc_starttime(proc.pid))


def job_env(st: State, job: Job) -> dict[str, str]:
    env = dict(job["env"])
    jid = job["id"]
    host = job["host"]
    nodefile = os.path.join(st.spool_dir, "%d.nodes" % jid)
    with open(nodefile, "w") as f:
        f.write((host + "\n") * max(1, job["slots"]))
    if st.flavour in ("pbs", "torque"):
        full = "%d.%s" % (jid, SERVER[st.flavour])
        env.update(
            PBS_JOBID=full,
            PBS_JOBNAME=job["name"],
            PBS_QUEUE=job["queue"],
            PBS_O_WORKDIR=job["cwd"],
            PBS_O_HOST=host,
            PBS_O_QUEUE=job["queue"],
            PBS_O_HOME=env.get("HOME", "/"),
            PBS_O_PATH=env.get("PATH", ""),
            PBS_O_SHELL=env.get("SHELL", "/bin/bash"),
            PBS_O_LOGNAME=job["user"],
            PBS_ENVIRONMENT="PBS_BATCH",
            PBS_NODEFILE=nodefile,
            PBS_SERVER=SERVER[st.flavour],
            NCPUS=str(job["slots"]),
        )
        if st.flavour == "torque":
            env.update(
                PBS_NUM_NODES="1",
                PBS_NUM_PPN=str(job["slots"]),
                PBS_NP=str(job["slots"]),
                PBS_O_SERVER=SERVER["torque"],
                PBS_JOBCOOKIE=f"{jid:032X}",
            )
    elif st.flavour == "sge":
        env.update(
            JOB_ID=str(jid),
            JOB_NAME=job["name"],
            QUEUE=job["queue"],
            NSLOTS=str(job["slots"]),
            NHOSTS="1",
            NQUEUES="1",
            SGE_TASK_ID="undefined",
            SGE_O_WORKDIR=job["cwd"],
            SGE_O_HOST=host,
            SGE_O_HOME=env.get("HOME", "/"),
            SGE_O_PATH=env.get("PATH", ""),
            SGE_CWD_PATH=job["cwd"],
            ENVIRONMENT="BATCH",
            PE_HOSTFILE=nodefile,
            REQUEST=job["name"],
        )
        if job.get("pe"):
            env["PE"] = job["pe"]
    elif st.flavour == "fugaku":
        env.update(
            PJM_JOBID=str(jid),
            PJM_JOBNAME=job["name"],
            PJM_O_WORKDIR=job["cwd"],
            PJM_RSCGRP=job["queue"],
        )
    else:
        env.update(
            LSB_JOBID=str(jid),
            LSB_JOBNAME=job["name"],
            LSB_QUEUE=job["queue"],
            LSB_HOSTS=" ".join([host] * max(1, job["slots"])),
            LSB_MCPU_HOSTS="%s %d" % (host, job["slots"]),
            LSB_DJOB_NUMPROC=str(job["slots"]),
            LSB_DJOB_HOSTFILE=nodefile,
            LSB_SUB_HOST=host,
            LS_SUBCWD=job["cwd"],
            LSB_JOBINDEX="0",
        )
    return env


def supervise(st: State, jid: int) -> int:
    """Run by the detached supervisor: wait until eligible, run, record."""
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    # Wait for our own pid to be recorded so that refresh() can't misjudge.
    for _ in range(100):
        job = st.load(jid)
        if job is None or job.get("supervisor_pid"):
            break
        time.sleep(0.02)
    proc: subprocess.Popen[bytes] | None = None
    while True:
        with st.lock():
            job = st.load(jid)
            if job is None or job["state"] in ("finished", "error"):
                return 0
            if job["state"] == "queued" and time.time() >= job["eligible_at"]:
                sc, ou, er = spool_paths(st, jid)
                # Handed to the job; closed below once Popen has them.
                fo = open(job["live_stdout"] if job.get("live_stdout") else ou, "ab")  # noqa: SIM115
                if job["join"]:
                    fe: Any = subprocess.STDOUT
                else:
                    fe = open(job["live_stderr"] if job.get("live_stderr") else er, "ab")  # noqa: SIM115
                job["start_time"] = time.time()
                try:
                    proc = subprocess.Popen(
                        ["bash", sc],
                        cwd=job["cwd"],
                        env=job_env(st, job),
                        stdin=subprocess.DEVNULL,
                        stdout=fo,
                        stderr=fe,
                        start_new_session=True,
                    )
                except OSError as e:
                    fo.write((f"fakesched: cannot start job: {e}\n").encode())
                    job.update(state="finished", end_time=time.time(), exit_code=254)
                    st.save(job)
                    fo.close()
                    return 0
                fo.close()
                if fe is not subprocess.STDOUT:
                    fe.close()
                job.update(state="running", job_pgid=proc.pid)
                st.save(job)
                break
        time.sleep(0.05)

    assert proc is not None
    grace = env_float("FAKESCHED_KILL_GRACE", 2.0)
    last_check = 0.0
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.time()
        if now - last_check > 0.1:
            last_check = now
            job = st.load(jid)
            if (
                job
                and job.get("killed")
                and job.get("kill_time")
                and now - job["kill_time"] > grace
            ):
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.02)
    # Like a real execution daemon: nothing of the job may outlive it.
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    cpu = ru.ru_utime + ru.ru_stime
    end = time.time()

    with st.lock():
        job = st.load(jid)
        if job is None:
            return 0
        job.update(state="exiting", exit_code=exit_code, signal=sig, cpu=cpu, end_time=end)
        st.save(job)
    stage_out(st, job)
    with st.lock():
        job = st.load(jid)
        if job is not None:
            job["state"] = "finished"
            st.save(job)
    return 0


def stage_out(st: State, job: Job) -> None:
    """Deliver spooled stdout/stderr to the final paths (PBS, Torque, LSF)."""
    if not job["stage_out"]:
        return
    _, ou, er = spool_paths(st, job["id"])
    if st.flavour in LSF_LIKE:
        lsf_deliver(st, job, ou, er)
        return
    pairs = [(ou, job["stdout_path"])]
    if not job["join"]:
        pairs.append((er, job["stderr_path"]))
    for src, dst in pairs:
        if not dst:
            continue
        try:
            shutil.copyfile(src if os.path.exists(src) else os.devnull, dst)
        except OSError:
            # PBS would keep it in undelivered/ and mail the owner.
            undeliv = os.path.join(st.dir, "undelivered")
            os.makedirs(undeliv, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copyfile(src, os.path.join(undeliv, os.path.basename(dst)))


def kill_job(st: State, job: Job) -> str:
    """Kill JOB (caller holds the lock). Returns its previous state."""
    prev: str = job["state"]
    now = time.time()
    if prev in ("queued", "held", "error"):
        job.update(state="finished", killed=True, kill_time=now, end_time=now)
        st.save(job)
    elif prev == "running":
        job.update(state="exiting", killed=True, kill_time=now)
        st.save(job)
        if job.get("job_pgid"):
            with contextlib.suppress(OSError):
                os.killpg(job["job_pgid"], signal.SIGTERM)
    return prev


def wait_finished(st: State, jid: int, timeout: float | None = None) -> Job:
    t0 = time.time()
    while True:
        job = st.load(jid)
        if job is None or job["state"] == "finished":
            return job or {}
        if timeout is not None and time.time() - t0 > timeout:
            return job
        time.sleep(0.1)
        st.refresh()


def read_script(path: str | None) -> tuple[str | None, str | None]:
    """(text, error). PATH None = standard input."""
    if path is None:
        return sys.stdin.read(), None
    try:
        with open(path, errors="surrogateescape") as f:
            return f.read(), None
    except OSError as e:
        return None, e.strerror or str(e)


def valid_walltime(v: str) -> bool:
    return re.fullmatch(r"(\d+:){0,2}\d+(\.\d+)?", v) is not None


def submit_common(st: State, job: Job, script_text: str) -> Job:
    """Allocate the id, spool the script, record, start the supervisor."""
    with st.lock():
        jid = st.next_id()
        job["id"] = jid
        sc, _, _ = spool_paths(st, jid)
        with open(sc, "w", errors="surrogateescape") as f:
            f.write(script_text)
        job["script_text"] = script_text[:4096]
        job["env"] = {k: v for k, v in os.environ.items()}
        finalize_paths(st, job)
        st.save(job)
    if job["state"] in ("queued", "held"):
        start_supervisor(st, job)
    return st.load(jid) or job


def expand_path(path: str, job: Job, kind: str) -> str:
    """Resolve an -o/-e argument to a file path (relative to the job cwd)."""
    fl = job["flavour"]
    jid = job["id"]
    if fl in ("pbs", "torque") and ":" in path and not path.startswith("/"):
        path = path.split(":", 1)[1]  # host:path
    if fl in LSF_LIKE:
        path = path.replace("%J", str(jid)).replace("%I", "0")
    if fl == "sge":
        for var, val in (
            ("$JOB_ID", str(jid)),
            ("$JOB_NAME", job["name"]),
            ("$USER", job["user"]),
            ("$HOSTNAME", job["host"]),
            ("$TASK_ID", "undefined"),
            ("$HOME", os.environ.get("HOME", "/")),
        ):
            path = path.replace(var, val)
    if not os.path.isabs(path):
        path = os.path.join(job["cwd"], path)
    if os.path.isdir(path):
        if fl in LSF_LIKE:
            path = os.path.join(path, "%d.%s" % (jid, "out" if kind == "o" else "err"))
        else:
            path = os.path.join(path, "%s.%s%d" % (job["name"], kind, jid))
    return path


def finalize_paths(st: State, job: Job) -> None:
    fl = st.flavour
    jid = job["id"]
    o_arg = job.pop("o_arg", None)
    e_arg = job.pop("e_arg", None)
    if fl in ("pbs", "torque", "sge"):
        job["stdout_path"] = (
            expand_path(o_arg, job, "o")
            if o_arg
            else os.path.join(job["cwd"], "%s.o%d" % (job["name"], jid))
        )
        job["stderr_path"] = (
            expand_path(e_arg, job, "e")
            if e_arg
            else os.path.join(job["cwd"], "%s.e%d" % (job["name"], jid))
        )
        if job.get("join_eo"):
            job["stdout_path"] = job["stderr_path"]
        if fl == "sge":
            # Grid Engine writes the files live, straight into place.
            job["live_stdout"] = job["stdout_path"]
            job["live_stderr"] = None if job["join"] else job["stderr_path"]
            for p in (job["stdout_path"], job["stderr_path"]):
                if p and not os.path.isdir(os.path.dirname(p)):
                    # The real execd fails the job: state Eqw, never runs.
                    job["state"] = "error"
                    job["error_reason"] = (
                        f'can\'t open output file "{p}": No such file or directory'
                    )
    elif fl == "fugaku":
        # pjsub: <job name>.<job id>.out / .err in the submission directory
        job["stdout_path"] = (
            expand_path(o_arg, job, "o")
            if o_arg
            else os.path.join(job["cwd"], "%s.%d.out" % (job["name"], jid))
        )
        job["stderr_path"] = (
            expand_path(e_arg, job, "e")
            if e_arg
            else os.path.join(job["cwd"], "%s.%d.err" % (job["name"], jid))
        )
    else:
        job["stdout_path"] = expand_path(o_arg, job, "o") if o_arg else None
        job["stderr_path"] = expand_path(e_arg, job, "e") if e_arg else None
        # Without -e, LSF puts the job's stderr into the -o file.
        job["join"] = job["stderr_path"] is None


# ================================================================ PBS / Torque
PBS_QSUB_OPTS = {c: True for c in "aAcCejJklmMNopPqrRSuvW"}
PBS_QSUB_OPTS.update({c: False for c in "fhIVXz"})
TORQUE_QSUB_OPTS = {c: True for c in "aAbcCdDeFjklmMNopPqrSTtuvwW"}
TORQUE_QSUB_OPTS.update({c: False for c in "fhIVxXz"})

PBS_QSUB_USAGE = """usage: qsub [-a date_time] [-A account_string] [-c interval]
\t[-C directive_prefix] [-e path] [-f ] [-h ] [-I [-X]] [-j oe|eo] [-J X-Y[:Z]]
\t[-k keep] [-l resource_list] [-m mail_options] [-M user_list]
\t[-N jobname] [-o path] [-p priority] [-P project] [-q queue] [-r y|n]
\t[-R o|e|oe] [-S path] [-u user_list] [-W otherattributes=value...]
\t[-v variable_list] [-V ] [-z] [script | -- command [arg1 ...]]
       qsub --version"""
TORQUE_QSUB_USAGE = """usage: qsub [-a date_time] [-A account_string] [-b secs]
      [-c [ none | { enabled | periodic | shutdown |
      depth=<int> | dir=<path> | interval=<minutes>}... ]
      [-C directive_prefix] [-d path] [-D path]
      [-e path] [-h] [-I] [-j oe|eo|n] [-k {oe}] [-K keepalive]
      [-l resource_list] [-m n|{abe}] [-M user_list] [-N jobname]
      [-o path] [-p priority] [-P proxy_user [-J <jobid]]
      [-q queue] [-r y|n] [-S path] [-t number_to_submit] [-T type]  [-u user_list]
      [-w] path
      [-W additional_attributes] [-v variable_list] [-V] [-x] [-X] [-z] [script]"""

PBS_KNOWN_RES = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*$")


def pbs_full_id(flavour: str, jid: int) -> str:
    return "%d.%s" % (jid, SERVER[flavour])


def pbs_parse_id(flavour: str, raw: str) -> tuple[int | None, str]:
    """(numeric id or None if malformed, display form)."""
    m = re.fullmatch(r"(\d+)(?:\[\d*\])?(?:\.(.+))?", raw)
    if not m:
        return None, raw
    server = m.group(2)
    if server and server.split(".")[0] != SERVER[flavour]:
        return -1, raw  # another server: never ours
    return int(m.group(1)), f"{m.group(1)}.{SERVER[flavour]}"


def pbs_transient(flavour: str, tool: str) -> int:
    srv = SERVER[flavour]
    if flavour == "pbs":
        err("Connection refused")
        err(f"{tool}: cannot connect to server {srv} (errno=111)")
        return 2
    err(f"Error communicating with {srv}(127.0.0.1)")
    err(f"Cannot connect to specified server host '{srv}'.")
    err(f"{tool}: cannot connect to server {srv} (errno=111) Connection refused")
    return 111


def pbs_qsub(st: State, argv: list[str]) -> int:
    fl = st.flavour
    spec = PBS_QSUB_OPTS if fl == "pbs" else TORQUE_QSUB_OPTS
    usage = PBS_QSUB_USAGE if fl == "pbs" else TORQUE_QSUB_USAGE

    def bad_option(e: OptError) -> int:
        if e.kind == "unknown":
            err(f"qsub: invalid option -- '{e.opt}'")
        else:
            err(f"qsub: option requires an argument -- '{e.opt}'")
        err(usage)
        return 2

    if argv[:1] == ["--version"]:
        out("pbs_version = 22.05.11" if fl == "pbs" else "Version: 6.1.3")
        return 0
    try:
        cli, rest = getopt_short(argv, spec)
    except OptError as e:
        return bad_option(e)
    script = rest[0] if rest else None
    text, oserr = read_script(script)
    if text is None:
        err(
            f"qsub: script file:: {oserr}"
            if fl == "pbs"
            else f"qsub: script file '{script}' cannot be loaded - {oserr}"
        )
        return 2 if fl == "pbs" else 1
    prefix = "#PBS"
    for k, v in cli:
        if k == "C":
            prefix = v
    try:
        dirs, _ = getopt_short(directive_tokens(text, prefix), spec)
    except OptError as e:
        return bad_option(e)
    except ValueError:
        err("qsub: directive error: {}".format("unbalanced quotes in a %s line") % prefix)
        return 2
    opts = dirs + cli  # command line wins

    job = new_job(
        st,
        script=os.path.abspath(script) if script else "",
        name=os.path.basename(script) if script else "STDIN",
        submit_args=" ".join(shlex.quote(a) for a in argv),
    )
    for k, v in opts:
        if k == "N":
            if not re.fullmatch(r"[^\s@:/+\\'\"]{1,236}", v) or (
                fl == "torque" and not v[0].isalnum()
            ):
                err("qsub: illegal -N value")
                return 2
            job["name"] = v
        elif k == "q":
            job["queue"] = v.split("@")[0] or DEFAULT_QUEUE[fl]
            job["queue_explicit"] = True
        elif k == "o":
            job["o_arg"] = v
        elif k == "e":
            job["e_arg"] = v
        elif k == "j":
            if v not in ("oe", "eo", "n"):
                err("qsub: illegal -j value")
                if fl == "pbs":
                    err(usage)
                return 2
            job["join"] = v in ("oe", "eo")
            job["join_eo"] = v == "eo"
        elif k == "h":
            job["state"] = "held"
        elif k == "l":
            for item in v.split(","):
                key, eq, val = item.partition("=")
                if not eq or not PBS_KNOWN_RES.match(key) or not val:
                    err("qsub: illegal -l value")
                    if fl == "pbs":
                        err(usage)
                    return 2
                if key in ("walltime", "cput") and not valid_walltime(val):
                    err("qsub: illegal -l value")
                    return 2
                job["resources"][key] = val
        elif (k == "J" and fl == "pbs") or (k == "t" and fl == "torque"):
            err("qsub: fakesched does not implement job arrays")
            return 2
        elif k == "d" or k == "w":
            job["cwd"] = os.path.abspath(v)
        elif k == "r" and v not in ("y", "n"):
            err("qsub: illegal -r value")
            return 2
    job["slots"] = pbs_slots(job["resources"])
    if st.inject_failure("submit"):
        return pbs_transient(fl, "qsub")
    if job["queue"] == BAD_QUEUE:
        if fl == "pbs":
            err("qsub: Unknown queue")
        else:
            err("qsub: submit error (Unknown queue MSG=requested queue not found)")
        return 170  # PBSE_UNKQUE 15018 & 0xff
    job = submit_common(st, job, text)
    out(pbs_full_id(fl, job["id"]))
    return 0


def pbs_slots(res: dict[str, str]) -> int:
    n = 1
    for key in ("ncpus", "ppn", "procs"):
        if key in res and res[key].isdigit():
            n = int(res[key])
    m = re.search(r"ncpus=(\d+)", res.get("select", ""))
    if m:
        n = int(m.group(1))
    m = re.search(r"ppn=(\d+)", res.get("nodes", ""))
    if m:
        n = int(m.group(1))
    return max(1, n)


def pbs_state_letter(fl: str, job: Job) -> str:
    if job.get("display_state"):  # synthetic fixtures only
        return str(job["display_state"])
    s = job["state"]
    if s == "queued":
        return "Q"
    if s in ("held", "error"):
        return "H"
    if s == "running":
        return "R"
    if s == "exiting":
        return "E"
    return "F" if fl == "pbs" else "C"


def pbs_exit_status(job: Job) -> int | None:
    if job.get("signal") is not None:
        return 256 + int(job["signal"])
    if job.get("exit_code") is not None:
        return int(job["exit_code"])
    if job.get("killed") and job.get("start_time") is None:
        return None
    return None


def pbs_time_use(job: Job) -> str:
    if job["state"] in ("queued", "held", "error") and not job.get("cpu"):
        return "0"
    cpu = job.get("cpu") or 0.0
    return hms(cpu)


def pbs_row(fl: str, job: Job) -> str:
    jid = pbs_full_id(fl, job["id"])
    name = job["name"]
    user = job["user"]
    queue = job["queue"]
    if fl == "pbs":
        # OpenPBS qstat.c: "%-17s %-16s %-16s  %8s %1s %-16s"; ids longer
        # than 17 end in '*', names of 16+ characters are cut to 15.
        if len(jid) > 17:
            jid = jid[:16] + "*"
        if len(name) >= 16:
            name = name[:15]
        return "%-17s %-16s %-16s  %8s %1s %-16s" % (
            jid,
            name,
            user[:16],
            pbs_time_use(job)[:8],
            pbs_state_letter(fl, job),
            queue[:16],
        )
    # Torque qstat.c: "%-25s %-16s %-15s %8s %1s %-15s", fields cut to width.
    return "%-25s %-16s %-15s %8s %1s %-15s" % (
        jid[:25],
        name[:16],
        user[:15],
        pbs_time_use(job)[:8],
        pbs_state_letter(fl, job),
        queue[:15],
    )


PBS_HEADER = (
    "Job id            Name             User              Time Use S Queue\n"
    "----------------  ---------------- ----------------  -------- - -----"
)
TORQUE_HEADER = (
    "Job ID                    Name             User            Time Use S Queue\n"
    "------------------------- ---------------- --------------- -------- - -----"
)


def pbs_full_lines(fl: str, job: Job) -> list[str]:
    full = pbs_full_id(fl, job["id"])
    host = job["host"]
    lines = [
        f"Job Id: {full}",
        "    Job_Name = {}".format(job["name"]),
        "    Job_Owner = {}@{}".format(job["user"], host),
    ]
    if job["state"] not in ("queued", "held", "error"):
        lines += [
            "    resources_used.cpupercent = 0",
            "    resources_used.cput = {}".format(hms(job.get("cpu") or 0)),
            "    resources_used.mem = 0kb",
            "    resources_used.ncpus = %d" % job["slots"],
            "    resources_used.vmem = 0kb",
            "    resources_used.walltime = {}".format(
                hms((job.get("end_time") or time.time()) - (job.get("start_time") or time.time()))
            ),
        ]
    lines += [
        f"    job_state = {pbs_state_letter(fl, job)}",
        "    queue = {}".format(job["queue"]),
        f"    server = {SERVER[fl]}",
        "    Checkpoint = u",
        "    ctime = {}".format(ctime(job["submit_time"])),
        "    Error_Path = {}:{}".format(host, job["stderr_path"]),
        "    Hold_Types = %s" % ("u" if job["state"] == "held" else "n"),
        "    Join_Path = %s" % (("eo" if job.get("join_eo") else "oe") if job["join"] else "n"),
        "    Keep_Files = n",
        "    Mail_Points = a",
        "    mtime = {}".format(ctime(job.get("mtime") or job["submit_time"])),
        "    Output_Path = {}:{}".format(host, job["stdout_path"]),
        "    Priority = 0",
        "    qtime = {}".format(ctime(job["submit_time"])),
        "    Rerunable = True",
        "    Resource_List.ncpus = %d" % job["slots"],
        "    Resource_List.nodect = 1",
    ]
    for k, v in sorted(job["resources"].items()):
        if k != "ncpus":
            lines.append(f"    Resource_List.{k} = {v}")
    if job.get("start_time"):
        lines += [
            "    stime = {}".format(ctime(job["start_time"])),
            "    session_id = %d" % (job.get("job_pgid") or 0),
            f"    exec_host = {host}/0",
        ]
        if fl == "pbs":
            lines.append("    exec_vnode = (%s:ncpus=%d)" % (host, job["slots"]))
    lines += [
        "    Variable_List = PBS_O_HOME={},PBS_O_LOGNAME={},PBS_O_WORKDIR={},PBS_O_HOST={},PBS_O_QUEUE={}".format(
            job["env"].get("HOME", "/"), job["user"], job["cwd"], host, job["queue"]
        ),
        "    etime = {}".format(ctime(job["submit_time"])),
    ]
    if job["state"] == "finished":
        es = pbs_exit_status(job)
        if es is not None:
            lines.append("    %s = %d" % ("Exit_status" if fl == "pbs" else "exit_status", es))
        if fl == "pbs":
            lines.append("    history_timestamp = %d" % int(job.get("end_time") or 0))
    if job.get("submit_args"):
        lines.append("    Submit_arguments = {}".format(job["submit_args"]))
    if fl == "torque" and job["state"] == "finished":
        lines.append("    comp_time = %d" % int(job.get("end_time") or 0))
    return lines


def torque_xml(jobs: list[Job]) -> str:
    from xml.sax.saxutils import escape

    parts = ["<Data>"]
    for job in jobs:
        parts.append(
            "<Job><Job_Id>{}</Job_Id><Job_Name>{}</Job_Name><Job_Owner>{}@{}</Job_Owner>"
            "<job_state>{}</job_state><queue>{}</queue><server>{}</server>".format(
                pbs_full_id("torque", job["id"]),
                escape(job["name"]),
                job["user"],
                job["host"],
                pbs_state_letter("torque", job),
                escape(job["queue"]),
                SERVER["torque"],
            )
        )
        es = pbs_exit_status(job) if job["state"] == "finished" else None
        if es is not None:
            parts.append("<exit_status>%d</exit_status>" % es)
        parts.append("</Job>")
    parts.append("</Data>")
    return "".join(parts)


def pbs_json(jobs: list[Job]) -> str:
    """PBS Pro ``qstat -f -F json``: the ``Jobs`` key is absent when no job matched (as
    on NCI Gadi, see the real fixtures)."""
    doc: dict[str, Any] = {
        "timestamp": int(time.time()),
        "pbs_version": "19.1.3",
        "pbs_server": SERVER["pbs"],
    }
    if jobs:
        doc["Jobs"] = {}
        for job in jobs:
            attrs: dict[str, Any] = {
                "Job_Name": job["name"],
                "Job_Owner": "{}@{}".format(job["user"], job["host"]),
                "job_state": pbs_state_letter("pbs", job),
                "queue": job["queue"],
                "server": SERVER["pbs"],
            }
            es = pbs_exit_status(job) if job["state"] == "finished" else None
            if es is not None:
                attrs["Exit_status"] = es
            doc["Jobs"][pbs_full_id("pbs", job["id"])] = attrs
    return json.dumps(doc, indent=4)


def pbs_qselect(st: State, argv: list[str]) -> int:
    """``qselect [-x] [-N name] [-u user]``: the ids of the matching jobs, one a line
    (PBS Pro's ``-x`` adds finished jobs from the history; Torque has no ``-x``)."""
    fl = st.flavour
    spec = {"N": True, "u": True, "s": True}
    if fl == "pbs":
        spec["x"] = False
    try:
        opts, _ = getopt_short(argv, spec)
    except OptError as e:
        err(f"qselect: invalid option -- '{e.opt}'")
        return 2
    names = [v for k, v in opts if k == "N"]
    users = [v for k, v in opts if k == "u"]
    history = any(k == "x" for k, _ in opts)
    if st.inject_failure("status"):
        return pbs_transient(fl, "qselect")
    st.refresh()
    for job in st.all_jobs():
        if (names and job["name"] not in names) or (users and job["user"] not in users):
            continue
        if job["state"] == "finished" and not (
            (history or fl == "torque") and visible_finished(job)
        ):
            continue
        out(pbs_full_id(fl, job["id"]))
    return 0


def pbs_qstat(st: State, argv: list[str]) -> int:
    fl = st.flavour
    spec = {c: False for c in ("xfHtJiarsnw1GM" if fl == "pbs" else "fairnsx1eGMRl")}
    spec["u"] = True
    if fl == "pbs":
        spec["F"] = True
    if fl == "torque":
        spec["x"] = False
    try:
        opts, ids = getopt_short(argv, spec)
    except OptError as e:
        err(
            f"qstat: invalid option -- '{e.opt}'"
            if e.kind == "unknown"
            else f"qstat: option requires an argument -- '{e.opt}'"
        )
        if fl == "pbs":
            err(
                "usage: \n    qstat [-f] [-J] [-p] [-t] [-x] [-E] [-F format] [-D delim] [ job_identifier... | destination... ]"
            )
        else:
            err(
                "usage: \nqstat [-f [-1]] [-W site_specific] [-x] [ job_identifier... | destination... ]"
            )
        return 2
    flags = {k for k, _ in opts}
    users = [v for k, v in opts if k == "u"]
    history = fl == "pbs" and ("x" in flags or "H" in flags)
    full = "f" in flags
    xml = fl == "torque" and "x" in flags
    if st.inject_failure("status"):
        return pbs_transient(fl, "qstat")
    st.refresh()
    rc = 0
    shown: list[Job] = []
    job: Job | None
    with st.lock():
        if not ids:
            for each in st.all_jobs():
                if users and each["user"] not in users:
                    continue
                if each["state"] == "finished":
                    if fl == "pbs" and not history:
                        continue
                    if not visible_finished(each):
                        continue
                shown.append(each)
        else:
            for raw in ids:
                num, disp = pbs_parse_id(fl, raw)
                if num is None:
                    err(f"qstat: illegally formed job identifier: {raw}")
                    rc = 1
                    continue
                job = st.load(num) if num > 0 else None
                if job is None or (job["state"] == "finished" and not visible_finished(job)):
                    err("qstat: Unknown Job Id {}{}".format("" if fl == "pbs" else "Error ", disp))
                    rc = 153
                    continue
                if fl == "pbs" and job["state"] == "finished" and not history:
                    err(
                        f"qstat: {disp} Job has finished, use -x or -H to obtain historical job information"
                    )
                    rc = 35
                    continue
                shown.append(job)
    if xml:
        if shown:
            out(torque_xml(shown))
        return rc
    if fl == "pbs" and full and any(k == "F" and v == "json" for k, v in opts):
        out(pbs_json(shown))
        return rc
    if full:
        for each in shown:
            for line in pbs_full_lines(fl, each):
                out(line)
            out()
        return rc
    if shown:
        out(PBS_HEADER if fl == "pbs" else TORQUE_HEADER)
        for each in shown:
            out(pbs_row(fl, each))
    return rc


def pbs_qdel(st: State, argv: list[str]) -> int:
    fl = st.flavour
    try:
        _, ids = getopt_short(
            argv,
            {
                "W": True,
                "x": False,
                "p": False,
                "c": False,
                "a": False,
                "m": True,
                "t": True,
                "b": True,
            },
        )
    except OptError as e:
        err(f"qdel: invalid option -- '{e.opt}'")
        err("usage: qdel [-W force|suppress_email=X] [-x] [-m message] job_identifier...")
        return 2
    if not ids:
        err("usage: qdel [-W force|suppress_email=X] [-x] [-m message] job_identifier...")
        return 2
    if st.inject_failure("kill"):
        return pbs_transient(fl, "qdel")
    st.refresh()
    rc = 0
    with st.lock():
        for raw in ids:
            num, disp = pbs_parse_id(fl, raw)
            if num is None:
                err(f"qdel: illegally formed job identifier: {raw}")
                rc = 1
                continue
            job = st.load(num) if num > 0 else None
            if job is None or (job["state"] == "finished" and not visible_finished(job)):
                err("qdel: Unknown Job Id {}{}".format("" if fl == "pbs" else "Error ", disp))
                rc = 153
                continue
            if job["state"] == "finished":
                if fl == "pbs":
                    err(f"qdel: Job has finished {disp}")
                    rc = 35
                else:
                    err(
                        f"qdel: Request invalid for state of job MSG=invalid state for job - COMPLETE {disp}"
                    )
                    rc = 179
                continue
            if job["state"] == "exiting":
                continue  # already going away: qdel is silent
            kill_job(st, job)
    return rc


# ================================================================ Grid Engine
SGE_QSUB_OPTS = {
    "-a": 1,
    "-ac": 1,
    "-ar": 1,
    "-A": 1,
    "-b": 1,
    "-binding": 1,
    "-c": 1,
    "-ckpt": 1,
    "-clear": 0,
    "-cwd": 0,
    "-C": 1,
    "-dc": 1,
    "-dl": 1,
    "-e": 1,
    "-hard": 0,
    "-h": 0,
    "-hold_jid": 1,
    "-hold_jid_ad": 1,
    "-i": 1,
    "-j": 1,
    "-js": 1,
    "-jsv": 1,
    "-l": 1,
    "-m": 1,
    "-M": 1,
    "-masterq": 1,
    "-notify": 0,
    "-now": 1,
    "-N": 1,
    "-o": 1,
    "-P": 1,
    "-p": 1,
    "-pe": 2,
    "-q": 1,
    "-R": 1,
    "-r": 1,
    "-sc": 1,
    "-shell": 1,
    "-soft": 0,
    "-sync": 1,
    "-S": 1,
    "-t": 1,
    "-tc": 1,
    "-terse": 0,
    "-v": 1,
    "-verify": 0,
    "-V": 0,
    "-w": 1,
    "-wd": 1,
    "-@": 1,
}


def sge_master() -> str:
    return os.environ.get("FAKESCHED_SGE_MASTER") or hostname()


def sge_qsub(st: State, argv: list[str]) -> int:
    try:
        cli, rest = getopt_long(argv, SGE_QSUB_OPTS)
    except OptError as e:
        if e.kind == "unknown":
            err(f'qsub: invalid option argument "{e.opt}"')
            return 2
        if e.opt == "-pe":
            err("qsub: ERROR! -pe option must have range as 2nd argument")
        else:
            err(f"qsub: ERROR! {e.opt} option must have argument")
        return 2
    binary = any(k == "-b" and v in ("y", "yes") for k, v in cli)
    text: str | None
    if binary:
        if not rest:
            err("qsub: ERROR! Missing command for binary job")
            return 2
        text = " ".join(shlex.quote(a) for a in rest) + "\n"
        script: str | None = rest[0]
    else:
        script = rest[0] if rest else None
        text, oserr = read_script(script)
        if text is None:
            err(f"Unable to read script file because of error: error opening {script}: {oserr}")
            return 14
    prefix = "#$"
    for k, v in cli:
        if k == "-C":
            prefix = v
    dirs: list[tuple[str, Any]] = []
    if not binary:
        try:
            dirs, _ = getopt_long(directive_tokens(text, prefix, whole_script=True), SGE_QSUB_OPTS)
        except OptError as e:
            if e.kind == "unknown":
                err(
                    f'Unable to read script file because of error: invalid option argument "{e.opt}"'
                )
            elif e.opt == "-pe":
                err(
                    "Unable to read script file because of error: -pe option must have range as 2nd argument"
                )
            else:
                err(
                    f"Unable to read script file because of error: {e.opt} option must have argument"
                )
            return 2
        except ValueError:
            err(f"Unable to read script file because of error: unmatched quote in a {prefix} line")
            return 2
    seen: set[str] = set()
    for k, _ in dirs:
        if k in ("-N", "-o", "-e", "-j", "-S", "-wd", "-q", "-pe") and k in seen:
            err(f'warning: "{k}" option has already been set, overriding previous setting')
        seen.add(k)
    opts = dirs + cli
    name = os.path.basename(script) if script else "STDIN"
    job = new_job(
        st,
        name=name,
        stage_out=False,
        script=os.path.abspath(script) if script and not binary else "",
        submit_args=" ".join(shlex.quote(a) for a in argv),
    )
    terse = sync = False
    server_error = None
    for k, v in opts:
        if k == "-N":
            if "/" in v:
                err("qsub: argument to -N option must not contain / ")
                return 2
            if v[:1].isdigit():
                server_error = (
                    f'denied: "{v}" is not a valid object name (cannot start with a digit)'
                )
            job["name"] = v
        elif k == "-q":
            job["queue"] = v.split("@")[0]
            job["queue_explicit"] = True
        elif k == "-o":
            job["o_arg"] = v.split(":", 1)[1] if v.startswith(":") else v
        elif k == "-e":
            job["e_arg"] = v.split(":", 1)[1] if v.startswith(":") else v
        elif k == "-j":
            if v not in ("y", "yes", "n", "no"):
                err(f'qsub: invalid option argument "-j {v}"')
                return 7
            job["join"] = v in ("y", "yes")
        elif k == "-h":
            job["state"] = "held"
        elif k == "-cwd":
            job["cwd"] = os.getcwd()
        elif k == "-wd":
            job["cwd"] = os.path.abspath(v)
        elif k == "-terse":
            terse = True
        elif k == "-sync":
            sync = v in ("y", "yes")
        elif k == "-pe":
            pe, rng = v
            if not re.fullmatch(r"\d+(-\d*)?|-\d+", rng):
                err("qsub: Numerical value invalid!")
                err(f'The initial portion of string "{rng}" contains no decimal number')
                return 7
            if pe == BAD_PE or pe not in KNOWN_PES:
                server_error = server_error or (
                    f'job rejected: the requested parallel environment "{pe}" does not exist'
                )
            job["pe"] = pe
            job["slots"] = int(re.findall(r"\d+", rng)[-1])
        elif k == "-l":
            for item in v.split(","):
                key, _, val = item.partition("=")
                if key in ("h_rt", "s_rt", "h_cpu", "s_cpu") and not re.fullmatch(
                    r"\d+|\d+:\d+:\d+|INFINITY", val
                ):
                    server_error = server_error or f'attribute "{key}" is not a time value'
                job["resources"][key] = val
    if st.inject_failure("submit"):
        err("error: commlib error: got select error (Connection refused)")
        err(
            f'Unable to run job: unable to send message to qmaster using port 6444 on host "{sge_master()}": got send error'
        )
        err("Exiting.")
        return 1
    if job["queue"] == BAD_QUEUE:
        server_error = (
            server_error
            or 'Job was rejected because job requests unknown queue "{}"'.format(job["queue"])
        )
    if server_error:
        st.next_id()  # the qmaster used up a job number before rejecting it
        err(f"Unable to run job: {server_error}")
        err("Exiting.")
        return 1
    job = submit_common(st, job, text)
    if terse:
        out(str(job["id"]))
    else:
        out('Your job %d ("%s") has been submitted' % (job["id"], job["name"]))
    if not sync:
        return 0
    sys.stdout.flush()
    done = wait_finished(st, job["id"])
    # Real SGE 8.1.9 prints this line on stderr.
    if done.get("killed"):
        err("Job %d was deleted." % job["id"])  # hedged: wording not verified
        return 1
    code = sge_exit_status(done)
    err("Job %d exited with exit code %d." % (job["id"], code))
    return code


def sge_exit_status(job: Job) -> int:
    if job.get("signal") is not None:
        return 128 + int(job["signal"])
    return int(job.get("exit_code") or 0)


SGE_HEADER = (
    "job-ID  prior   name       user         state submit/start at     queue"
    "                          slots ja-task-ID \n" + "-" * 113
)


def sge_state(job: Job) -> str:
    if job.get("display_state"):  # synthetic fixtures only
        return str(job["display_state"])
    s = job["state"]
    if s == "queued":
        return "qw"
    if s == "held":
        return "hqw"
    if s == "error":
        return "Eqw"
    if s == "exiting":
        return "dr"
    if s == "running":
        return "t" if time.time() - (job.get("start_time") or 0) < 0.5 else "r"
    return "?"


def sge_row(job: Job) -> str:
    state = sge_state(job)
    running = "q" not in state  # pending states: qw hqw Eqw hRwq Rq ...
    when = job.get("start_time") if running else job["submit_time"]
    queue = "{}@{}".format(job["queue"], job["host"]) if running else ""
    if state == "hqw":
        prio = 0.0
    elif running or time.time() - job["submit_time"] > 1:
        prio = 0.5
    else:
        prio = 0.0
    date = time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(when))
    return "%7d %7.5f %-10.10s %-12.12s %-5s %s %-30.30s %5d %-7s" % (
        job["id"],
        prio,
        job["name"],
        job["user"],
        state,
        date,
        queue,
        job["slots"],
        "",
    )


def sge_xml(jobs: list[Job]) -> str:
    """``qstat -xml``: running jobs under ``queue_info``, pending ones under
    ``job_info``, the layout recorded from real SGE 8.1.9 (fixture qstat_xml_mixed)."""
    from xml.sax.saxutils import escape

    def entry(job: Job) -> list[str]:
        state = sge_state(job)
        running = "q" not in state
        when = job.get("start_time") if running else job["submit_time"]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when))
        return [
            '    <job_list state="%s">' % ("running" if running else "pending"),
            "      <JB_job_number>%d</JB_job_number>" % job["id"],
            "      <JAT_prio>0.50000</JAT_prio>",
            "      <JB_name>%s</JB_name>" % escape(job["name"]),
            "      <JB_owner>%s</JB_owner>" % escape(job["user"]),
            "      <state>%s</state>" % state,
            "      <%s>%s</%s>"
            % (
                "JAT_start_time" if running else "JB_submission_time",
                stamp,
                "JAT_start_time" if running else "JB_submission_time",
            ),
            "      <queue_name>%s</queue_name>"
            % ("{}@{}".format(job["queue"], job["host"]) if running else ""),
            "      <slots>%d</slots>" % job["slots"],
            "    </job_list>",
        ]

    running = [j for j in jobs if "q" not in sge_state(j)]
    pending = [j for j in jobs if "q" in sge_state(j)]
    lines = [
        "<?xml version='1.0'?>",
        '<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/'
        'resources/schemas/qstat/qstat.xsd">',
        "  <queue_info>",
        *[line for job in running for line in entry(job)],
        "  </queue_info>",
        "  <job_info>",
        *[line for job in pending for line in entry(job)],
        "  </job_info>",
        "</job_info>",
    ]
    return "\n".join(lines)


def sge_qstat(st: State, argv: list[str]) -> int:
    try:
        opts, rest = getopt_long(
            argv,
            {
                "-u": 1,
                "-j": 1,
                "-s": 1,
                "-f": 0,
                "-r": 0,
                "-ext": 0,
                "-pri": 0,
                "-urg": 0,
                "-g": 1,
                "-q": 1,
                "-U": 1,
                "-xml": 0,
            },
        )
    except OptError as e:
        err(f'error: ERROR! invalid option argument "{e.opt}"')
        return 1
    if rest:
        err(f'error: ERROR! invalid option argument "{rest[0]}"')
        return 1
    if st.inject_failure("status"):
        err("error: commlib error: got select error (Connection refused)")
        err(
            f'error: unable to send message to qmaster using port 6444 on host "{sge_master()}": got send error'
        )
        return 1
    st.refresh()
    users = [username()]
    detail = None
    for k, v in opts:
        if k == "-u":
            users = v.split(",")
        elif k == "-j":
            detail = v
    jobs = [j for j in st.all_jobs() if j["state"] != "finished"]
    if detail is not None:
        wanted = detail.split(",")
        found = [j for j in jobs if str(j["id"]) in wanted]
        missing = [w for w in wanted if w not in {str(j["id"]) for j in found}]
        for job in found:
            out("=" * 62)
            out("job_number:                 %d" % job["id"])
            out("submission_time:            {}".format(ctime(job["submit_time"])))
            out("owner:                      {}".format(job["user"]))
            out("sge_o_workdir:              {}".format(job["cwd"]))
            out("cwd:                        {}".format(job["cwd"]))
            out("job_name:                   {}".format(job["name"]))
            if job.get("error_reason"):
                out(
                    "error reason          1:      %s [%d:%d]: error: %s"
                    % (
                        time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(job["submit_time"])),
                        os.getuid(),
                        os.getpid(),
                        job["error_reason"],
                    )
                )
            out("scheduling info:            There are no messages available")
        if missing:
            err("Following jobs do not exist: ")
            err(",".join(missing))
            return 1
        return 0
    shown = [j for j in jobs if "*" in users or j["user"] in users]
    order = {"running": 0, "exiting": 0, "queued": 1, "error": 2, "held": 3}
    shown.sort(key=lambda j: (order.get(j["state"], 9), j["id"]))
    if any(k == "-xml" for k, _ in opts):
        out(sge_xml(shown))
        return 0
    if not shown:
        return 0
    out(SGE_HEADER)
    for job in shown:
        out(sge_row(job))
    return 0


def sge_qdel(st: State, argv: list[str]) -> int:
    force = False
    users: list[str] = []
    ids: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-f":
            force = True
        elif a == "-u" and i + 1 < len(argv):
            users = argv[i + 1].split(",")
            i += 1
        elif a.startswith("-"):
            err(f'error: ERROR! invalid option argument "{a}"')
            return 1
        else:
            ids += [x for x in a.split(",") if x]
        i += 1
    if not ids and not users:
        err("usage: qdel [options] job_task_list")
        return 1
    if st.inject_failure("kill"):
        err("error: commlib error: got select error (Connection refused)")
        out(
            f'unable to send message to qmaster using port 6444 on host "{sge_master()}": got send error'
        )
        return 1
    st.refresh()
    me = username()
    rc = 0
    with st.lock():
        targets: list[tuple[str, Job | None]] = []
        for raw in ids:
            job = st.load(int(raw)) if raw.isdigit() else None
            if job is not None and job["state"] == "finished":
                job = None
            targets.append((raw, job))
        for job in st.all_jobs():
            if users and job["state"] != "finished" and ("*" in users or job["user"] in users):
                targets.append((str(job["id"]), job))
        for raw, job in targets:
            if job is None:
                if raw.isdigit():
                    out(f'denied: job "{raw}" does not exist')
                else:
                    out(f"The job {raw} of user(s) {me} does not exist")
                rc = 1
                continue
            prev = job["state"]
            if prev == "exiting" and not force:
                out("%s has registered the job %d for deletion" % (me, job["id"]))
                continue
            kill_job(st, job)
            if force:
                out("%s forced the deletion of job %d" % (me, job["id"]))
            elif prev == "running":
                out("%s has registered the job %d for deletion" % (me, job["id"]))
            else:
                out("%s has deleted job %d" % (me, job["id"]))
    return rc


# ================================================================ LSF
LSF_BSUB_OPTS = {
    "-a": 1,
    "-app": 1,
    "-b": 1,
    "-B": 0,
    "-c": 1,
    "-C": 1,
    "-cwd": 1,
    "-D": 1,
    "-e": 1,
    "-eo": 1,
    "-E": 1,
    "-Ep": 1,
    "-f": 1,
    "-F": 1,
    "-g": 1,
    "-G": 1,
    "-gpu": 1,
    "-gpgpu": 1,  # JH UniScheduler
    "-H": 0,
    "-i": 1,
    "-is": 1,
    "-I": 0,
    "-Ip": 0,
    "-Is": 0,
    "-J": 1,
    "-Jd": 1,
    "-k": 1,
    "-K": 0,
    "-L": 1,
    "-Lp": 1,
    "-m": 1,
    "-M": 1,
    "-n": 1,
    "-N": 0,
    "-o": 1,
    "-oo": 1,
    "-outdir": 1,
    "-p": 1,
    "-P": 1,
    "-q": 1,
    "-Q": 1,
    "-r": 0,
    "-rn": 0,
    "-R": 1,
    "-S": 1,
    "-sla": 1,
    "-sp": 1,
    "-T": 1,
    "-u": 1,
    "-U": 1,
    "-ul": 0,
    "-v": 1,
    "-w": 1,
    "-W": 1,
    "-We": 1,
    "-x": 0,
    "-XF": 0,
    "-Zs": 0,
}
LSF_BSUB_USAGE = (
    "Usage: bsub [-h] [-V] [-H] [-x] [-r | -rn] [-N] [-B] [-I | -Ip | -Is | -K]\n"
    "            [-q queue_name ...] [-m host_name[@cluster_name]...]\n"
    "            [-n min_processors[,max_processors]] [-R res_req] [-J job_name]\n"
    "            [-i input_file | -is input_file] [-o output_file | -oo output_file]\n"
    "            [-e error_file | -eo error_file] [-W [hour:]minute[/host_name]]\n"
    "            [-cwd current_working_dir] [command [argument ...]]"
)


def lsf_transient(kind: str) -> int:
    if kind == "submit":
        err("LSF daemon (LIM) not responding ... still trying")
        err("LSF daemon (LIM) not responding ... still trying")
        err("Failed in an LSF library call: LIM is down; try later. Job not submitted.")
    else:
        err("LSF is processing your request. Please wait ...")
        err("LSF is processing your request. Please wait ...")
        err("LSF is processing your request. Please wait ...")
    return 255


def lsf_bsub(st: State, argv: list[str]) -> int:
    prefix = "#JSUB" if st.flavour == "jh" else "#BSUB"
    if argv[:1] == ["-V"]:
        err("IBM Spectrum LSF 10.1.0.13, Jun 30 2022")
        return 0
    try:
        cli, rest = getopt_long(argv, LSF_BSUB_OPTS)
    except OptError as e:
        if e.kind == "unknown":
            err("bsub: illegal option -- {}".format(e.opt.lstrip("-")))
        else:
            err("bsub: option requires an argument -- {}".format(e.opt.lstrip("-")))
        err(LSF_BSUB_USAGE)
        return 255
    if rest:
        text = " ".join(rest) + "\n"
        command = " ".join(rest)
    else:
        text = sys.stdin.read()
        command = text
    try:
        dirs, _ = (
            getopt_long(directive_tokens(text, prefix), LSF_BSUB_OPTS) if not rest else ([], [])
        )
    except OptError as e:
        err(
            "bsub: illegal option -- {}".format(e.opt.lstrip("-"))
            if e.kind == "unknown"
            else "bsub: option requires an argument -- {}".format(e.opt.lstrip("-"))
        )
        err(LSF_BSUB_USAGE)
        return 255
    except ValueError:
        err("bsub: unmatched quote in a #BSUB line. Job not submitted.")
        return 255
    opts = dirs + cli
    # LSF records the command (the whole script for `bsub < script`); the
    # default job name is that command.
    job = new_job(
        st,
        name=command.strip().replace("\n", ";")[:4094] or "STDIN",
        command=command,
        submit_args=" ".join(shlex.quote(a) for a in argv),
    )
    wait = False
    for k, v in opts:
        if k == "-J":
            job["name"] = v
        elif k == "-q":
            job["queue"] = v.split()[0] if v.split() else v
            job["queue_explicit"] = True
        elif k in ("-o", "-oo"):
            job["o_arg"] = v
            job["o_overwrite"] = k == "-oo"
        elif k in ("-e", "-eo"):
            job["e_arg"] = v
            job["e_overwrite"] = k == "-eo"
        elif k == "-H":
            job["state"] = "held"
        elif k == "-K":
            wait = True
        elif k == "-cwd":
            job["cwd"] = os.path.abspath(v)
        elif k == "-n":
            if not re.fullmatch(r"\d+(,\d+)?", v) or int(v.split(",")[0]) < 1:
                err(f"{v}: Bad argument for option -n. Job not submitted.")
                return 255
            job["slots"] = int(v.split(",")[0])
        elif k == "-W":
            if not re.fullmatch(r"(\d+:)?\d+(/\S+)?", v):
                err(f"{v}: Bad RUNLIMIT specification. Job not submitted.")
                return 255
        elif k == "-R":
            m = re.search(r"span\[ptile=(\d+)\]", v)
            if m:
                job["ptile"] = int(m.group(1))
        elif k == "-M" and not re.fullmatch(r"\d+[KMGTkmgt]?[Bb]?", v):
            err(f"{v}: Bad argument for option -M. Job not submitted.")
            return 255
    if st.inject_failure("submit"):
        return lsf_transient("submit")
    if job["queue"] == BAD_QUEUE:
        err("{}: No such queue. Job not submitted.".format(job["queue"]))
        return 255
    job = submit_common(st, job, text)
    if job["queue_explicit"]:
        out("Job <%d> is submitted to queue <%s>." % (job["id"], job["queue"]))
    else:
        out("Job <%d> is submitted to default queue <%s>." % (job["id"], job["queue"]))
    if not wait:
        return 0
    sys.stdout.flush()
    err("<<Waiting for dispatch ...>>")
    while True:
        j = st.load(job["id"]) or {}
        if j.get("state") not in ("queued", "held"):
            break
        time.sleep(0.1)
    err("<<Starting on {}>>".format(job["host"]))
    done = wait_finished(st, job["id"])
    if lsf_final_stat(done) == "DONE":
        err("<<Job is finished>>")
        return 0
    err("Job <%d> exited." % job["id"])  # hedged: wording not verified
    return lsf_exit_code(done) or 1


def lsf_exit_code(job: Job) -> int:
    if job.get("signal") is not None:
        return 128 + int(job["signal"])
    return int(job.get("exit_code") or 0)


def lsf_stat(job: Job) -> str:
    if job.get("display_state"):  # synthetic fixtures only
        return str(job["display_state"])
    s = job["state"]
    if s == "queued":
        return "PEND"
    if s == "held":
        return "PSUSP"
    if s in ("running", "exiting"):
        return "RUN"
    return lsf_final_stat(job)


def lsf_final_stat(job: Job) -> str:
    if job.get("killed") or job.get("signal") is not None or job.get("exit_code"):
        return "EXIT"
    return "DONE"


def lsf_deliver(st: State, job: Job, ou: str, er: str) -> None:
    """Write the -o file like sbatchd does: job report, then the output."""

    def read(p: str) -> str:
        try:
            with open(p, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    stdout = read(ou)
    stderr = read(er)
    o_path = job["stdout_path"]
    e_path = job["stderr_path"]
    if e_path:
        with (
            contextlib.suppress(OSError),
            open(e_path, "w" if job.get("e_overwrite") else "a") as f,
        ):
            f.write(stderr)
    if not o_path:
        return  # real LSF would mail the report; nobody reads it here
    stat = lsf_final_stat(job)
    code = lsf_exit_code(job)
    cluster = "cluster1"
    host = job["host"]
    lines = [
        f"Sender: LSF System <lsfadmin@{host}>",
        "Subject: Job %d: <%s> in cluster <%s> %s"
        % (job["id"], job["name"], cluster, "Done" if stat == "DONE" else "Exited"),
        "",
        "Job <{}> was submitted from host <{}> by user <{}> in cluster <{}> at {}".format(
            job["name"], host, job["user"], cluster, ctime(job["submit_time"])
        ),
        "Job was executed on host(s) <{}>, in queue <{}>, as user <{}> in cluster <{}> at {}".format(
            host if job["slots"] == 1 else "%d*%s" % (job["slots"], host),
            job["queue"],
            job["user"],
            cluster,
            ctime(job.get("start_time") or job["submit_time"]),
        ),
        "</{}> was used as the home directory.".format(os.environ.get("HOME", "/").strip("/")),
        "<{}> was used as the working directory.".format(job["cwd"]),
        "Started at {}".format(ctime(job.get("start_time") or job["submit_time"])),
        "Terminated at {}".format(ctime(job.get("end_time") or time.time())),
        f"Results reported at {ctime(time.time())}",
        "",
        "Your job looked like:",
        "",
        "------------------------------------------------------------",
        "# LSBATCH: User input",
        job["command"].rstrip("\n"),
        "------------------------------------------------------------",
        "",
    ]
    if stat == "DONE":
        lines.append("Successfully completed.")
    elif job.get("killed"):
        lines.append("TERM_OWNER: job killed by owner.")
        lines.append("Exited with exit code %d." % code)
    else:
        lines.append("Exited with exit code %d." % code)
    lines += [
        "",
        "Resource usage summary:",
        "",
        "    CPU time :                                   %.2f sec." % (job.get("cpu") or 0.0),
        "    Max Memory :                                 -",
        "    Average Memory :                             -",
        "    Total Requested Memory :                     -",
        "    Delta Memory :                               -",
        "    Max Swap :                                   -",
        "    Max Processes :                              -",
        "    Max Threads :                                -",
        "    Run time :                                   %d sec."
        % int((job.get("end_time") or time.time()) - (job.get("start_time") or time.time())),
        "    Turnaround time :                            %d sec."
        % int((job.get("end_time") or time.time()) - job["submit_time"]),
        "",
        "The output (if any) follows:",
        "",
    ]
    body = "\n".join(lines) + "\n" + stdout
    if not e_path and stderr:
        body += stderr
    if e_path:
        body += f"\n\nPS:\n\nRead file <{e_path}> for stderr output of this job.\n\n"
    try:
        with open(o_path, "w" if job.get("o_overwrite") else "a") as f:
            f.write(body)
    except OSError:
        pass


LSF_HEADER = "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME"


def lsf_exec_hosts(job: Job) -> list[str]:
    """The EXEC_HOST entries of a started job: one per (pretend) host of its span.

    A job with ``span[ptile=C]`` and more than C slots runs on several hosts; the fake
    has one, so the further hosts get pretend names (``host``, ``host-1``, ...).
    """
    slots, host = job["slots"], job["host"]
    ptile = job.get("ptile") or slots
    hosts = max(1, -(-slots // ptile))
    names = [host] + [f"{host}-{i}" for i in range(1, hosts)]
    per = [min(ptile, slots - i * ptile) for i in range(hosts)]
    return [name if n == 1 else "%d*%s" % (n, name) for n, name in zip(per, names)]


def lsf_row(job: Job, wide: bool) -> str:
    """One bjobs row; a job on several hosts gets continuation lines for the others
    (real bjobs, e.g. equinor/ert#7221), indented to the EXEC_HOST column."""
    name = job["name"].replace("\n", ";")
    user = job["user"]
    queue = job["queue"]
    host = job["host"]
    stat = lsf_stat(job)
    started = not (stat in ("PEND", "PSUSP") and not job.get("start_time"))
    hosts = lsf_exec_hosts(job) if started else [""]
    exec_host = hosts[0]
    if not wide:
        if len(name) > 10:
            name = "*" + name[-9:]
        user = user[:7]
        queue = queue[:10]
        host = host[:11]
        exec_host = exec_host[:11]
    when = time.strftime("%b %e %H:%M", time.localtime(job["submit_time"]))
    row = "%-7s %-7s %-5s %-10s %-11s %-11s %-10s %s" % (
        job["id"],
        user,
        stat,
        queue,
        host,
        exec_host,
        name,
        when,
    )
    return "\n".join([row] + [" " * 45 + more for more in hosts[1:]])


def lsf_json(jobs: list[Job], fields: list[str], missing: list[str]) -> str:
    """``bjobs -o '<fields>' -json``: COMMAND, JOBS, RECORDS (an ERROR record per id
    LSF does not know, the shape PSI/J's LSF executor reads)."""
    values = {
        "jobid": lambda j: str(j["id"]),
        "stat": lsf_stat,
        "job_name": lambda j: j["name"],
        "user": lambda j: j["user"],
        "queue": lambda j: j["queue"],
        "exec_host": lambda j: ":".join(lsf_exec_hosts(j)) if j.get("start_time") else "",
    }
    records: list[dict[str, str]] = [
        {f.upper(): str(values.get(f, lambda j: "")(job)) for f in fields} for job in jobs
    ]
    records += [{"JOBID": raw, "ERROR": f"Job <{raw}> is not found"} for raw in missing]
    doc = {"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}
    return json.dumps(doc, indent=2).replace("/", "\\/")


def lsf_bjobs(st: State, argv: list[str]) -> int:
    try:
        opts, ids = getopt_long(
            argv,
            {
                "-a": 0,
                "-w": 0,
                "-W": 0,
                "-noheader": 0,
                "-u": 1,
                "-q": 1,
                "-d": 0,
                "-p": 0,
                "-r": 0,
                "-s": 0,
                "-J": 1,
                "-o": 1,
                "-json": 0,
            },
        )
    except OptError as e:
        err("bjobs: illegal option -- {}".format(e.opt.lstrip("-")))
        err(
            "Usage: bjobs [-h] [-V] [-w |-l] [-a] [-d] [-p] [-s] [-r] [-noheader] [-u user_name] [jobId ...]"
        )
        return 255
    flags = {k for k, _ in opts}
    if st.inject_failure("status"):
        return lsf_transient("status")
    st.refresh()
    wide = "-w" in flags or "-W" in flags
    users = [username()]
    for k, v in opts:
        if k == "-u":
            users = ["*"] if v == "all" else v.split(",")
    fields = next((v.split() for k, v in opts if k == "-o"), [])
    as_json = "-json" in flags and bool(fields)
    names = [v for k, v in opts if k == "-J"]
    rc = 0
    shown: list[Job] = []
    missing: list[str] = []
    if ids:
        for raw in ids:
            m = re.fullmatch(r"(\d+)(\[\d+\])?", raw)
            if not m:
                err(f"{raw}: Illegal job ID.")
                rc = 255
                continue
            job = st.load(int(m.group(1)))
            if job is None or (job["state"] == "finished" and not visible_finished(job)):
                if as_json:
                    missing.append(raw)
                else:
                    err(f"Job <{raw}> is not found")
                rc = 255
                continue
            shown.append(job)
    else:
        for job in st.all_jobs():
            if "*" not in users and job["user"] not in users:
                continue
            if names and job["name"] not in names:
                continue
            if job["state"] == "finished":
                if ("-a" in flags or "-d" in flags) and visible_finished(job):
                    shown.append(job)
                continue
            if "-d" in flags:
                continue
            shown.append(job)
        if not shown and names:
            err(f"Job <{names[0]}> is not found")
            return 255
        if not shown:
            err("No unfinished job found" if "-a" not in flags else "No job found")
            return 255
    if as_json:
        out(lsf_json(shown, [f.lower() for f in fields], missing))
        return rc
    if shown:
        if "-noheader" not in flags:
            out(LSF_HEADER)
        for job in shown:
            out(lsf_row(job, wide))
    return rc


def lsf_bkill(st: State, argv: list[str]) -> int:
    ids = [a for a in argv if not a.startswith("-")]
    if not ids:
        err(
            "Usage: bkill [-h] [-V] [-l] [-s signal_value | -r] [-app application_profile_name]\n"
            "             [-g job_group_name] [-sla service_class_name] [-J job_name]\n"
            "             [-m host_name | -m host_group] [-q queue_name] [-u user_name | -u all]\n"
            '             [jobId | "jobId[index_list]" ...]'
        )
        return 255
    if st.inject_failure("kill"):
        return lsf_transient("kill")
    st.refresh()
    rc = 0
    with st.lock():
        for raw in ids:
            m = re.fullmatch(r"(\d+)(\[\d+\])?", raw)
            if not m:
                err(f"{raw}: Illegal job ID.")
                rc = 255
                continue
            job = st.load(int(m.group(1)))
            if job is None or (job["state"] == "finished" and not visible_finished(job)):
                err(f"Job <{raw}>: No matching job found")
                rc = 255
                continue
            if job["state"] == "finished":
                err(f"Job <{raw}>: Job has already finished")
                rc = 255
                continue
            if job["state"] != "exiting":
                kill_job(st, job)
            out(f"Job <{raw}> is being terminated")
    return rc


# ================================================================ admin
def ctl(st: State, argv: list[str]) -> int:
    cmd = argv[0] if argv else "list"
    if cmd == "list":
        for job in st.all_jobs():
            out(
                "%d\t%s\t%s\t%s" % (job["id"], job["state"], job["name"][:30], job.get("exit_code"))
            )
        return 0
    if cmd == "killall":
        with st.lock():
            for job in st.all_jobs():
                if job["state"] != "finished":
                    kill_job(st, job)
        deadline = time.time() + 10
        while time.time() < deadline:
            st.refresh()
            if all(j["state"] == "finished" for j in st.all_jobs()):
                return 0
            time.sleep(0.1)
        return 1
    if cmd == "reset":
        ctl(st, ["killall"])
        shutil.rmtree(st.dir, ignore_errors=True)
        return 0
    if cmd == "release" and len(argv) > 1:
        with st.lock():
            held = st.load(int(argv[1]))
            if held is None or held["state"] != "held":
                err(f"fakesched: job {argv[1]} is not held")
                return 1
            held["state"] = "queued"
            st.save(held)
        return 0
    if cmd == "env":
        out("export PATH={}:$PATH".format(os.path.join(HERE, st.flavour, "bin")))
        out(f"export FAKESCHED_DIR={os.path.dirname(st.dir)}")
        return 0
    err("usage: fakesched.py FLAVOUR ctl list|killall|reset|release ID|env")
    return 2


COMMANDS = {
    ("pbs", "qsub"): pbs_qsub,
    ("pbs", "qstat"): pbs_qstat,
    ("pbs", "qdel"): pbs_qdel,
    ("pbs", "qselect"): pbs_qselect,
    ("torque", "qselect"): pbs_qselect,
    ("torque", "qsub"): pbs_qsub,
    ("torque", "qstat"): pbs_qstat,
    ("torque", "qdel"): pbs_qdel,
    ("sge", "qsub"): sge_qsub,
    ("sge", "qstat"): sge_qstat,
    ("sge", "qdel"): sge_qdel,
    ("lsf", "bsub"): lsf_bsub,
    ("lsf", "bjobs"): lsf_bjobs,
    ("lsf", "bkill"): lsf_bkill,
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in FLAVOURS:
        err("usage: fakesched.py {pbs|torque|sge|lsf|fugaku|jh} TOOL [ARGS...]")
        return 2
    flavour, tool, args = argv[0], argv[1], argv[2:]
    st = State(flavour)
    if tool == "_run":
        return supervise(st, int(args[0]))
    if tool == "ctl":
        return ctl(st, args)
    if flavour in ("fugaku", "jh") and (flavour, tool) not in COMMANDS:
        sys.path.insert(0, HERE)
        import fakesched_tcs_jh  # the Fugaku and JH UniScheduler tools

        COMMANDS.update(fakesched_tcs_jh.commands(sys.modules[__name__]))
    fn = COMMANDS.get((flavour, tool))
    if fn is None:
        err(f"fakesched: {flavour} has no command {tool}")
        return 2
    try:
        return fn(st, args)
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
