"""SSHContext end to end against the real OpenSSH servers of ``tests/infra/up.sh``.

The servers listen on loopback: the target (key and password logins), a jump host, and
one asking a password and a TOTP code through PAM (keyboard-interactive). "Remote"
paths are on this machine, owned by the test user, so the tests can look at them.

Dropped connections are real: the sshd processes serving *our* connection (found by
its port in /proc) are killed with SIGKILL, during an upload, a status poll and a
download; the submission must complete unattended and run every task exactly once.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.base_context import CommandResult
from dpdispatcher.contexts import _ssh_auth as auth
from dpdispatcher.contexts import _ssh_files, _ssh_transfer
from dpdispatcher.contexts.ssh_context import (
    HostKeyChangedError,
    SSHAuthenticationError,
    SSHContext,
    SSHSession,
    UnknownHostKeyError,
)
from dpdispatcher.submission import Timing
from dpdispatcher.utils.job_status import JobStatus
from tests.conftest import require

pytestmark = pytest.mark.ssh

ENV = (
    "DPDISP_SSH_HOST",
    "DPDISP_SSH_PORT",
    "DPDISP_SSH_USER",
    "DPDISP_SSH_KEY_ED25519",
    "DPDISP_SSH_KNOWN_HOSTS",
    "DPDISP_SSHD_PIDFILE",
)


@pytest.fixture(autouse=True)
def _sshd() -> None:
    require(*ENV, what="real sshd")


def env(name: str) -> str:
    return os.environ[name]


def profile(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hostname": env("DPDISP_SSH_HOST"),
        "port": int(env("DPDISP_SSH_PORT")),
        "username": env("DPDISP_SSH_USER"),
        "key_filename": env("DPDISP_SSH_KEY_ED25519"),
        "known_hosts": env("DPDISP_SSH_KNOWN_HOSTS"),
        "look_for_keys": False,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Path]:
    """A remote root (created by the test user through create_remote_root)."""
    path = Path("/tmp") / f"dpd-ssh-test-{uuid.uuid4().hex[:10]}"
    yield path / "root"
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def counters() -> Iterator[Path]:
    """A directory outside the job root where tasks append a line per run."""
    path = Path("/tmp") / f"dpd-ssh-count-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_machine(tmp_path: Path, remote: Path, batch_type: str = "Shell", **prof: Any) -> Machine:
    return Machine.load_from_dict(
        {
            "batch_type": batch_type,
            "context_type": "SSHContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(remote),
            "create_remote_root": True,
            "remote_profile": profile(**prof),
        }
    )


def make_submission(
    tmp_path: Path,
    machine: Machine,
    counters: Path | None,
    n: int = 4,
    group_size: int = 2,
    command: str = "",
    big: int = 0,
) -> Submission:
    work = tmp_path / "local" / "work"
    for i in range(n):
        (work / f"t{i}").mkdir(parents=True, exist_ok=True)
        (work / f"t{i}" / "in.txt").write_text(f"input {i}\n")
    (work / "common.txt").write_text("common\n")
    forward_common = ["common.txt"]
    if big:
        (work / "big.bin").write_bytes(os.urandom(big))
        forward_common.append("big.bin")
    tasks = []
    for i in range(n):
        count = f"echo run >> {counters}/t{i}; " if counters else ""
        tasks.append(
            Task(
                command=f"{count}{command}cat in.txt ../common.txt > out.txt; "
                "mkdir -p res; echo r > res/r.dat; echo log > extra.log",
                task_work_path=f"t{i}/",
                forward_files=["in.txt"],
                backward_files=["out.txt", "res", "*.log"],
            )
        )
    sub = Submission(
        "work",
        machine,
        Resources(1, 1, 0, "", group_size),
        task_list=tasks,
        forward_common_files=forward_common,
    )
    sub.timing = Timing(first_interval=0.1, growth=1.3)
    return sub


def check_results(tmp_path: Path, n: int, counters: Path | None = None) -> None:
    work = tmp_path / "local" / "work"
    for i in range(n):
        assert (work / f"t{i}/out.txt").read_text() == f"input {i}\ncommon\n"
        assert (work / f"t{i}/res/r.dat").read_text() == "r\n"
        assert (work / f"t{i}/extra.log").read_text() == "log\n"
        if counters is not None:
            assert (counters / f"t{i}").read_text() == "run\n", f"task t{i} ran again"


# -- dropping our own connection ---------------------------------------------------------------
def _server_pids(local_port: int, server_port: int) -> list[int]:
    """PIDs holding the server side of the TCP connection from ``local_port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            if lport == server_port and rport == local_port:
                inodes.add(fields[9])
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link in {f"socket:[{i}]" for i in inodes} for link in links):
            pids.append(int(pid))
    return pids


