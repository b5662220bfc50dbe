"""The one lexical rule for a path relative to a root: staging paths and archive members.

A relative path may not hold a NUL, be absolute (a leading ``/``, or a drive such as
``C:`` — any character followed by ``:``, as 1.1.0 reads it), or climb out of its root
with ``..``. A backslash is either a separator (staging paths, as in 1.1.0) or refused
(archive members: a Windows separator in a name from another machine). Each caller
words its own error: it passes a ``refuse`` function mapping the :class:`Breach` and the
checked text to the exception to raise.

Examples
--------
>>> def refuse(breach, text):
...     return ValueError(breach.value)
>>> relative_parts("./a\\\\b//c", refuse, backslash_separates=True)
('a', 'b', 'c')
>>> relative_parts("a/../..", refuse, backslash_separates=True)
Traceback (most recent call last):
...
ValueError: parent
"""

from __future__ import annotations

import enum
from collections.abc import Callable

__all__ = ["Breach", "is_absolute", "relative_parts"]


class Breach(enum.Enum):
    """Which part of the rule a path breaks."""

    NUL = "nul"
    ABSOLUTE = "absolute"
    BACKSLASH = "backslash"
    PARENT = "parent"


#: builds the caller's exception from the rule broken and the text checked
Refuse = Callable[[Breach, str], Exception]


def is_absolute(text: str) -> bool:
    """Absolute on POSIX or Windows: a leading ``/`` or a drive (``C:``, any ``?:``)."""
    return text.startswith("/") or (len(text) > 1 and text[1] == ":")


def relative_parts(text: str, refuse: Refuse, *, backslash_separates: bool) -> tuple[str, ...]:
    """The components of relative path ``text`` without ``.`` and empty ones.

    Parameters
    ----------
    text : str
        The path; the root itself gives ``()``.
    refuse : callable
        ``refuse(breach, checked)`` returns the exception raised for a breach; ``checked``
        is ``text`` with backslashes made separators when ``backslash_separates``.
    backslash_separates : bool
        Read ``\\`` as ``/``; otherwise a backslash is a :attr:`Breach.BACKSLASH`.

    The checks run in this order: NUL, absolute, backslash, ``..``.
    """
    if "\0" in text:
        raise refuse(Breach.NUL, text)
    if backslash_separates:
        text = text.replace("\\", "/")
    if is_absolute(text):
        raise refuse(Breach.ABSOLUTE, text)
    if "\\" in text:
        raise refuse(Breach.BACKSLASH, text)
    parts = tuple(part for part in text.split("/") if part not in ("", "."))
    if ".." in parts:
        raise refuse(Breach.PARENT, text)
    return parts
