"""Endpoint resolution, host-key decisions and authentication helpers (no server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import paramiko
import pyotp
import pytest

from dpdispatcher.contexts import _ssh_auth as auth
from dpdispatcher.contexts import _ssh_endpoint as endpoint
from dpdispatcher.contexts._ssh_errors import (
    HostKeyChangedError,
    SSHAuthenticationError,
    UnknownHostKeyError,
)


def _endpoint(**kw: object) -> endpoint.Endpoint:
    args: dict[str, object] = {
        "username": "alice",
        "port": 22,
        "key_filename": None,
        "proxy_command": None,
        "known_hosts": None,
        "host_config": {},
    }
    args.update(kw)
    return endpoint.resolve_endpoint("cluster", **args)  # type: ignore[arg-type]


# -- endpoint ------------------------------------------------------------------------------
def test_profile_alone() -> None:
    ep = _endpoint(port=2222, known_hosts="/kh")
    assert (ep.hostname, ep.port, ep.username, ep.host_id) == (
        "cluster",
        2222,
        "alice",
        "[cluster]:2222",
    )
    assert ep.known_hosts == ("/kh",) and ep.read_only_known_hosts == ()
    assert _endpoint().host_id == "cluster"
    default = _endpoint()
    assert default.known_hosts == (os.path.expanduser("~/.ssh/known_hosts"),)
    assert default.read_only_known_hosts == ("/etc/ssh/ssh_known_hosts",)


def test_ssh_config_fills_only_what_is_unset(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "Host cluster\n  HostName 10.1.2.3\n  Port 2200\n  User bob\n"
        "  IdentityFile ~/.ssh/cluster_key\n  ProxyCommand ssh -W %h:%p bastion\n"
        "  UserKnownHostsFile ~/kh_cluster\n"
        "Host *\n  User nobody\n"
    )
    host = endpoint.lookup_ssh_config("cluster", str(config))
    ep = _endpoint(username=None, host_config=host)
    assert (ep.hostname, ep.port, ep.username) == ("10.1.2.3", 2200, "bob")
    assert ep.key_files == (os.path.expanduser("~/.ssh/cluster_key"),)
    assert ep.proxy_command == "ssh -W 10.1.2.3:2200 bastion"
    assert ep.known_hosts == (os.path.expanduser("~/kh_cluster"),)
    mine = _endpoint(
        username="alice",
        port=2299,
        key_filename="/k",
        proxy_command="nc %h %p",
        known_hosts="/kh",
        host_config=host,
    )
    assert (mine.port, mine.username, mine.known_hosts) == (2299, "alice", ("/kh",))
    assert mine.key_files == ("/k", os.path.expanduser("~/.ssh/cluster_key"))
    assert mine.proxy_command == "nc 10.1.2.3 2299"


def test_missing_or_broken_config_is_ignored(tmp_path: Path) -> None:
    assert endpoint.lookup_ssh_config("x", str(tmp_path / "none")) == {}
    bad = tmp_path / "bad"
    bad.write_text("Host x\n  Match exec\n")
    assert isinstance(endpoint.lookup_ssh_config("x", str(bad)), dict)


def test_proxy_jump() -> None:
    assert (
        endpoint.proxy_jump_command("bob@bastion:2022", "10.0.0.5", 22)
        == "ssh -l bob -p 2022 -W 10.0.0.5:22 bastion"
    )
    assert endpoint.proxy_jump_command("a,b", "h", 2) == "ssh -J a -W h:2 b"
    ep = _endpoint(host_config={"proxyjump": "gw"})
    assert ep.proxy_command == "ssh -W cluster:22 gw"


# -- host keys -----------------------------------------------------------------------------
def _gen() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


def _known(host_id: str, key: paramiko.PKey) -> paramiko.HostKeys:
    known = paramiko.HostKeys()
    known.add(host_id, key.get_name(), key)
    return known


def test_known_key_accepted() -> None:
    key = _gen()
    ep = _endpoint(port=2299, known_hosts="/kh")
    for policy in auth.HOST_KEY_POLICIES:
        assert auth.check_host_key(ep, key, _known(ep.host_id, key), policy) == "known"


def test_changed_key_always_refused() -> None:
    old, new = _gen(), _gen()
    ep = _endpoint(port=2299, known_hosts="/kh")
    for policy in auth.HOST_KEY_POLICIES:
        with pytest.raises(HostKeyChangedError) as err:
            auth.check_host_key(ep, new, _known(ep.host_id, old), policy)
        text = str(err.value)
        assert "HOST KEY CHANGED" in text and auth.fingerprint(new) in text
        assert auth.fingerprint(old) in text and "ssh-keygen -R" in text


def test_unknown_host_by_policy() -> None:
    key = _gen()
    ep = _endpoint(port=2299, known_hosts="/kh")
    empty = paramiko.HostKeys()
    with pytest.raises(UnknownHostKeyError) as err:
        auth.check_host_key(ep, key, empty, "reject")
    text = str(err.value)
    assert "ssh-keyscan -p 2299" in text and "/kh" in text and "accept-new" in text
    assert auth.fingerprint(key) in text
    assert auth.check_host_key(ep, key, empty, "accept-new") == "remember"
    assert auth.check_host_key(ep, key, empty, "auto-add") == "accept"
    other_host = _known("[otherhost]:2299", _gen())
    with pytest.raises(UnknownHostKeyError):
        auth.check_host_key(ep, key, other_host, "reject")


def test_remember_host_key_round_trip(tmp_path: Path) -> None:
    key = _gen()
    path = tmp_path / "new" / "known_hosts"
    auth.remember_host_key(str(path), "[h]:2299", key)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    known = auth.load_known_hosts([str(path), str(tmp_path / "absent")])
    ep = endpoint.Endpoint("h", 2299, "u", (), None, (str(path),))
    assert auth.check_host_key(ep, key, known, "reject") == "known"
    assert auth.known_key_types(known, "[h]:2299") == [key.get_name()]


def test_hashed_known_hosts_entries_match(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("no ssh-keygen")
    key = _gen()
    path = tmp_path / "known_hosts"
    auth.remember_host_key(str(path), "[h]:2299", key)
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    assert "|1|" in path.read_text()
    ep = endpoint.Endpoint("h", 2299, "u", (), None, (str(path),))
    assert auth.check_host_key(ep, key, auth.load_known_hosts([str(path)]), "reject") == "known"


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("no ssh-keygen")
    key = _gen()
    pub = tmp_path / "k.pub"
    pub.write_text(f"{key.get_name()} {key.get_base64()}\n")
    line = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert auth.fingerprint(key) in line


# -- authentication ------------------------------------------------------------------------
def test_answer_prompts() -> None:
    secret = pyotp.random_base32()
    prompts = [("Password: ", False), ("Verification code: ", False)]
    for _ in range(3):  # the code changes at most once around a 30 s boundary
        before = pyotp.TOTP(secret).now()
        answers = auth.answer_prompts(prompts, "pw", secret)
        if pyotp.TOTP(secret).now() == before:
            break
        time.sleep(0.1)
    assert answers == ["pw", before]
    assert auth.answer_prompts([("Duo passcode: ", False)], "pw", secret)[0].isdigit()
    assert auth.answer_prompts([("Enter PIN: ", False)], "pw", None) == ["pw"]
    assert auth.answer_prompts([("Your name? ", True)], "pw", None) == [""]
    assert auth.answer_prompts([("Verification code: ", False)], None, None) == [""]


def test_totp_codes_tell_reuse_and_wait_for_the_next() -> None:
    secret = pyotp.random_base32()
    slept: list[float] = []
    codes = auth.FreshCodes(secret, sleep=slept.append)
    first = codes()
    assert not codes.reused
    if codes() == first:  # same 30 s window
        assert codes.reused
        codes.wait_for_next()  # the fake sleep returns at once: it gives up after 31 s worth
        assert slept and sum(slept) <= 31
    assert "Secret('***')" in repr(vars(codes))


def _keygen(tmp_path: Path, kind: str, passphrase: str = "") -> str:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("no ssh-keygen")
    path = tmp_path / f"id_{kind}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", str(path)], check=True)
    return str(path)


@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519"])
def test_load_private_key_types(tmp_path: Path, kind: str) -> None:
    key = auth.load_private_key(_keygen(tmp_path, kind), None)
    assert key.can_sign()


def test_load_private_key_errors_name_the_file_not_the_secret(tmp_path: Path) -> None:
    path = _keygen(tmp_path, "ed25519", "s3cret-phrase")
    assert auth.load_private_key(path, "s3cret-phrase").can_sign()
    with pytest.raises(SSHAuthenticationError, match=r"encrypted: set remote_profile\.passphrase"):
        auth.load_private_key(path, None)
    with pytest.raises(SSHAuthenticationError) as err:
        auth.load_private_key(path, "wrong-phrase")
    assert path in str(err.value) and "wrong-phrase" not in str(err.value)
    with pytest.raises(SSHAuthenticationError, match="does not exist"):
        auth.load_private_key(str(tmp_path / "nope"), None)
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key")
    with pytest.raises(SSHAuthenticationError, match="not an RSA"):
        auth.load_private_key(str(garbage), None)


def test_discovered_keys_skip_unloadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    path = _keygen(tmp_path, "ed25519")
    shutil.move(path, ssh / "id_ed25519")
    (ssh / "id_rsa").write_text("garbage")
    found = auth.discovered_keys(None)
    assert [where for where, _ in found] == [str(ssh / "id_ed25519")]