def drop_connection(session: SSHSession) -> int:
    """SIGKILL the sshd processes serving ``session``'s connection; how many were killed."""
    transport = session._transport
    assert transport is not None
    local_port = transport.sock.getsockname()[1]  # type: ignore[union-attr]
    pids = _server_pids(local_port, session.port)
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert cmdline.startswith(b"sshd"), cmdline
        os.kill(pid, signal.SIGKILL)
    return len(pids)


# -- end to end ---------------------------------------------------------------------------------
def test_shell_over_ssh(tmp_path: Path, remote: Path, counters: Path) -> None:
    machine = make_machine(tmp_path, remote)
    sub = make_submission(tmp_path, machine, counters)
    sub.run_submission(check_interval=1)
    check_results(tmp_path, 4, counters)
    assert not (remote / sub.submission_hash).exists()  # cleaned
    assert remote.is_dir()


def test_home_relative_root_and_asynchronous_clean(tmp_path: Path, counters: Path) -> None:
    name = f"dpd-ssh-test-{uuid.uuid4().hex[:10]}"
    home = Path(os.path.expanduser(f"~{env('DPDISP_SSH_USER')}"))
    try:
        machine = Machine.load_from_dict(
            {
                "batch_type": "Shell",
                "context_type": "SSHContext",
                "local_root": str(tmp_path / "local"),
                "remote_root": f"~/{name}",
                "create_remote_root": True,
                "clean_asynchronously": True,
                "remote_profile": profile(),
            }
        )
        sub = make_submission(tmp_path, machine, counters, n=2)
        sub.run_submission(check_interval=1)
        check_results(tmp_path, 2, counters)
        assert machine.context.remote_root == str(home / name / sub.submission_hash)
        deadline = time.monotonic() + 10
        while (home / name / sub.submission_hash).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (home / name / sub.submission_hash).exists()
    finally:
        shutil.rmtree(home / name, ignore_errors=True)


def test_previous_submission_hash_over_ssh_with_a_home_relative_root(
    tmp_path: Path, counters: Path
) -> None:
    """The previous job root is renamed on the host (``~`` taken from the remote home) and
    its finished tasks are not run again; a stale new root is refused, as in 1.1.0."""
    name = f"dpd-ssh-test-{uuid.uuid4().hex[:10]}"
    home = Path(os.path.expanduser(f"~{env('DPDISP_SSH_USER')}"))
    data = {
        "batch_type": "Shell",
        "context_type": "SSHContext",
        "local_root": str(tmp_path / "local"),
        "remote_root": f"~/{name}",
        "create_remote_root": True,
        "remote_profile": profile(),
    }
    try:
        first = make_submission(tmp_path, Machine.load_from_dict(data), counters, n=2)
        first.run_submission(check_interval=1, clean=False)

        def second() -> Submission:
            sub = make_submission(tmp_path, Machine.load_from_dict(data), counters, n=2)
            sub.resources = Resources(1, 2, 0, "", 2)  # other resources: another hash
            sub.previous_submission_hash = first.submission_hash
            return sub

        stale = second()
        stale.generate_jobs()
        (home / name / stale.submission_hash).mkdir()
        with pytest.raises(FileExistsError, match="both old and new"):
            stale.run_submission(check_interval=1)
        (home / name / stale.submission_hash).rmdir()

        sub = second()
        sub.generate_jobs()  # "~/...": not bound before it connects
        assert sub.try_recover_from_json()
        assert [j.job_state for j in sub.belonging_jobs] == [JobStatus.finished]
        sub.run_submission(check_interval=1, clean=False)
        assert sub.submission_hash != first.submission_hash
        assert not (home / name / first.submission_hash).exists()
        assert (home / name / sub.submission_hash / f"{sub.submission_hash}.json").is_file()
        check_results(tmp_path, 2, counters)  # each task ran once

        rerun = second()  # recovers its own state now, from the job root
        rerun.previous_submission_hash = None
        rerun.generate_jobs()
        assert rerun.try_recover_from_json()
        assert rerun.machine.context.remote_root == str(home / name / sub.submission_hash)
    finally:
        shutil.rmtree(home / name, ignore_errors=True)


