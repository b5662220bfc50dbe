#!/usr/bin/env python3
"""SSH transfer benchmark: ours against the original dpdispatcher and a bare ``tar | ssh``.

Workload: ``--tasks`` (100) task directories with ``--files`` (10) small text files each
(about 2 KB, compressible), plus one ``--big-mb`` (100) MB file in the work base. By
default the big file is random bytes (like a trained model or a binary trajectory: it
does not compress); ``--big-kind text`` makes it compressible text instead.

Every contender moves the same data up to a fresh remote directory over SSH to the
loopback sshd of ``tests/infra/up.sh`` and back into an emptied local copy, and the
received files are checked (count and SHA-256 of the big file). Times are wall-clock
seconds of the transfers only: the SSH connection is opened before timing starts (the
bare pipeline uses an OpenSSH ControlMaster for the same reason).

- **ours**: ``SSHContext.upload`` / ``download`` of a submission whose tasks forward and
  bring back their 10 files, and whose common files are the big file; default settings
  (``tar_compress: true``, which gzips only when samples of the large files compress).
- **original**: the same calls on dpdispatcher 1.1.0 with its defaults, in a throwaway
  virtual environment the tests share (``tests/_venvs.py``, filled from PyPI on first use;
  ``--orig-python`` points at another interpreter).
- **bare tar | ssh**: ``tar -cf - . | ssh host 'tar -xf - -C dir'`` and back, with OpenSSH;
  also with ``-z`` (gzip), what a user typing the pipeline with compression would get.

Each contender runs in its own child process, ``--repeat`` (3) times interleaved (the
order rotates each round); the median is reported, with the best total and the CPU time
the child used on this side (its whole life: start-up, connection, checks included).
Targets (issue 4): ours <= 0.5x the original, <= 1.3x the bare pipeline. Needs the sshd
of ``tests/infra/up.sh`` (``$DPDISP_INFRA_DIR/env.sh``).

Usage::

    python benchmarks/bench_ssh.py
    python benchmarks/bench_ssh.py --repeat 1 --big-mb 20 --skip-original
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import ensure_orig_python

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The child: one contender, one round (upload, empty the local copy, download, verify).
CHILD = r"""
import hashlib, json, os, resource, shutil, subprocess, sys, time
cfg = json.loads(sys.argv[1])
local, remote, kind = cfg["local"], cfg["remote"], cfg["kind"]
tasks = [f"task{i:03d}" for i in range(cfg["tasks"])]
files = [f"f{j}.txt" for j in range(cfg["files"])]

def empty_local():
    for t in tasks:
        shutil.rmtree(os.path.join(local, t))
    os.unlink(os.path.join(local, "big.bin"))

def verify():
    n = sum(os.path.isfile(os.path.join(local, t, f)) for t in tasks for f in files)
    h = hashlib.sha256(open(os.path.join(local, "big.bin"), "rb").read()).hexdigest()
    return n == len(tasks) * len(files) and h == cfg["big_sha"]

if kind == "bare":
    ssh = cfg["ssh"]
    z = "z" if cfg["gzip"] else ""
    t0 = time.perf_counter()
    up = f"mkdir -p {remote} && tar -C {remote} -x{z}f -"
    subprocess.run(f"tar -C {local} -c{z}f - . | {ssh} '{up}'", shell=True, check=True)
    t1 = time.perf_counter()
    empty_local()
    t2 = time.perf_counter()
    subprocess.run(f"{ssh} 'tar -C {remote} -c{z}f - .' | tar -C {local} -x{z}f -",
                   shell=True, check=True)
    t3 = time.perf_counter()
