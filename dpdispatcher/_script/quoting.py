"""The one place where values are made safe for a shell or a scheduler directive.

Values (paths, file names, queue and job names, module names, job ids) go through
these helpers. Raw-shell fields (``command``, ``custom_flags``, ``prepend_script``,
``append_script``) are inserted verbatim by contract and never pass through here.
"""

from __future__ import annotations

import hashlib
import re
import shlex

from dpdispatcher.errors import ConfigurationError, ConfigurationTypeError, SchedulerError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOB_ID = re.compile(r"^[A-Za-z0-9_.:\[\]@-]{1,128}$")
# ``$NAME`` or ``${`` may expand inside an env value; every other ``$`` is literal.
_DOLLAR_NOT_EXPANDING = re.compile(r"\$(?![A-Za-z_{])")
#: a reference that expands inside an env value
_VAR_REF = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")
#: runs of characters a scheduler job name cannot hold (a directive cannot be quoted)
_JOB_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is made of the digits 0-9 alone (and is not empty).

    Checked on its bytes: ``str.isdigit`` looks each character up in the Unicode tables,
    several times slower on the long joined id lists of a poll, and true for other
    digits than 0-9.

    >>> ascii_digits("12345"), ascii_digits("12.pbs"), ascii_digits("\u0663"), ascii_digits("")
    (True, False, False, False)
    """
    return text.isascii() and text.encode("ascii").isdigit()


def sh(value: str) -> str:
    """Quote ``value`` as one shell word (single quotes; nothing inside expands)."""
    return shlex.quote(str(value))


def env_name(name: object) -> str:
    """Validate an environment variable name (a portable POSIX name, as 1.1.0 requires)."""
    if not isinstance(name, str):
        raise ConfigurationTypeError(
            f"resources/envs: environment variable names must be strings, got {name!r}"
        )
    if not _ENV_NAME.fullmatch(name):
        raise ConfigurationError(
            f"resources/envs: {name!r} is not a valid POSIX environment variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    return name


def env_value(value: object) -> str:
    """Quote an env value: single quotes, or double quotes when it refers to a variable.

    ``$NAME`` and ``${NAME}`` still expand (users write ``"PATH": "/opt/bin:$PATH"``),
    but command substitution, backticks, quotes and backslashes are literal. A value
    without such a reference is quoted as 1.1.0 quotes every value (:func:`sh`).

    >>> env_value("a b"), env_value("4"), env_value("/opt/bin:$PATH")
    ("'a b'", '4', '"/opt/bin:$PATH"')
    """
    text = str(value)
    if "\0" in text:
        raise ConfigurationError(
            f"resources/envs or source_list: {text!r} contains a NUL character, which no "
            "environment variable or shell word can hold"
        )
    if not _VAR_REF.search(text):
        return sh(text)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    text = _DOLLAR_NOT_EXPANDING.sub(lambda _m: "\\$", text)
    return f'"{text}"'


_ACTIVE_UNQUOTED = frozenset(";&|<>()$`*?[]{}~!#\\\n\r")
_ACTIVE_IN_DOUBLE = frozenset("$`\\")


def is_static(entry: str) -> bool:
    """Whether ``entry`` holds only static shell words: quotes are allowed, but nothing
    outside single quotes may expand, redirect, glob or start another command.

    >>> is_static("'/opt/C# [x]/setup.sh' --flag 'a b'"), is_static("a.sh; rm x")
    (True, False)
    >>> is_static('"${HOME}/a.sh"'), is_static("'${HOME}/a.sh'"), is_static("~/a.sh")
    (False, True, False)
    """
    quote = ""
    for ch in entry:
        if quote == "'":
            quote = "" if ch == "'" else quote
        elif quote == '"':
            if ch in _ACTIVE_IN_DOUBLE:
                return False
            quote = "" if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _ACTIVE_UNQUOTED:
            return False
    return not quote


def static_words(entry: str, key: str) -> list[str]:
    """The shell words of a ``module_list`` / ``source_list`` entry, each to be quoted.

    Raises :class:`ConfigurationError` naming ``key`` for shell code (operators,
    expansions, globs, an option as first word): such lines belong in ``prepend_script``.
    """
    words = shlex.split(entry) if is_static(entry) else ["-"]
    if words and words[0].startswith("-"):
        raise ConfigurationError(
            f"{key}: {entry!r} is not a list of static shell words; put shell operators "
            "or expansions in prepend_script"
        )
    return words


def source_line(entry: str) -> str | None:
    """The ``source`` line of a ``source_list`` entry (None for a blank entry).

    Static words are quoted one by one, as 1.1.0 writes them (a file and its arguments).
    One more form is kept from this package: a single path starting with ``~/`` or
    holding ``$NAME`` references, which expand (see :func:`path_value`). Anything else
    is shell code and is refused, pointing at ``prepend_script``.

    >>> source_line("'/opt/a b/env.sh' --flag"), source_line("   ")
    ("source '/opt/a b/env.sh' --flag", None)
    >>> source_line("~/my env.sh")
    "source ~/'my env.sh'"
    """
    if not entry.strip():
        return None
    if is_static(entry):
        return "source " + " ".join(sh(w) for w in static_words(entry, "resources/source_list"))
    rest = _VAR_REF.sub("x", entry.removeprefix("~/"))
    if "'" in rest or '"' in rest or not is_static(rest) or rest.startswith("-"):
        static_words(entry, "resources/source_list")  # raises: shell code
    return f"source {path_value(entry)}"


def path_value(path: str) -> str:
    """Quote a path the user may write with ``~/`` or ``$HOME`` (e.g. in ``source_list``).

    A leading ``~/`` and ``$NAME`` references expand; nothing else does.
    """
    if path.startswith("~/"):
        return "~/" + env_value(path[2:])
    return env_value(path)


def directive_value(value: str, key: str) -> str:
    """Check a value bound for a scheduler directive line (``#SBATCH --partition Q``).

    Directive lines cannot be quoted, so a value that could start a new line or a new
    option is refused.
    """
    if any(ch in value for ch in "\n\r\0") or value != value.strip() or " " in value:
        raise ConfigurationError(
            f"{key}: {value!r} cannot be used in a scheduler directive "
            "(no spaces, line breaks or NUL allowed)"
        )
    return value


def job_id(value: str) -> str:
    """Validate a job id read back from a scheduler or a state file."""
    if not _JOB_ID.match(value):
        raise SchedulerError(f"refusing job id {value!r}: it is not a plain scheduler job id")
    return value


def scheduler_job_name(
    name: str, job_hash: str, max_len: int = 128, letter_first: bool = False
) -> str:
    """A job name every scheduler accepts on a directive line, as the original writes it.

    Runs of other characters than letters, digits, ``_ . -`` become one ``-``, and
    ``- _ .`` are stripped from both ends; nothing left gives ``dp-<job hash[:8]>``.
    With ``letter_first`` (PBS, Torque, Grid Engine) a name not starting with a letter
    gets a ``j-`` prefix. A name longer than ``max_len`` keeps its first
    ``max_len - 9`` characters (less a trailing ``-``), then ``-`` and 8 hex digits
    of the SHA-1 of the name as given (so two long names stay apart).

    >>> scheduler_job_name("relax Fe/bcc #1", "abcdef0123")
    'relax-Fe-bcc-1'
    >>> scheduler_job_name("###", "abcdef0123"), scheduler_job_name("1st", "x", letter_first=True)
    ('dp-abcdef01', 'j-1st')
    >>> scheduler_job_name("a_rather_long_job_name_for_pbs", "x", max_len=15)
    'a_rath-789ceaa9'
    >>> scheduler_job_name("123 very long calculation", "x", max_len=15, letter_first=True)
    'j-123-55b713a1'
    """
    cleaned = _JOB_NAME_UNSAFE.sub("-", name).strip("-_.")
    if not cleaned:
        return f"dp-{job_hash[:8]}"
    if letter_first and not cleaned[0].isalpha():
        cleaned = f"j-{cleaned}"
    if len(cleaned) > max_len:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        cleaned = f"{cleaned[: max_len - 9].rstrip('-')}-{digest}"
    return cleaned
