"""Whom to trust and how to log in: the decisions behind an SSH session.

Pure where possible (prompt answering, host-key decisions); paramiko is imported inside
functions only. Where to connect is :mod:`dpdispatcher.contexts._ssh_endpoint`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpdispatcher.contexts._ssh_errors import (
    HostKeyChangedError,
    SSHAuthenticationError,
    SSHConnectionError,
    UnknownHostKeyError,
)
from dpdispatcher.dlog import dlog

if TYPE_CHECKING:
    import paramiko

    from dpdispatcher.contexts._ssh_endpoint import Endpoint

HOST_KEY_POLICIES = ("reject", "accept-new", "auto-add")
DISCOVERED_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
_CODE_WORDS = ("verification", "code", "token", "otp", "one-time", "2fa", "authenticator")


class Secret:
    """A password-like value that never shows in a repr, a log line or ``vars()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself (only where it is sent to the server)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def reveal(secret: Secret | None) -> str | None:
    """The value of an optional secret."""
    return None if secret is None else secret.reveal()


# -- host keys -----------------------------------------------------------------------
def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def load_known_hosts(files: Sequence[str]) -> paramiko.HostKeys:
    """All entries of the known_hosts files that exist (unreadable lines skipped)."""
    import paramiko

    keys = paramiko.HostKeys()
    for path in files:
        if os.path.isfile(path):
            try:
                keys.load(path)
            except (OSError, paramiko.SSHException) as err:
                dlog.warning("could not read known_hosts file %s: %s", path, err)
    return keys


def known_key_types(known: paramiko.HostKeys, host_id: str) -> list[str]:
    """Key types recorded for ``host_id`` (to ask the server for one of them)."""
    entry = known.lookup(host_id)
    return list(entry.keys()) if entry else []


def check_host_key(
    endpoint: Endpoint, key: paramiko.PKey, known: paramiko.HostKeys, policy: str
) -> str:
    """Decide about the server's key: ``"known"``, ``"remember"`` or ``"accept"``.

    Raises :class:`HostKeyChangedError` when known_hosts holds another key for the
    host (whatever the policy) and :class:`UnknownHostKeyError` for an unknown host
    under the ``reject`` policy.
    """
    host_id = endpoint.host_id
    where = ", ".join(endpoint.known_hosts + endpoint.read_only_known_hosts)
    entry = known.lookup(host_id)
    if entry:
        mine = entry.get(key.get_name())
        if mine is not None and mine.asbytes() == key.asbytes():
            return "known"
        recorded = "; ".join(f"{t} {fingerprint(k)}" for t, k in entry.items())
        raise HostKeyChangedError(
            f"HOST KEY CHANGED for {host_id}: the server presented {key.get_name()} "
            f"{fingerprint(key)}, but {where} records {recorded}. Someone may be "
            "intercepting the connection, or the host was reinstalled. If the change is "
            f"legitimate, remove the old entry (ssh-keygen -R {shlex.quote(host_id)} -f "
            f"{shlex.quote(endpoint.known_hosts[0])}) and connect again. A changed key is "
            "refused whatever host_key_policy says."
        )
    if policy == "reject":
        scan_port = f"-p {endpoint.port} " if endpoint.port != 22 else ""
        raise UnknownHostKeyError(
            f"unknown host {host_id}: its {key.get_name()} key {fingerprint(key)} is not in "
            f"{where}. Check the fingerprint with the cluster's administrators, then add it "
            f"(ssh-keyscan {scan_port}-t {key.get_name()} {endpoint.hostname} >> "
            f"{shlex.quote(endpoint.known_hosts[0])}, or log in once with ssh), or set "
            'remote_profile.host_key_policy to "accept-new" to trust and remember a host '
            "seen for the first time."
        )
    return "remember" if policy == "accept-new" else "accept"