def test_commands_and_reads_in_another_directory_leave_the_job_root_alone(
    tmp_path: Path, remote: Path
) -> None:
    """``run_in``, ``files_exist_in`` and ``read_files_in`` work in the directory given (``~``
    being the home sshd logs into), whether or not the bound job root exists, and never
    re-point it."""
    other = remote.parent / "other"
    (other / "sub").mkdir(parents=True)
    (other / "state.json").write_text('{"a": 1}\n')
    (other / "sub" / "tag").write_text("")
    (other / "sub" / "dir").mkdir()
    ctx = SSHContext(str(tmp_path), str(remote), profile())
    ctx.remote_root = str(remote / "not-made-yet")
    home = os.path.expanduser(f"~{env('DPDISP_SSH_USER')}")
    try:
        assert ctx.run_in(str(other), "pwd -P").stdout == f"{os.path.realpath(other)}\n"
        assert ctx.run_in("~", "pwd -P", idempotent=True).stdout == f"{os.path.realpath(home)}\n"
        assert not ctx.run("true").ok  # the bound root is not there: run() cannot enter it
        names = ["state.json", "sub/tag", "sub/dir", "missing", "sub/missing"]
        assert ctx.files_exist_in(str(other), names) == {
            n for n in names if os.path.lexists(other / n)
        }
        assert ctx.read_files_in(str(other), names) == {
            n: (other / n).read_text() for n in names if (other / n).is_file()
        }
        assert ctx.read_files_in(str(remote / "nowhere"), names) == {}
        assert ctx.remote_root == str(remote / "not-made-yet")
    finally:
        ctx.close()


def test_slurm_over_ssh(tmp_path: Path, remote: Path, counters: Path) -> None:
    require("DPDISP_SLURM", what="real Slurm")
    machine = make_machine(tmp_path, remote, batch_type="Slurm")
    sub = make_submission(tmp_path, machine, counters, n=3, group_size=1)
    sub.run_submission(check_interval=1)
    check_results(tmp_path, 3, counters)


def test_recovery_upload_sends_only_changed_files(tmp_path: Path, remote: Path) -> None:
    machine = make_machine(tmp_path, remote)
    sub = make_submission(tmp_path, machine, None, big=2 << 20)
    sub.generate_jobs()
    ctx = machine.context
    assert isinstance(ctx, SSHContext)
    ctx.bind_submission(sub)
    ctx.upload(sub)
    root = remote / sub.submission_hash
    assert (root / "big.bin").stat().st_size == 2 << 20
    (tmp_path / "local/work/t1/in.txt").write_text("changed\n")
    sent: list[list[str]] = []
    original = _ssh_transfer.write_tar

    def spy(entries: Any, sink: Any) -> None:
        sent.append([e.rel for e in entries if e.kind == "file"])
        original(entries, sink)

    _ssh_files.transfer.write_tar = spy  # type: ignore[attr-defined]
    try:
        ctx.upload(sub)
    finally:
        _ssh_files.transfer.write_tar = original  # type: ignore[attr-defined]
    assert sent == [["t1/in.txt"]]
    assert (root / "t1/in.txt").read_text() == "changed\n"


def test_missing_remote_root_needs_create_remote_root(tmp_path: Path, remote: Path) -> None:
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "SSHContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(remote),
            "remote_profile": profile(),
        }
    )
    sub = make_submission(tmp_path, machine, None)
    with pytest.raises(Exception, match="create_remote_root"):
        sub.run_submission()


def test_download_semantics(tmp_path: Path, remote: Path) -> None:
    machine = make_machine(tmp_path, remote)
    sub = make_submission(tmp_path, machine, None, n=2)
    for task in sub.belonging_tasks:
        task.backward_files = ["out.txt", "missing.dat"]
    sub.download_options = {"check_exists": True, "mark_failure": False, "back_error": False}
    sub.run_submission(check_interval=1, clean=False)
    work = tmp_path / "local/work"
    assert not (work / "t0/tag_failure_download_missing.dat").exists()
    ctx = machine.context
    (work / "t0/out.txt").write_text("stale local copy")
    ctx.download(sub, check_exists=True, mark_failure=True)
    # a result replaces the local file of the same name (B1)
    assert (work / "t0/out.txt").read_text() == "input 0\ncommon\n"
    assert (work / "t0/tag_failure_download_missing.dat").exists()
    with pytest.raises(FileNotFoundError, match=r"missing\.dat"):
        ctx.download(sub)
    ctx.clean()


