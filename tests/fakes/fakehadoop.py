#!/usr/bin/env python3
"""fakehadoop -- ``hadoop fs``, the YARN distributed-shell client and ``yarn application``
over a local directory, for the HDFSContext / DistributedShell tests (no Hadoop here).

``$FAKEHADOOP_ROOT`` (default ``/tmp/fakehadoop-$UID``) is the file system:
``hdfs://host:port/a/b`` and ``/a/b`` are ``$FAKEHADOOP_ROOT/a/b``; a relative path is
under ``/user/$USER``. ``hadoop jar <jar> ...distributedshell.Client ... -shell_script S``
runs S in a fresh container directory (``$FAKEHADOOP_ROOT/.yarn/<app id>/``), as
``ExecScript.sh``, with ``-shell_env`` variables, waits, and exits 0 or 2 like the real
client. Messages follow Hadoop's FsShell and the distributed-shell client (see
``tests/fakes/README.md``). Stdlib only.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.environ.get("FAKEHADOOP_ROOT") or f"/tmp/fakehadoop-{os.getuid()}")
YARN = os.path.join(ROOT, ".yarn")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def hpath(uri: str) -> str:
    """The local path standing for an HDFS URI or path."""
    if uri.startswith("hdfs://"):
        rest = uri[len("hdfs://") :]
        uri = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if not uri.startswith("/"):
        uri = f"/user/{os.environ.get('USER', 'root')}/{uri}"
    return os.path.join(ROOT, uri.lstrip("/"))


def _matches(uri: str) -> list[str]:
    path = hpath(uri)
    return sorted(glob.glob(path)) if any(c in uri for c in "*?[") else (
        [path] if os.path.lexists(path) else [])  # fmt: skip


def _copy(src: str, dst: str, force: bool, op: str, shown: str) -> bool:
    if os.path.isdir(dst):
        dst = os.path.join(dst, os.path.basename(src))
    if os.path.lexists(dst) and not force:
        err(f"{op}: `{shown}': File exists")
        return False
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    if os.path.isdir(src):
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        shutil.copyfile(src, dst)
    return True


def fs(argv: list[str]) -> int:
    op, args = argv[0], argv[1:]
    flags = {a for a in args if a in ("-f", "-p", "-r", "-e", "-R")}
    paths = [a for a in args if a not in flags]
    name = op.lstrip("-")
    if op == "-test":
        return 0 if paths and _matches(paths[0]) else 1
    if op in ("-mkdir", "-touchz"):
        for uri in paths:
            target = hpath(uri)
            if op == "-mkdir":
                if os.path.isdir(target) and "-p" not in flags:
                    err(f"mkdir: `{uri}': File exists")
                    return 1
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "a").close()
        return 0
    if op in ("-rm", "-text", "-cat"):
        for uri in paths:
            found = _matches(uri)
            if not found:
                err(f"{name}: `{uri}': No such file or directory")
                return 1
            for target in found:
                if op == "-rm":
                    shutil.rmtree(target) if os.path.isdir(target) else os.unlink(target)
                    print(f"Deleted {uri}")
                else:
                    with open(target, "rb") as fh:
                        sys.stdout.buffer.write(fh.read())
        return 0
    if op == "-ls":
        return ls(paths[0] if paths else ".")
    if op in ("-put", "-copyFromLocal"):
        *sources, dest = paths
        for src in sources:
            if not os.path.lexists(src):
                err(f"{name}: `{src}': No such file or directory")
                return 1
            if not _copy(src, hpath(dest), "-f" in flags, name, dest):
                return 1
        return 0
    if op in ("-get", "-copyToLocal"):
        *sources, dest = paths
        for uri in sources:
            found = _matches(uri)
            if not found:
                err(f"{name}: `{uri}': No such file or directory")
                return 1
            for target in found:
                if not _copy(target, dest, "-f" in flags, name, dest):
                    return 1
        return 0
    if op == "-mv":
        found = _matches(paths[0])
        if not found:
            err(f"mv: `{paths[0]}': No such file or directory")
            return 1
        os.makedirs(os.path.dirname(hpath(paths[1])), exist_ok=True)
        os.replace(found[0], hpath(paths[1]))
        return 0
    err(f"{op}: Unknown command")
    return 1


def ls(uri: str) -> int:
    """``-ls``: ``Found N items`` then one line per entry, as FsShell prints them."""
    target = hpath(uri)
    if not os.path.lexists(target):
        err(f"ls: `{uri}': No such file or directory")
        return 1
    entries = sorted(os.listdir(target)) if os.path.isdir(target) else [""]
    if os.path.isdir(target):
        print(f"Found {len(entries)} items")
    user = os.environ.get("USER", "root")
    for name in entries:
        path = os.path.join(target, name) if name else target
        shown = uri.rstrip("/") + "/" + name if name else uri
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))
        if os.path.isdir(path):
            print(f"drwxr-xr-x   - {user} supergroup {0:>10} {stamp} {shown}")
        else:
            size = os.path.getsize(path)
            print(f"-rw-r--r--   1 {user} supergroup {size:>10} {stamp} {shown}")
    return 0


def _app_file(app: str) -> str:
    return os.path.join(YARN, f"{app}.json")


def client(args: list[str]) -> int:
    """The distributed-shell client: submit, run the container, wait, report."""
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        if args[i].startswith("-") and i + 1 < len(args):
            opts.setdefault(args[i], []).append(args[i + 1])
            i += 2
        else:
            i += 1
    script = opts.get("-shell_script", [""])[0]
    if not os.path.isfile(script):
        err(f"java.io.FileNotFoundException: File {script} does not exist")
        return 1
    os.makedirs(YARN, exist_ok=True)
    app = f"application_{int(time.time() * 1000)}_{os.getpid() % 10000:04d}"
    container = os.path.join(YARN, app)
    os.makedirs(container)
    shutil.copyfile(script, os.path.join(container, "ExecScript.sh"))
    env = dict(os.environ)
    for pair in opts.get("-shell_env", []):
        key, _, value = pair.partition("=")
        env[key] = value
    err("INFO distributedshell.Client: Initializing Client")
    err("INFO distributedshell.Client: Submitting application to ASM")
    err(f"INFO impl.YarnClientImpl: Submitted application {app}")
    with open(os.path.join(container, "stdout"), "ab") as out:
        proc = subprocess.Popen(["bash", "ExecScript.sh"], cwd=container, env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    state = {"app": app, "name": opts.get("-appname", [""])[0], "pid": proc.pid,
             "client": os.getpid(), "state": "RUNNING"}  # fmt: skip
    with open(_app_file(app), "w") as fh:
        json.dump(state, fh)

    def stop(*_: object) -> None:
        with contextlib.suppress(OSError):
            proc.kill()

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(143)))
    code = proc.wait()
    state["state"] = "FINISHED" if code == 0 else "FAILED"
    with open(_app_file(app), "w") as fh:
        json.dump(state, fh)
    if code == 0:
        err(
            "INFO distributedshell.Client: Application has completed successfully. "
            "Breaking monitoring loop"
        )
        err("INFO distributedshell.Client: Application completed successfully")
        return 0
    err("ERROR distributedshell.Client: Application failed to complete successfully")
    return 2


def yarn(argv: list[str]) -> int:
    if argv[:2] != ["application", "-kill"] or len(argv) < 3:
        err("usage: yarn application -kill <Application ID>")
        return 255
    app = argv[2]
    try:
        with open(_app_file(app)) as fh:
            state = json.load(fh)
    except OSError:
        err(f"Application with id '{app}' doesn't exist in RM.")
        return 255
    if state["state"] != "RUNNING":
        print(f"Application {app} has already finished ")
        return 0
    print(f"Killing application {app}")
    with contextlib.suppress(OSError):
        os.kill(state["client"], signal.SIGTERM)
    err(f"INFO impl.YarnClientImpl: Killed application {app}")
    return 0


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    if tool == "hadoop" and args[:1] == ["fs"] and len(args) > 1:
        return fs(args[1:])
    if tool == "hadoop" and args[:1] == ["jar"] and any(a.endswith(".Client") for a in args):
        return client(args[2:])
    if tool == "yarn":
        return yarn(args)
    err(f"fakehadoop: unsupported: {tool} {' '.join(args)}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
