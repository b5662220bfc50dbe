#!/usr/bin/env python3
"""Fault-injecting wrapper around the REAL Slurm commands (``sbatch``, ``squeue``, ``sacct``,
``scancel``), for the fault tests on the real test cluster.

Link it into a directory under the tool's name (``ln -s slurm_faults.py <dir>/sbatch``) and
put that directory first on ``PATH``. Each call draws (deterministically, from
``SLURM_FAULTS_SEED`` and a call counter kept under a lock) whether to fail; at a rate of
``SLURM_FAULTS_RATE`` it injects one of the failures real clusters produce:

- ``invalid-user``: ``<tool>: error: Invalid user for SlurmUser slurm, ignored``, exit 1
  (a known transient of busy controllers; the command did nothing);
- ``unreachable``: ``... Unable to contact slurm controller (connect failure)``, exit 1;
- ``socket-timeout``: ``... Socket timed out on send/recv operation``, exit 1;
- ``timeout-after-queueing`` (sbatch only, half of its faults): the real ``sbatch`` runs
  and queues the job, then the wrapper reports "Batch job submission failed: Socket timed
  out on send/recv operation" and exits 1, as sbatch does when slurmctld accepted the job
  but its answer was lost.

Every injected fault and every job the real ``sbatch`` queued is appended as one JSON line
to ``$SLURM_FAULTS_DIR/log.jsonl`` (tool, kind, job id, ``--comment``, script name), from
which the test counts injected faults and scheduler jobs per job and attempt (duplicates).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys

TOOL = os.path.basename(sys.argv[0])
STATE = os.environ["SLURM_FAULTS_DIR"]
REAL = os.path.join(os.environ.get("SLURM_FAULTS_REAL_DIR", "/usr/bin"), TOOL)
RATE = float(os.environ.get("SLURM_FAULTS_RATE", "0.3"))
SEED = os.environ.get("SLURM_FAULTS_SEED", "1")
PREFIX = {"squeue": "slurm_load_jobs error", "sacct": "sacct: error"}.get(TOOL, f"{TOOL}: error")


def locked_append(record: dict[str, object]) -> int:
    """Append ``record`` to the log and return this call's number (1, 2, ...)."""
    with open(os.path.join(STATE, "log.jsonl"), "a+") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        log.seek(0)
        number = sum(1 for _ in log) + 1
        log.write(json.dumps({"n": number, **record}) + "\n")
        return number


def draw() -> float:
    """A number in [0, 1) for this call, from the seed and a locked counter."""
    with open(os.path.join(STATE, "counter"), "a+") as counter:
        fcntl.flock(counter, fcntl.LOCK_EX)
        counter.seek(0)
        n = int(counter.read() or 0) + 1
        counter.seek(0)
        counter.truncate()
        counter.write(str(n))
    digest = hashlib.sha256(f"{SEED}:{n}".encode()).hexdigest()
    return int(digest[:8], 16) / 2**32


def comment(argv: list[str]) -> str:
    for arg in argv:
        if arg.startswith("--comment="):
            return arg.split("=", 1)[1]
    return ""


def queued_record(job: str, argv: list[str]) -> dict[str, object]:
    """What the real sbatch queued: its job id, the submit tag and the script (job hash)."""
    script = os.path.basename(argv[-1]) if argv else ""
    return {"tool": TOOL, "kind": "queued", "job_id": job, "tag": comment(argv), "script": script}


def fail(kind: str, message: str) -> int:
    locked_append({"tool": TOOL, "kind": kind})
    sys.stderr.write(message + "\n")
    return 1


def main(argv: list[str]) -> int:
    x = draw()
    if x < RATE:
        kinds = ["invalid-user", "unreachable", "socket-timeout"]
        if TOOL == "sbatch":
            kinds = ["timeout-after-queueing"] * 3 + kinds
        kind = kinds[int(x / RATE * len(kinds)) % len(kinds)]
        if kind == "invalid-user":
            return fail(kind, f"{TOOL}: error: Invalid user for SlurmUser slurm, ignored")
        if kind == "unreachable":
            return fail(kind, f"{PREFIX}: Unable to contact slurm controller (connect failure)")
        if kind == "socket-timeout":
            return fail(kind, f"{PREFIX}: Socket timed out on send/recv operation")
        done = subprocess.run([REAL, *argv], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            job = done.stdout.strip().split(";")[0]
            locked_append(queued_record(job, argv))
        return fail(
            kind,
            "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        )
    done = subprocess.run([REAL, *argv], capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    if TOOL == "sbatch" and done.returncode == 0:
        job = done.stdout.strip().split(";")[0]
        locked_append(queued_record(job, argv))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