def test_results_replace_stale_local_files_and_directories(tmp_path: Path, remote: Path) -> None:
    machine = make_machine(tmp_path, remote)
    sub = make_submission(tmp_path, machine, None, n=1)
    sub.run_submission(check_interval=1, clean=False)
    work = tmp_path / "local/work"
    (work / "t0/out.txt").write_text("stale")
    (work / "t0/res/stale.dat").write_text("stale")
    machine.context.download(sub)
    assert (work / "t0/out.txt").read_text() == "input 0\ncommon\n"
    assert sorted(p.name for p in (work / "t0/res").iterdir()) == ["r.dat"]
    assert (work / "t0/in.txt").read_text() == "input 0\n"  # the task dir itself is merged
    machine.context.clean()


# -- connection options -------------------------------------------------------------------------
def _session(**over: Any) -> SSHSession:
    return SSHSession(**profile(**over))


def _whoami(session: SSHSession) -> str:
    res = session.run_raw("whoami")
    session.close()
    return res.stdout.decode().strip()


@pytest.mark.parametrize(
    "key", ["DPDISP_SSH_KEY_RSA", "DPDISP_SSH_KEY_ECDSA", "DPDISP_SSH_KEY_ED25519"]
)
def test_key_types(key: str) -> None:
    require(key, what="test key")
    assert _whoami(_session(key_filename=env(key))) == env("DPDISP_SSH_USER")


def test_passphrase_key() -> None:
    require("DPDISP_SSH_KEY_ED25519_PASS", "DPDISP_SSH_KEY_PASSPHRASE", what="passphrase key")
    s = _session(
        key_filename=env("DPDISP_SSH_KEY_ED25519_PASS"), passphrase=env("DPDISP_SSH_KEY_PASSPHRASE")
    )
    assert _whoami(s) == env("DPDISP_SSH_USER")
    with pytest.raises(SSHAuthenticationError) as err:
        _session(
            key_filename=env("DPDISP_SSH_KEY_ED25519_PASS"), passphrase="Not-The-Phrase"
        ).run_raw("true")
    assert "Not-The-Phrase" not in str(err.value)


def test_password() -> None:
    require("DPDISP_SSH_PASSWORD", what="password login")
    s = _session(key_filename=None, password=env("DPDISP_SSH_PASSWORD"))
    assert _whoami(s) == env("DPDISP_SSH_USER")
    with pytest.raises(SSHAuthenticationError) as err:
        _session(key_filename=None, password="not-the-Password").run_raw("true")
    assert "not-the-Password" not in str(err.value)


def test_totp_keyboard_interactive(caplog: pytest.LogCaptureFixture) -> None:
    require(
        "DPDISP_SSH_TOTP_PORT", "DPDISP_SSH_TOTP_SECRET", "DPDISP_SSH_PASSWORD", what="TOTP sshd"
    )
    s = _session(
        port=int(env("DPDISP_SSH_TOTP_PORT")),
        key_filename=None,
        password=env("DPDISP_SSH_PASSWORD"),
        totp_secret=env("DPDISP_SSH_TOTP_SECRET"),
    )
    assert _whoami(s) == env("DPDISP_SSH_USER")
    for secret in (env("DPDISP_SSH_PASSWORD"), env("DPDISP_SSH_TOTP_SECRET")):
        assert secret not in caplog.text


def test_totp_session_reconnects(tmp_path: Path) -> None:
    require(
        "DPDISP_SSH_TOTP_PORT", "DPDISP_SSH_TOTP_SECRET", "DPDISP_SSH_PASSWORD", what="TOTP sshd"
    )
    ctx = SSHContext(
        str(tmp_path),
        "/tmp",
        profile(
            port=int(env("DPDISP_SSH_TOTP_PORT")),
            key_filename=None,
            password=env("DPDISP_SSH_PASSWORD"),
            totp_secret=env("DPDISP_SSH_TOTP_SECRET"),
        ),
    )
    ctx.reconnect_delays = (0.1, 0.5)
    assert ctx.run("echo one", idempotent=True).stdout == "one\n"
    assert drop_connection(ctx.ssh_session) >= 1
    assert ctx.run("echo two", idempotent=True).stdout == "two\n"
    assert ctx.ssh_session.connections == 2
    ctx.close()