def remember_host_key(path: str, host_id: str, key: paramiko.PKey) -> None:
    """Append the host's key to a known_hosts file (created 0600 in a 0700 dir)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    line = f"{host_id} {key.get_name()} {key.get_base64()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as fh:
        fh.write(line)


def verify_host_key(
    transport: paramiko.Transport, endpoint: Endpoint, known: paramiko.HostKeys, policy: str
) -> None:
    """Apply :func:`check_host_key` to the server's key: record a first-seen key, and say
    so at WARNING, as any key accepted without verification."""
    key = transport.get_remote_server_key()
    decision = check_host_key(endpoint, key, known, policy)
    if decision == "remember":
        remember_host_key(endpoint.known_hosts[0], endpoint.host_id, key)
        dlog.warning(
            "first connection to %s: trusting its %s key %s and recording it in %s "
            "(host_key_policy accept-new; set it to reject to refuse unknown hosts)",
            endpoint.host_id,
            key.get_name(),
            fingerprint(key),
            endpoint.known_hosts[0],
        )
    elif decision == "accept":
        dlog.warning(
            "host %s is not in known_hosts; accepting its %s key %s without "
            "verification (host_key_policy auto-add)",
            endpoint.host_id,
            key.get_name(),
            fingerprint(key),
        )


# -- authentication -------------------------------------------------------------------
def answer_prompts(
    prompts: Sequence[tuple[str, bool]],
    password: str | None,
    totp_secret: str | None,
    code: Callable[[], str] | None = None,
) -> list[str]:
    """Answers to keyboard-interactive prompts: one-time codes and passwords.

    A prompt mentioning a code/token/OTP gets the current TOTP of ``totp_secret`` (or
    what ``code()`` returns); a password prompt (or any hidden prompt) gets ``password``.

    Examples
    --------
    >>> answer_prompts([("Password: ", False)], "pw", None)
    ['pw']
    """
    from dpdispatcher.utils.utils import generate_totp

    answers = []
    for text, echo in prompts:
        low = text.lower()
        if totp_secret and any(word in low for word in _CODE_WORDS):
            answers.append(code() if code is not None else generate_totp(totp_secret))
        elif password is not None and ("password" in low or not echo):
            answers.append(password)
        else:
            answers.append("")
    return answers


class FreshCodes:
    """TOTP codes for one session, remembering the last one given.

    A reconnection within the same 30 s window would send the same code again, which
    servers may refuse (a one-time code); :meth:`wait_for_next` then waits for a new
    one before trying again.
    """

    def __init__(self, secret: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._secret = Secret(secret)
        self._last = ""
        self._sleep = sleep
        self.reused = False

    def _now(self) -> str:
        from dpdispatcher.utils.utils import generate_totp

        return generate_totp(self._secret.reveal())

    def __call__(self) -> str:
        code = self._now()
        self.reused = code == self._last
        self._last = code
        return code

    def wait_for_next(self) -> None:
        """Sleep until the current code differs from the last one given (<= 31 s)."""
        for _ in range(62):
            if self._now() != self._last:
                return
            self._sleep(0.5)


def load_private_key(path: str, passphrase: str | None) -> paramiko.PKey:
    """Load an RSA, ECDSA or Ed25519 private key file.

    Raises :class:`SSHAuthenticationError` (naming the file, never the passphrase) if
    it cannot be read, is encrypted without a passphrase, or the passphrase is wrong.
    """
    import paramiko

    if not os.path.isfile(path):
        raise SSHAuthenticationError(f"key file {path} does not exist")
    errors: list[str] = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(path, password=passphrase)
        except paramiko.PasswordRequiredException as err:
            raise SSHAuthenticationError(
                f"key file {path} is encrypted: set remote_profile.passphrase"
            ) from err
        except (paramiko.SSHException, ValueError, TypeError) as err:
            errors.append(type(err).__name__)
        except OSError as err:
            raise SSHAuthenticationError(f"cannot read key file {path}: {err.strerror}") from err
    raise SSHAuthenticationError(
        f"cannot load key file {path}: not an RSA, ECDSA or Ed25519 private key, or the "
        "passphrase is wrong"
    )


def discovered_keys(passphrase: str | None) -> list[tuple[str, paramiko.PKey]]:
    """Keys of the ssh-agent, then the default key files that load (quietly skipped)."""
    import paramiko

    out: list[tuple[str, paramiko.PKey]] = []
    if os.environ.get("SSH_AUTH_SOCK"):
        try:
            out.extend(("ssh-agent", key) for key in paramiko.Agent().get_keys())
        except (paramiko.SSHException, OSError) as err:
            dlog.debug("ssh-agent unavailable: %s", err)
    for name in DISCOVERED_KEYS:
        path = os.path.expanduser(name)
        if not os.path.isfile(path):
            continue
        try:
            out.append((path, load_private_key(path, passphrase)))
        except SSHAuthenticationError as err:
            dlog.debug("skipping %s", err)
    return out


class AuthState:
    """Tracks which methods the server still allows and which ones were tried."""

    def __init__(self, transport: paramiko.Transport, username: str) -> None:
        import paramiko

        self.transport = transport
        self.tried: list[str] = []
        self.allowed: list[str] = ["publickey", "keyboard-interactive", "password"]
        self.done = False
        try:
            transport.auth_none(username)
            self.done = transport.is_authenticated()
        except paramiko.BadAuthenticationType as err:
            self.allowed = list(err.allowed_types)
        except paramiko.AuthenticationException:
            pass
        except (paramiko.SSHException, OSError, EOFError) as err:
            raise SSHConnectionError(f"connection lost during authentication: {err}") from err

    def attempt(self, method: str, label: str, call: Callable[[], Any]) -> bool:
        """Try one method if the server allows it; True once fully authenticated."""
        import paramiko

        if method not in self.allowed:
            return False
        self.tried.append(label)
        try:
            remaining = call()
        except paramiko.BadAuthenticationType as err:
            self.allowed = list(err.allowed_types)
            return False
        except paramiko.AuthenticationException:
            return False
        except (paramiko.SSHException, OSError, EOFError) as err:
            if self.transport.is_active():
                return False
            raise SSHAuthenticationError(
                f"the server closed the connection during authentication ({label}): {err}"
            ) from err
        if self.transport.is_authenticated():
            return True
        if remaining:
            self.allowed = list(remaining)
        return False


@dataclass(frozen=True)
class Credentials:
    """What a session may log in with (the secrets revealed only while logging in)."""

    key_filename: str | None
    passphrase: Secret | None
    password: Secret | None
    totp_secret: Secret | None
    codes: FreshCodes | None
    look_for_keys: bool


def authenticate(transport: paramiko.Transport, endpoint: Endpoint, cred: Credentials) -> None:
    """Log in: key files, then (``look_for_keys``) the agent's and the default keys, then
    keyboard-interactive (password and one-time code), then the password.

    Raises :class:`SSHAuthenticationError` naming the methods tried and those the server
    accepts.
    """
    state = AuthState(transport, endpoint.username)
    if state.done:
        return
    for label, key in _candidate_keys(endpoint, cred):
        call = functools.partial(transport.auth_publickey, endpoint.username, key)
        if state.attempt("publickey", label, call):
            return
    password = reveal(cred.password)
    if (password is not None or reveal(cred.totp_secret)) and _interactive(
        state, transport, endpoint.username, cred
    ):
        return
    if password is not None and state.attempt(
        "password", "password", lambda: transport.auth_password(endpoint.username, password)
    ):
        return
    raise SSHAuthenticationError(
        f"authentication to {endpoint} failed (tried: {', '.join(state.tried) or 'nothing'}; "
        f"the server accepts: {', '.join(state.allowed) or 'nothing'}). Check username, "
        "key_filename/passphrase, password or totp_secret in remote_profile."
    )


def _candidate_keys(endpoint: Endpoint, cred: Credentials) -> Iterator[tuple[str, paramiko.PKey]]:
    """The keys to offer, each loaded only when the previous one was refused."""
    for path in endpoint.key_files:
        if os.path.isfile(path) or path == cred.key_filename:
            yield f"key {path}", load_private_key(path, reveal(cred.passphrase))
    if cred.look_for_keys:
        for where, key in discovered_keys(reveal(cred.passphrase)):
            yield f"key {where}", key


def _interactive(
    state: AuthState, transport: paramiko.Transport, username: str, cred: Credentials
) -> bool:
    """Keyboard-interactive with the password and one-time codes; once more after the
    next code when the server refused a code already used."""

    password, totp = reveal(cred.password), reveal(cred.totp_secret)

    def handler(title: str, instructions: str, prompts: Sequence[tuple[str, bool]]) -> list[str]:
        return answer_prompts(prompts, password, totp, cred.codes)

    def interactive() -> Any:
        return transport.auth_interactive(username, handler)

    if state.attempt("keyboard-interactive", "keyboard-interactive", interactive):
        return True
    codes = cred.codes
    if codes is not None and codes.reused:  # refused a code already used: wait
        codes.wait_for_next()
        return state.attempt("keyboard-interactive", "keyboard-interactive", interactive)
    return False
