"""The ``remote_profile`` of SSHContext: its dargs schema, and building the session."""

from __future__ import annotations

import inspect
from typing import Any

from dpdispatcher._unknown_keys import suggestion
from dpdispatcher.contexts._ssh_session import SSHSession
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError

#: the type of an optional string field
_OPT_STR = [str, type(None)]


def remote_profile_fields() -> list[Any]:
    """The dargs fields of an SSH ``remote_profile`` (shared with :meth:`SSHSession.arginfo`)."""
    return [*_login_fields(), *_session_fields()]


def _login_fields() -> list[Any]:
    """Where to log in, as whom, with which secrets."""
    from dargs import Argument

    from dpdispatcher.arginfo import optional_field

    return [
        Argument("hostname", str, doc="Host name or IP address (or a ~/.ssh/config alias)."),
        Argument("username", str, doc="User name on the remote host."),
        Argument(
            "password",
            _OPT_STR,
            optional=True,
            doc="Password, used for keyboard-interactive and password logins.",
        ),
        optional_field("port", int, 22, "SSH port (22 lets a ~/.ssh/config Port entry apply)."),
        optional_field(
            "key_filename",
            _OPT_STR,
            None,
            "Private key file (RSA, ECDSA or Ed25519). If None, keys of the "
            "ssh-agent and ~/.ssh are tried (look_for_keys), then the password.",
        ),
        optional_field("passphrase", _OPT_STR, None, "Passphrase of the private key."),
        optional_field(
            "timeout",
            [int, float],
            10,
            "Seconds allowed to connect and complete the SSH handshake.",
        ),
        optional_field(
            "totp_secret",
            _OPT_STR,
            None,
            "Base32 secret of a time-based one-time password (2FA): one-time-code "
            "prompts of keyboard-interactive logins get the current code.",
        ),
    ]


def _session_fields() -> list[Any]:
    """How the session transfers files, finds keys, reaches and trusts the host."""
    from dargs import Argument

    from dpdispatcher.arginfo import optional_field

    return [
        optional_field(
            "tar_compress",
            bool,
            True,
            "Compress transfers with gzip (skipped automatically when samples of "
            "the large files show they do not compress).",
        ),
        optional_field(
            "look_for_keys",
            bool,
            True,
            "Try the keys of the ssh-agent and ~/.ssh/id_* when authenticating.",
        ),
        optional_field(
            "execute_command",
            _OPT_STR,
            None,
            "Shell command run on the remote host after each connection.",
        ),
        optional_field(
            "proxy_command",
            _OPT_STR,
            None,
            "Command connecting to the host, e.g. `ssh -W %h:%p user@bastion` "
            "(jump host); %h, %p and %r are replaced.",
        ),
        Argument(
            "known_hosts",
            _OPT_STR,
            optional=True,
            doc="known_hosts file verifying the host key (default ~/.ssh/known_hosts "
            "and /etc/ssh/ssh_known_hosts).",
        ),
        Argument(
            "host_key_policy",
            str,
            optional=True,
            doc="For a host absent from known_hosts: `accept-new` (default: trust on "
            "first use, record its key in known_hosts, log a WARNING with the "
            "fingerprint), `reject` (refuse, with instructions), or `auto-add` (trust "
            "it for this session only, with a warning). A changed host key is always "
            "refused, showing both fingerprints.",
        ),
        Argument(
            "archive_chunk_size",
            int,
            optional=True,
            doc="Largest part (bytes) of a download: above it the remote archive of the "
            "backward files is split (`split -b`) and each part is fetched, checked and "
            "retried on its own. 0 or absent: one stream. Needs `split` remotely.",
        ),
    ]


def make_session(profile: dict[str, Any]) -> SSHSession:
    """The session described by a ``remote_profile``.

    A key SSHSession does not take is ignored with a warning (did-you-mean); None values
    mean "the default".
    """
    accepted = [p for p in inspect.signature(SSHSession.__init__).parameters if p != "self"]
    for key in list(profile):
        if key not in accepted:
            dlog.warning(
                "SSHContext remote_profile: unknown key %r ignored%s",
                key,
                suggestion(str(key), accepted),
            )
    for key in ("hostname", "username"):
        if not profile.get(key):
            raise ConfigurationError(f"remote_profile/{key} is required for SSHContext")
    return SSHSession(**{k: v for k, v in profile.items() if v is not None and k in accepted})