else:
    from dpdispatcher import Machine, Resources, Submission, Task
    machine = Machine.load_from_dict({
        "batch_type": "Shell", "context_type": "SSHContext", "local_root": local,
        "remote_root": remote, "remote_profile": cfg["profile"]})
    task_list = [Task(command="true", task_work_path=t + "/", forward_files=files,
                      backward_files=files) for t in tasks]
    sub = Submission(".", machine=machine, resources=Resources(1, 1, 0, "", 10),
                     task_list=task_list, forward_common_files=["big.bin"],
                     backward_common_files=["big.bin"])
    sub.generate_jobs()
    ctx = machine.context
    ctx.bind_submission(sub)
    if kind == "ours":
        ctx.ssh_session.ensure_alive()
    t0 = time.perf_counter()
    ctx.upload(sub)
    t1 = time.perf_counter()
    empty_local()
    t2 = time.perf_counter()
    ctx.download(sub)
    t3 = time.perf_counter()
cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF,
          resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
print(json.dumps({"up": t1 - t0, "down": t3 - t2, "ok": verify(), "cpu": cpu}))
"""


def load_infra_env() -> dict[str, str]:
    """The variables written by tests/infra/up.sh."""
    infra = Path(os.environ.get("DPDISP_INFRA_DIR", "/tmp/dpdisp-infra"))
    env: dict[str, str] = {}
    for path in sorted(infra.glob("env*.sh")):
        for line in path.read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                env.setdefault(key, (shlex.split(value) or [""])[0])
    env.update({k: v for k, v in os.environ.items() if k.startswith("DPDISP_")})
    return env


def make_dataset(root: Path, tasks: int, files: int, big_mb: int, big_kind: str) -> str:
    """Write the work base; return the SHA-256 of the big file."""
    root.mkdir(parents=True)
    line = "".join(f"{i * 0.001:.6f} " for i in range(40)) + "\n"
    for i in range(tasks):
        task = root / f"task{i:03d}"
        task.mkdir()
        for j in range(files):
            (task / f"f{j}.txt").write_text(f"# task {i} file {j}\n" + line * 6)
    digest = hashlib.sha256()
    with open(root / "big.bin", "wb") as fh:
        for k in range(big_mb):
            if big_kind == "random":
                block = os.urandom(1 << 20)
            else:
                block = (
                    "".join(f"{k}.{n:07d} {n * 1.5:.3f}\n" for n in range(40000))
                    .encode()[: 1 << 20]
                    .ljust(1 << 20, b"\n")
                )
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


def orig_python(arg: str | None) -> str:
    """An interpreter with dpdispatcher 1.1.0: ``arg``, or the tests' cached venv's."""
    return arg or str(ensure_orig_python())


def run_child(python: str, cfg: dict[str, Any], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """One round of one contender."""
    out = subprocess.run(
        [python, "-c", CHILD, json.dumps(cfg)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{cfg['kind']} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--big-kind", choices=("random", "text"), default="random")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--orig-python", help="interpreter with dpdispatcher 1.1.0")
    parser.add_argument("--skip-original", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds of quiet before each contender (disk write-back)",
    )
    args = parser.parse_args()

    infra = load_infra_env()
    host, port, user = infra["DPDISP_SSH_HOST"], infra["DPDISP_SSH_PORT"], infra["DPDISP_SSH_USER"]
    key, known = infra["DPDISP_SSH_KEY_ED25519"], infra["DPDISP_SSH_KNOWN_HOSTS"]
    work = Path(tempfile.mkdtemp(prefix="dpd-bench-ssh-"))
    control = work / "cm"
    ssh = (
        f"ssh -p {port} -i {key} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
        f"-o BatchMode=yes -o ControlPath={control} {user}@{host}"
    )
    master = subprocess.Popen(shlex.split(ssh.replace("-o ControlPath", "-M -N -o ControlPath")))
    profile = {
        "hostname": host,
        "port": int(port),
        "username": user,
        "key_filename": key,
        "known_hosts": known,
        "look_for_keys": False,
    }
    remote_base = f"/tmp/dpd-bench-ssh-{os.getpid()}"
    env = dict(os.environ, PYTHONPATH=str(REPO), DPDISPATCHER_HOME=str(work / "home"))
    orig_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    try:
        source = work / "source"
        big_sha = make_dataset(source, args.tasks, args.files, args.big_mb, args.big_kind)
        contenders: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
            ("ours", sys.executable, {"kind": "ours", "profile": profile}, env),
            ("bare tar | ssh", sys.executable, {"kind": "bare", "gzip": False, "ssh": ssh}, env),
            ("bare tar -z | ssh", sys.executable, {"kind": "bare", "gzip": True, "ssh": ssh}, env),
        ]
        if not args.skip_original:
            orig_profile = {k: v for k, v in profile.items() if k != "known_hosts"}
            contenders.insert(
                1,
                (
                    "original 1.1.0",
                    orig_python(args.orig_python),
                    {"kind": "orig", "profile": orig_profile},
                    orig_env,
                ),
            )
        times: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in contenders}
        for rnd in range(args.repeat):
            # rotate the order, so that no contender always follows the same one
            shift = rnd % len(contenders)
            for name, python, extra, child_env in contenders[shift:] + contenders[:shift]:
                local = work / f"local-{rnd}-{len(times[name])}-{extra['kind']}"
                shutil.copytree(source, local)
                # let the write-back of the fresh copy (and of what the previous contender
                # deleted) finish before the clock starts
                os.sync()
                time.sleep(args.settle)
                remote = f"{remote_base}/{extra['kind']}{extra.get('gzip', '')}-{rnd}"
                subprocess.run(
                    [*shlex.split(ssh), f"rm -rf {remote} && mkdir -p {remote}"], check=True
                )
                cfg = {
                    **extra,
                    "local": str(local),
                    "remote": remote,
                    "tasks": args.tasks,
                    "files": args.files,
                    "big_sha": big_sha,
                }
                res = run_child(python, cfg, local, child_env)
                if not res["ok"]:
                    raise RuntimeError(f"{name}: the files that came back are wrong")
                times[name].append((res["up"], res["down"], res["cpu"]))
                if args.verbose:
                    print(f"round {rnd}: {name:20s} up {res['up']:.2f} down {res['down']:.2f}")
                shutil.rmtree(local)
                subprocess.run([*shlex.split(ssh), f"rm -rf {remote}"], check=True)
        report(times, args)
    finally:
        subprocess.run([*shlex.split(ssh), f"rm -rf {remote_base}"], check=False)
        master.terminate()
        master.wait()
        shutil.rmtree(work, ignore_errors=True)


def report(times: dict[str, list[tuple[float, float, float]]], args: argparse.Namespace) -> None:
    """Print the table and the ratios."""
    print(
        f"\n{args.tasks} tasks x {args.files} files + {args.big_mb} MB ({args.big_kind}), "
        f"median of {args.repeat}, seconds"
    )
    print(f"{'':22s} {'up':>7s} {'down':>7s} {'total':>7s} {'min':>7s} {'cpu':>7s}")
    med: dict[str, float] = {}
    for name, runs in times.items():
        up = statistics.median(r[0] for r in runs)
        down = statistics.median(r[1] for r in runs)
        med[name] = statistics.median(r[0] + r[1] for r in runs)
        best = min(r[0] + r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print(f"{name:22s} {up:7.2f} {down:7.2f} {med[name]:7.2f} {best:7.2f} {cpu:7.2f}")
    ours = med["ours"]
    if "original 1.1.0" in med:
        ratio = ours / med["original 1.1.0"]
        print(
            f"ours / original         {ratio:6.2f}x  (target <= 0.5x: "
            f"{'met' if ratio <= 0.5 else 'NOT met'})"
        )
    for bare in ("bare tar | ssh", "bare tar -z | ssh"):
        ratio = ours / med[bare]
        print(
            f"ours / {bare:17s}{ratio:6.2f}x  (target <= 1.3x: "
            f"{'met' if ratio <= 1.3 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