def test_jump_host(tmp_path: Path) -> None:
    require("DPDISP_SSH_JUMP_PORT", what="jump sshd")
    # the target is named by a name only the jump host's proxy knows how to reach
    known = tmp_path / "known_hosts"
    target_key = _host_key_line(f"[127.0.0.1]:{env('DPDISP_SSH_PORT')}").split(" ", 1)[1]
    known.write_text(f"[target.invalid]:{env('DPDISP_SSH_PORT')} {target_key}\n")
    proxy = (
        f"ssh -i {env('DPDISP_SSH_KEY_ED25519')} -o BatchMode=yes "
        f"-o UserKnownHostsFile={env('DPDISP_SSH_KNOWN_HOSTS')} "
        f"-o StrictHostKeyChecking=yes -p {env('DPDISP_SSH_JUMP_PORT')} "
        f"-W 127.0.0.1:%p {env('DPDISP_SSH_USER')}@{env('DPDISP_SSH_HOST')}"
    )
    s = _session(hostname="target.invalid", proxy_command=proxy, known_hosts=str(known))
    assert _whoami(s) == env("DPDISP_SSH_USER")


def test_ssh_config_and_execute_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/config").write_text(
        textwrap.dedent(f"""\
        Host dpd-target
            HostName {env("DPDISP_SSH_HOST")}
            Port {env("DPDISP_SSH_PORT")}
            User {env("DPDISP_SSH_USER")}
            IdentityFile {env("DPDISP_SSH_KEY_ED25519")}
        """)
    )
    monkeypatch.setenv("HOME", str(home))
    mark = f"/tmp/dpd-exec-{uuid.uuid4().hex}"
    try:
        s = SSHSession(
            "dpd-target",
            "",
            known_hosts=env("DPDISP_SSH_KNOWN_HOSTS"),
            look_for_keys=False,
            execute_command=f"touch {mark}",
        )
        assert _whoami(s) == env("DPDISP_SSH_USER")
        assert os.path.exists(mark)
    finally:
        if os.path.exists(mark):
            os.unlink(mark)


# -- host keys ----------------------------------------------------------------------------------
def _host_key_line(host_id: str) -> str:
    for line in Path(env("DPDISP_SSH_KNOWN_HOSTS")).read_text().splitlines():
        if line.startswith(host_id + " "):
            return line
    raise AssertionError(f"{host_id} not in known_hosts")


def _server_key() -> paramiko.PKey:
    line = _host_key_line(f"[{env('DPDISP_SSH_HOST')}]:{env('DPDISP_SSH_PORT')}").split()
    return paramiko.PKey.from_type_string(line[1], base64.b64decode(line[2]))


