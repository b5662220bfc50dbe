"""SSHContext without a server: schema, secrets, registry, reconnect and journal logic."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import tarfile
from collections.abc import Callable
from typing import Any

import pytest

import dpdispatcher
from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.base_context import BaseContext
from dpdispatcher.contexts import _ssh_scripts as scripts
from dpdispatcher.contexts._ssh_errors import ConnectionDropped
from dpdispatcher.contexts._ssh_session import RawResult
from dpdispatcher.contexts.ssh_context import (
    AmbiguousCommandError,
    SSHAuthenticationError,
    SSHConnectionError,
    SSHContext,
    SSHSession,
)
from dpdispatcher.errors import ConfigurationError, ContextError

SECRETS = {"password": "pw-Sekr1t", "passphrase": "pp-Sekr1t", "totp_secret": "JBSWY3DPEHPK3PXP"}


def _machine(strict: bool = False, **profile: Any) -> Machine:
    return Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "SSHContext",
            "local_root": "/tmp",
            "remote_root": "/scratch/u",
            "remote_profile": {"hostname": "h", "username": "u", **profile},
        },
        strict=strict,
    )


def test_profile_defaults_match_the_original() -> None:
    # what dpdispatcher 1.1.0 fills in for {"hostname": "h", "username": "u"}; it feeds the
    # submission hash, so new keys (known_hosts, host_key_policy) get no default there
    assert _machine().serialize()["remote_profile"] == {
        "hostname": "h",
        "username": "u",
        "port": 22,
        "key_filename": None,
        "passphrase": None,
        "timeout": 10,
        "totp_secret": None,
        "tar_compress": True,
        "look_for_keys": True,
        "execute_command": None,
        "proxy_command": None,
    }


def test_secrets_never_persisted_hashed_or_shown() -> None:
    machine = _machine(**SECRETS)
    other = _machine(password="another", passphrase="x", totp_secret="JBSWY3DPEHPK3PXQ")
    text = json.dumps(machine.serialize()) + repr(machine.context) + repr(machine)
    text += repr(machine.context.ssh_session) + str(vars(machine.context.ssh_session))
    for secret in SECRETS.values():
        assert secret not in text

    def sub(m: Machine) -> Submission:
        s = Submission(
            "work",
            m,
            Resources(1, 1, 0, "", 1),
            task_list=[Task(command="true", task_work_path="t")],
        )
        s.generate_jobs()
        return s

    s1, s2 = sub(machine), sub(other)
    assert s1.submission_hash == s2.submission_hash
    assert all(v not in json.dumps(s1.serialize()) for v in SECRETS.values())


def test_new_keys_are_validated(caplog: pytest.LogCaptureFixture) -> None:
    m = _machine(known_hosts="/kh", host_key_policy="accept-new")
    assert m.context.ssh_session.host_key_policy == "accept-new"  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="host_key_policy"):
        _machine(host_key_policy="yes-please")
    with pytest.raises(ConfigurationError, match="hostnme"):
        _machine(hostnme="typo", strict=True)
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        kept = _machine(hostnme="typo")
    assert kept.context.ssh_session.hostname != "typo"  # type: ignore[attr-defined]
    assert "unknown key 'hostnme' ignored; did you mean 'hostname'?" in caplog.text
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="dpdispatcher"),
        pytest.raises(ConfigurationError, match="hostname"),
    ):
        SSHContext("/tmp", "/r", {"hostnme": "h", "username": "u"})
    assert "did you mean 'hostname'?" in caplog.text
    with pytest.raises(ConfigurationError, match="username"):
        SSHContext("/tmp", "/r", {"hostname": "h"})


def test_registry_and_import_paths() -> None:
    for name in ("SSHContext", "sshcontext", "SSH", "ssh"):
        assert BaseContext.get_class(name) is SSHContext
    from dpdispatcher.ssh_context import SSHContext as Flat
    from dpdispatcher.ssh_context import SSHSession as FlatSession

    assert Flat is SSHContext and FlatSession is SSHSession
    fields = [a.name for a in SSHSession.arginfo().sub_fields.values()]
    assert fields[:2] == ["hostname", "username"] and "host_key_policy" in fields
    assert dpdispatcher.__version__


def test_import_does_not_load_paramiko() -> None:
    code = "import sys, dpdispatcher; print('paramiko' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_create_remote_root_is_passed() -> None:
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "SSHContext",
            "local_root": "/tmp",
            "remote_root": "/r",
            "create_remote_root": True,
            "remote_profile": {"hostname": "h", "username": "u"},
        }
    )
    assert machine.context.create_remote_root is True  # type: ignore[attr-defined]


# -- reconnecting and journaled commands, against a scripted fake session --------------------
class FakeSession:
    """Stands in for SSHSession: ``handler(script)`` decides each run_raw outcome."""

    def __init__(self, handler: Callable[[str], RawResult]) -> None:
        self.handler = handler
        self.scripts: list[str] = []
        self.closed = 0
        self.connections = 1
        self.endpoint = "u@h:22"

    def run_raw(self, script: str, **_: Any) -> RawResult:
        self.scripts.append(script)
        return self.handler(script)

    def close(self) -> None:
        self.closed += 1
        self.connections += 1

    def lost(self) -> bool:
        return True


def _ctx(handler: Callable[[str], RawResult]) -> tuple[SSHContext, FakeSession]:
    ctx = SSHContext("/tmp", "/scratch/u", {"hostname": "h", "username": "u"})
    fake = FakeSession(handler)
    ctx.ssh_session = fake  # type: ignore[assignment]
    ctx.reconnect_delays = (0.0, 0.0, 0.0)
    return ctx, fake


def _journal_tar(token: str, rc: int, out: bytes, err: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            (f"{token}.rc", f"{rc}\n".encode()),
            (f"{token}.out", out),
            (f"{token}.err", err),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _token(script: str) -> str:
    """The journal token of a journaled command script."""
    return script.split('"$J"/')[1].split(".started")[0].strip("'")


def test_idempotent_ops_are_repeated_after_drops() -> None:
    calls = []

    def handler(script: str) -> RawResult:
        calls.append(script)
        if len(calls) < 3:
            raise ConnectionDropped("lost", sent=True)
        return RawResult(0, b"ok", b"")

    ctx, fake = _ctx(handler)
    res = ctx.run("squeue", idempotent=True)
    assert res.stdout == "ok" and len(calls) == 3 and fake.closed == 2


def test_gives_up_after_the_reconnect_budget() -> None:
    def handler(script: str) -> RawResult:
        raise SSHConnectionError("refused")

    ctx, fake = _ctx(handler)
    with pytest.raises(SSHConnectionError, match="gave up after 3"):
        ctx.files_exist(["a"])
    assert len(fake.scripts) == 4


def test_authentication_errors_are_not_retried() -> None:
    def handler(script: str) -> RawResult:
        raise SSHAuthenticationError("denied")

    ctx, fake = _ctx(handler)
    with pytest.raises(SSHAuthenticationError):
        ctx.run("true")
    assert len(fake.scripts) == 1


def test_dropped_journaled_command_is_not_repeated() -> None:
    state = {"probes": 0, "runs": 0, "token": ""}

    def handler(script: str) -> RawResult:
        if "exec tar -cf -" in script:  # the journal probe
            state["probes"] += 1
            if state["probes"] < 3:
                return RawResult(scripts.JOURNAL_RUNNING, b"", b"")
            return RawResult(0, _journal_tar(str(state["token"]), 0, b"Submitted 42\n", b""), b"")
        state["runs"] += 1
        state["token"] = _token(script)
        raise ConnectionDropped("lost while running", sent=True)

    ctx, _ = _ctx(handler)
    ctx.journal_wait = 30
    res = ctx.run("sbatch job.sub")
    assert (res.exit_code, res.stdout) == (0, "Submitted 42\n")
    assert state["runs"] == 1


def test_journaled_command_that_never_started_runs_again() -> None:
    state = {"runs": 0}

    def handler(script: str) -> RawResult:
        if "exec tar -cf -" in script:
            return RawResult(scripts.JOURNAL_ABSENT, b"", b"")
        state["runs"] += 1
        if state["runs"] == 1:
            raise ConnectionDropped("lost before it started", sent=True)
        return RawResult(0, b"done", b"")

    ctx, _ = _ctx(handler)
    assert ctx.run("sbatch job.sub").stdout == "done"
    assert state["runs"] == 2


def test_unfinished_journaled_command_is_ambiguous() -> None:
    def handler(script: str) -> RawResult:
        if "exec tar -cf -" in script:
            return RawResult(scripts.JOURNAL_RUNNING, b"", b"")
        raise ConnectionDropped("lost", sent=True)

    ctx, _ = _ctx(handler)
    ctx.journal_wait = 0
    with pytest.raises(AmbiguousCommandError) as err:
        ctx.run("sbatch job.sub")
    assert isinstance(err.value, ContextError)


def test_received_journal_entries_are_forgotten_later() -> None:
    ctx, fake = _ctx(lambda script: RawResult(0, b"", b""))
    ctx.run("true")
    first = _token(fake.scripts[0])
    ctx.run("true")
    assert first in fake.scripts[1] and "rm -f" in fake.scripts[1]
    ctx.clean()
    assert _token(fake.scripts[1]) in fake.scripts[2]


def test_clean_refuses_dangerous_roots() -> None:
    ctx, _ = _ctx(lambda script: RawResult(0, b"", b""))
    ctx.remote_root = "/"
    with pytest.raises(ConfigurationError):
        ctx.clean()
