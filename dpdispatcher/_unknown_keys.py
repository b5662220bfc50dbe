"""Finding the keys of a configuration dictionary that its dargs schema does not define.

Unknown keys are tolerated (with a warning) unless the caller asks for strictness, so
the finding is separate from the reporting: :func:`find_unknown_keys` only looks.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UnknownKey:
    """One key the schema does not define.

    ``where`` is the slash path of the dictionary holding it (e.g.
    ``machine/remote_profile``), ``hint`` a ready-to-append "did you mean" clause, and
    ``parent`` the dictionary itself (so the caller can drop the key).
    """

    where: str
    key: str
    hint: str
    parent: dict[str, Any]


def suggestion(key: str, valid: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest valid key, else the list of valid keys."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (valid keys: {', '.join(sorted(valid))})" if valid else ""


def find_unknown_keys(
    schema: Any, value: Any, where: str, skip: tuple[str, ...] = ()
) -> list[UnknownKey]:
    """Unknown keys in ``value`` (already normalized against ``schema``), depth first.

    A dictionary whose schema defines no sub-keys is free-form and never reported, as in
    dargs' own strict check. Paths in ``skip`` are relative to the root.
    """
    found: list[UnknownKey] = []
    _walk(schema, value, where, "", skip, found)
    return found


def _walk(
    arg: Any, value: Any, where: str, rel: str, skip: tuple[str, ...], found: list[UnknownKey]
) -> None:
    if not isinstance(value, dict) or rel in skip:
        return
    allowed = arg.flatten_sub(value, [])
    if not allowed:
        return
    for key in list(value):
        if key == "$schema":
            continue
        sub = allowed.get(key)
        if sub is None:
            found.append(UnknownKey(where, str(key), suggestion(str(key), list(allowed)), value))
            continue
        child_rel = f"{rel}/{key}" if rel else str(key)
        if getattr(sub, "sub_fields", None) or getattr(sub, "sub_variants", None):
            _walk(sub, value[key], f"{where}/{key}", child_rel, skip, found)