def test_changed_host_key_refused_under_every_policy(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    host_id = f"[{env('DPDISP_SSH_HOST')}]:{env('DPDISP_SSH_PORT')}"
    other = paramiko.ECDSAKey.generate()
    known.write_text(f"{host_id} {other.get_name()} {other.get_base64()}\n")
    before = known.read_text()
    for policy in (None, "reject", "accept-new", "auto-add"):  # None: the default
        with pytest.raises(HostKeyChangedError, match="HOST KEY CHANGED") as err:
            _session(known_hosts=str(known), host_key_policy=policy).run_raw("true")
        # both fingerprints: what the server showed and what known_hosts records
        assert auth.fingerprint(_server_key()) in str(err.value)
        assert auth.fingerprint(other) in str(err.value)
    assert known.read_text() == before


def test_fresh_known_hosts_trusts_on_first_use_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fresh container (dflow) has no known_hosts: the default connects and records."""
    known = tmp_path / "fresh" / ".ssh" / "known_hosts"
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        assert _whoami(_session(known_hosts=str(known))) == env("DPDISP_SSH_USER")
    host_id = f"[{env('DPDISP_SSH_HOST')}]:{env('DPDISP_SSH_PORT')}"
    assert known.read_text().split() == _host_key_line(host_id).split()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and auth.fingerprint(_server_key()) in warnings[0]
    assert host_id in warnings[0] and str(known) in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        assert _whoami(_session(known_hosts=str(known), host_key_policy="reject"))
    assert not caplog.records  # now known: silent, even under reject


def test_unknown_host_under_the_other_policies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    known = tmp_path / "kh" / "known_hosts"
    with pytest.raises(UnknownHostKeyError, match="ssh-keyscan"):
        _session(known_hosts=str(known), host_key_policy="reject").run_raw("true")
    assert not known.exists()
    assert _whoami(_session(known_hosts=str(known), host_key_policy="auto-add"))
    assert "without verification" in caplog.text
    assert not known.exists()


# -- hostile remote -----------------------------------------------------------------------------
def test_hostile_remote_archive_members_skipped(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    machine = make_machine(tmp_path, remote)
    sub = make_submission(tmp_path, machine, None, n=1)
    sub.run_submission(check_interval=1, clean=False)
    ctx = machine.context
    assert isinstance(ctx, SSHContext)
    root = remote / sub.submission_hash
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("t0/harmless.txt", b"ok"), ("../../escaped.txt", b"pwned")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("t0/evil_link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
    (root / "hostile.tar").write_bytes(buf.getvalue())
    # a compromised remote answers the download with its own archive
    monkeypatch.setattr(
        _ssh_files.scripts,
        "tar_script",
        lambda root, compress: f"cd {shlex.quote(root)} && cat hostile.tar",
    )
    work = tmp_path / "local/work"
    for f in ("out.txt", "extra.log"):
        (work / "t0" / f).unlink()
    shutil.rmtree(work / "t0/res")
    with caplog.at_level("WARNING", logger="dpdispatcher"):
        ctx.download(sub)
    assert (work / "t0/harmless.txt").read_text() == "ok"  # the rest is extracted (B8)
    assert not (work / "t0/evil_link").exists()
    assert not list(tmp_path.rglob("escaped.txt"))
    assert "'../../escaped.txt'" in caplog.text and "'t0/evil_link'" in caplog.text
    assert not [p for p in (work).iterdir() if p.name.startswith(".dpdispatcher-extract")]
    ctx.clean()


# -- dropped connections ------------------------------------------------------------------------
def _fast_reconnect(machine: Machine) -> SSHContext:
    ctx = machine.context
    assert isinstance(ctx, SSHContext)
    ctx.reconnect_delays = (0.1, 0.5, 1.0, 2.0)
    return ctx


def test_drop_during_upload(
    tmp_path: Path, remote: Path, counters: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = make_machine(tmp_path, remote)
    ctx = _fast_reconnect(machine)
    sub = make_submission(tmp_path, machine, counters, big=24 << 20)
    dropped: list[int] = []
    original = _ssh_transfer.write_tar

    def write_tar(entries: Any, sink: Any) -> None:
        send = sink._send

        def send_then_drop(chunk: bytes) -> None:
            send(chunk)
            if not dropped and sink.sent > (8 << 20):
                dropped.append(drop_connection(ctx.ssh_session))

        sink._send = send_then_drop
        original(entries, sink)

    monkeypatch.setattr(_ssh_files.transfer, "write_tar", write_tar)
    sub.run_submission(check_interval=1)
    assert dropped and dropped[0] >= 1
    assert ctx.ssh_session.connections >= 2
    check_results(tmp_path, 4, counters)


def test_drop_during_polling(tmp_path: Path, remote: Path, counters: Path) -> None:
    machine = make_machine(tmp_path, remote)
    ctx = _fast_reconnect(machine)
    sub = make_submission(tmp_path, machine, counters, command="sleep 1; ")
    original_run = ctx.run
    state = {"polls": 0, "dropped": 0}

    def run(cmd: str, timeout: float | None = None, *, idempotent: bool = False) -> CommandResult:
        if cmd.startswith("ps "):  # a status query of the Shell machine
            state["polls"] += 1
            if state["polls"] == 2:  # make this one last, and drop the link while it runs
                killer = threading.Timer(
                    0.4, lambda: state.update(dropped=drop_connection(ctx.ssh_session))
                )
                killer.start()
                return original_run(cmd + "; sleep 1", timeout, idempotent=idempotent)
        return original_run(cmd, timeout, idempotent=idempotent)

    ctx.run = run  # type: ignore[method-assign]
    sub.run_submission(check_interval=1)
    assert state["dropped"] >= 1 and ctx.ssh_session.connections >= 2
    check_results(tmp_path, 4, counters)


def test_drop_during_download(
    tmp_path: Path, remote: Path, counters: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = make_machine(tmp_path, remote)
    ctx = _fast_reconnect(machine)
    sub = make_submission(
        tmp_path,
        machine,
        counters,
        command="mkdir -p res; head -c 20000000 /dev/urandom > res/big.bin; ",
    )
    original = _ssh_files.safe_extract_tar
    dropped: list[int] = []

    def extract(stream: Any, dest: str) -> list[str]:
        if dropped:
            return original(stream, dest)
        head = stream.read(1 << 20)
        dropped.append(drop_connection(ctx.ssh_session))
        return original(_Chain(head, stream), dest)

    monkeypatch.setattr(_ssh_files, "safe_extract_tar", extract)
    sub.run_submission(check_interval=1)
    assert dropped and dropped[0] >= 1
    check_results(tmp_path, 4, counters)
    big = tmp_path / "local/work/t0/res/big.bin"
    assert big.stat().st_size == 20000000


class _Chain:
    def __init__(self, head: bytes, rest: Any) -> None:
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = (self.head, b"") if size < 0 else (self.head[:size], self.head[size:])
            return data
        return bytes(self.rest.read(size))


def test_drop_while_a_journaled_command_runs(tmp_path: Path, remote: Path, counters: Path) -> None:
    ctx = SSHContext(str(tmp_path), str(remote), profile())
    ctx.reconnect_delays = (0.1, 0.5, 1.0)
    ctx.remote_root = str(remote)
    ctx.write_file("x", "")  # creates the directory
    timer = threading.Timer(0.5, lambda: drop_connection(ctx.ssh_session))
    timer.start()
    res = ctx.run(f"sleep 1.2; echo once >> {counters}/journal; echo submitted 42")
    timer.join()
    assert (res.exit_code, res.stdout) == (0, "submitted 42\n")
    assert (counters / "journal").read_text() == "once\n"
    assert ctx.ssh_session.connections == 2
    tokens = list(ctx._done_tokens)
    assert tokens
    ctx.close()  # tidies the journal entries it received
    journal = Path(os.path.expanduser(f"~{env('DPDISP_SSH_USER')}")) / ".cache/dpdispatcher/ssh-run"
    assert not [p for p in journal.iterdir() if p.name.split(".")[0] in tokens]


# -- kill -9 of the dispatcher ------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import json, sys
    from dpdispatcher import Machine, Resources, Submission, Task
    from dpdispatcher.submission import Timing
    cfg = json.loads(sys.argv[1])
    machine = Machine.load_from_dict(cfg["machine"])
    tasks = [Task(command=f"echo run >> {cfg['counters']}/t{i}; sleep 1; echo {i} > out.txt",
                  task_work_path=f"t{i}/", backward_files=["out.txt"])
             for i in range(cfg["n"])]
    sub = Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=tasks)
    sub.timing = Timing(first_interval=0.1, growth=1.3)
    sub.run_submission(check_interval=1)
    print("DONE")
""")


def test_kill_dispatcher_then_rerun(tmp_path: Path, remote: Path, counters: Path) -> None:
    n = 4
    for i in range(n):
        (tmp_path / "local/work" / f"t{i}").mkdir(parents=True)
    cfg = json.dumps(
        {
            "n": n,
            "counters": str(counters),
            "machine": {
                "batch_type": "Shell",
                "context_type": "SSHContext",
                "local_root": str(tmp_path / "local"),
                "remote_root": str(remote),
                "create_remote_root": True,
                "remote_profile": profile(),
            },
        }
    )
    repo = str(Path(__file__).resolve().parents[2])
    child_env = dict(os.environ, PYTHONPATH=repo)
    first = subprocess.Popen(
        [sys.executable, "-c", CHILD, cfg],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some tasks are running
        if len(list(counters.iterdir())) >= 2:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    second = subprocess.run(
        [sys.executable, "-c", CHILD, cfg],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "DONE" in second.stdout, second.stderr[-3000:]
    for i in range(n):
        assert (counters / f"t{i}").read_text() == "run\n", f"task t{i} ran twice"
        assert (tmp_path / f"local/work/t{i}/out.txt").read_text() == f"{i}\n"
