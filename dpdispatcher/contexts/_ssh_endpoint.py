"""Where to connect: the SSH endpoint from the profile, completed by ``~/.ssh/config``.

Pure except the lookup of the config file; paramiko is imported inside functions only.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dpdispatcher.dlog import dlog

__all__ = [
    "DEFAULT_KNOWN_HOSTS",
    "GLOBAL_KNOWN_HOSTS",
    "Endpoint",
    "lookup_ssh_config",
    "proxy_jump_command",
    "resolve_endpoint",
]

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"


@dataclass(frozen=True)
class Endpoint:
    """The resolved connection target (profile values, completed by ``~/.ssh/config``)."""

    hostname: str
    port: int
    username: str
    key_files: tuple[str, ...]
    proxy_command: str | None
    known_hosts: tuple[str, ...]
    read_only_known_hosts: tuple[str, ...] = ()

    @property
    def host_id(self) -> str:
        """The name of this host in known_hosts (``[host]:port`` unless port 22)."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.username}@{self.hostname}:{self.port}"


def lookup_ssh_config(alias: str, path: str = "~/.ssh/config") -> dict[str, Any]:
    """The ``Host`` entry of ``alias`` in an OpenSSH client config (``{}`` if none)."""
    import paramiko

    full = os.path.expanduser(path)
    if not os.path.isfile(full):
        return {}
    try:
        return dict(paramiko.SSHConfig.from_path(full).lookup(alias))
    except Exception as err:  # noqa: BLE001 - a broken user config must not block us
        dlog.warning("ignoring %s: %s", full, err)
        return {}


def _expand_proxy(command: str, host: str, port: int, user: str) -> str:
    out, i = [], 0
    while i < len(command):
        ch = command[i]
        if ch == "%" and i + 1 < len(command):
            nxt = command[i + 1]
            repl = {"h": host, "p": str(port), "r": user, "%": "%"}.get(nxt)
            if repl is not None:
                out.append(repl)
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def proxy_jump_command(jump: str, host: str, port: int) -> str:
    """An OpenSSH ProxyJump value as the equivalent ProxyCommand."""
    hops = [h.strip() for h in jump.split(",") if h.strip()]
    last = hops[-1]
    user, _, hostport = last.rpartition("@")
    jhost, jport = hostport, ""
    if hostport.count(":") == 1:
        jhost, jport = hostport.split(":")
    argv = ["ssh"]
    if len(hops) > 1:
        argv += ["-J", ",".join(hops[:-1])]
    if user:
        argv += ["-l", user]
    if jport:
        argv += ["-p", jport]
    argv += ["-W", f"{host}:{port}", jhost]
    return shlex.join(argv)


def resolve_endpoint(
    alias: str,
    *,
    username: str | None,
    port: int,
    key_filename: str | Sequence[str] | None,
    proxy_command: str | None,
    known_hosts: str | None,
    host_config: dict[str, Any],
) -> Endpoint:
    """Complete the profile with ``host_config`` (a ``~/.ssh/config`` lookup).

    The config fills only what the profile leaves unset: ``HostName``, ``Port`` (when
    the profile has the default 22), ``User``, ``IdentityFile`` (tried after
    ``key_filename``), ``ProxyCommand``/``ProxyJump`` and ``UserKnownHostsFile``.

    Examples
    --------
    >>> ep = resolve_endpoint("c", username=None, port=22, key_filename=None,
    ...     proxy_command=None, known_hosts=None,
    ...     host_config={"hostname": "10.0.0.5", "port": "2222", "user": "bob"})
    >>> ep.host_id, ep.username
    ('[10.0.0.5]:2222', 'bob')
    """
    hostname = str(host_config.get("hostname") or alias)
    if port == 22 and str(host_config.get("port", "")).isdigit():
        port = int(host_config["port"])
    user = str(username or host_config.get("user") or _local_user())
    files, read_only = _known_hosts_files(known_hosts, host_config)
    return Endpoint(
        hostname,
        int(port),
        user,
        tuple(os.path.expanduser(k) for k in _key_files(key_filename, host_config)),
        _proxy(proxy_command, host_config, hostname, port, user),
        tuple(os.path.expanduser(f) for f in files),
        read_only,
    )


def _key_files(key_filename: str | Sequence[str] | None, host_config: dict[str, Any]) -> list[str]:
    """The profile's key files, then the config's ``IdentityFile`` entries not among them."""
    keys: list[str] = []
    if isinstance(key_filename, str):
        keys.append(key_filename)
    elif key_filename:
        keys.extend(key_filename)
    keys.extend(k for k in host_config.get("identityfile", []) if k not in keys)
    return keys


def _proxy(
    proxy_command: str | None, host_config: dict[str, Any], hostname: str, port: int, user: str
) -> str | None:
    """The profile's proxy command (``%h %p %r`` expanded), else the config's
    ``ProxyCommand``, else its ``ProxyJump`` as a command; None for a direct connection."""
    if proxy_command:
        return _expand_proxy(proxy_command, hostname, port, user) or None
    if host_config.get("proxycommand", "none").lower() != "none":
        return str(host_config["proxycommand"]) or None
    if host_config.get("proxyjump", "none").lower() != "none":
        return proxy_jump_command(str(host_config["proxyjump"]), hostname, port)
    return None


def _known_hosts_files(
    known_hosts: str | None, host_config: dict[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The known_hosts files written to and those only read: the profile's file, else
    the config's ``UserKnownHostsFile``, else OpenSSH's user file (and its global one,
    read only)."""
    if known_hosts:
        return (known_hosts,), ()
    if host_config.get("userknownhostsfile"):
        return tuple(shlex.split(str(host_config["userknownhostsfile"]))), ()
    return (DEFAULT_KNOWN_HOSTS,), (GLOBAL_KNOWN_HOSTS,)


def _local_user() -> str:
    import getpass

    return getpass.getuser()
