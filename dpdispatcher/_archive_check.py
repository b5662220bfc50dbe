"""Pure checks of archive members received from a remote (tar now, zip for the cloud).

An archive coming back from a cluster is data from another machine: a member named
``/etc/x`` or ``../../x``, a symbolic or hard link pointing out of the target, or a
device file must never be written. The checks are pure functions over member
descriptions (:class:`Member`), shared by the tar and zip readers of
:mod:`dpdispatcher._archive` and :mod:`dpdispatcher.utils.archive`:

- :func:`member_parts` validates one member name (the rule of
  :mod:`dpdispatcher._relpath`, a backslash refused);
- :class:`ArchiveChecker` validates members one by one, remembering the links seen so
  far (a member whose path runs through a link is refused) and, in
  :meth:`ArchiveChecker.finish`, resolves every link against all the others.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from dpdispatcher._relpath import Breach, relative_parts
from dpdispatcher.errors import UnsafeArchiveError

__all__ = [
    "ArchiveChecker",
    "Kind",
    "Member",
    "Parts",
    "check_members",
    "member_parts",
    "unsafe_member",
]

_MAX_LINK_HOPS = 40

Parts = tuple[str, ...]


class Kind(enum.Enum):
    """What an archive member is."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"  # devices, FIFOs, sockets: always refused


@dataclass(frozen=True)
class Member:
    """A format-neutral description of one archive member."""

    name: str
    kind: Kind
    linkname: str = ""


def unsafe_member(name: str, why: str) -> UnsafeArchiveError:
    """The error refusing archive member ``name`` because of ``why``."""
    return UnsafeArchiveError(f"archive member {name!r}: {why}")


_WHY = {
    Breach.NUL: "contains a NUL character",
    Breach.ABSOLUTE: "is an absolute path",
    Breach.BACKSLASH: "contains a backslash",
    Breach.PARENT: "climbs out of the target with '..'",
}


def _refuse(breach: Breach, name: str) -> UnsafeArchiveError:
    """The error for a member name breaking the rule of :mod:`dpdispatcher._relpath`."""
    return unsafe_member(name, _WHY[breach])


def member_parts(name: str) -> Parts:
    """The components of a member name, normalised; raise if it could escape.

    Refuses empty and absolute names (also ``C:`` drive names), ``..`` components,
    NUL characters and backslashes (a Windows separator). ``.`` components and
    repeated slashes are dropped; the archive root itself gives ``()``.

    Examples
    --------
    >>> member_parts("./a//b/")
    ('a', 'b')
    """
    if not isinstance(name, str):
        raise unsafe_member(str(name), _WHY[Breach.NUL])
    return relative_parts(name, _refuse, backslash_separates=False)


def _resolve(start: Parts, target: str, links: dict[Parts, str], name: str) -> Parts:
    """Resolve ``target`` (relative to directory ``start``) inside the archive tree.

    ``links`` maps the path of every symbolic link member to its target, so links
    through links are followed; leaving the root at any step raises.
    """
    resolved = list(start)
    pending = [p for p in target.split("/") if p not in ("", ".")][::-1]
    if target.startswith("/"):
        raise unsafe_member(name, f"links to the absolute path {target!r}")
    hops = 0
    while pending:
        comp = pending.pop()
        if comp == "..":
            if not resolved:
                raise unsafe_member(name, f"link target {target!r} points outside the target")
            resolved.pop()
            continue
        resolved.append(comp)
        inner = links.get(tuple(resolved))
        if inner is None:
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            raise unsafe_member(name, "link chain too long (a loop?)")
        if inner.startswith("/"):
            raise unsafe_member(name, f"link target {target!r} runs through an absolute link")
        resolved.pop()
        pending.extend(p for p in reversed(inner.split("/")) if p not in ("", "."))
    return tuple(resolved)


class ArchiveChecker:
    """Validate archive members one at a time, then all together.

    :meth:`check` must be called for each member in archive order before it is
    written; :meth:`finish` re-checks every link against the complete set of links.
    """

    def __init__(self) -> None:
        self.links: dict[Parts, str] = {}
        self.kinds: dict[Parts, Kind] = {}
        self.link_members: list[tuple[Parts, Member]] = []

    def check(self, member: Member) -> Parts:
        """Validate ``member``; return its normalised path components."""
        parts = member_parts(member.name)
        if member.kind is Kind.OTHER:
            raise unsafe_member(member.name, "is a device, FIFO or other special file")
        if not parts:
            if member.kind is Kind.DIR:
                return parts
            raise unsafe_member(member.name, "has an empty name")
        for depth in range(1, len(parts)):
            if parts[:depth] in self.links:
                raise unsafe_member(member.name, "is written through a link member")
            if self.kinds.get(parts[:depth], Kind.DIR) is not Kind.DIR:
                raise unsafe_member(member.name, "is inside a member that is not a directory")
        previous = self.kinds.get(parts)
        if previous is not None and (
            previous is not member.kind or member.kind in (Kind.SYMLINK, Kind.HARDLINK)
        ):
            raise unsafe_member(member.name, "appears twice with different contents")
        if member.kind is Kind.SYMLINK:
            _resolve(parts[:-1], member.linkname, self.links, member.name)
            self.links[parts] = member.linkname
            self.link_members.append((parts, member))
        elif member.kind is Kind.HARDLINK:
            try:
                target = member_parts(member.linkname) if member.linkname else ()
            except UnsafeArchiveError:
                target = ()
            if self.kinds.get(target) is not Kind.FILE or target in self.links:
                raise unsafe_member(
                    member.name,
                    f"hard link to {member.linkname!r}, which is not an "
                    "earlier regular file of the archive",
                )
        self.kinds[parts] = member.kind
        return parts

    def unsafe_links(self) -> list[tuple[Parts, UnsafeArchiveError]]:
        """Links that escape once every other link is known (they must not be kept)."""
        bad = []
        for parts, member in self.link_members:
            try:
                _resolve(parts[:-1], member.linkname, self.links, member.name)
            except UnsafeArchiveError as err:
                bad.append((parts, err))
        return bad

    def finish(self) -> None:
        """Resolve every symbolic link with knowledge of all the others; raise on one."""
        for _parts, err in self.unsafe_links():
            raise err


def check_members(members: Iterable[Member]) -> list[Parts]:
    """Validate a whole member list (pure); return the normalised paths.

    Examples
    --------
    >>> check_members([Member("a", Kind.DIR), Member("a/l", Kind.SYMLINK, "../b")])
    [('a',), ('a', 'l')]
    >>> check_members([Member("l", Kind.SYMLINK, "/etc")])
    Traceback (most recent call last):
    ...
    dpdispatcher.errors.UnsafeArchiveError: archive member 'l': links to the absolute path '/etc'
    """
    checker = ArchiveChecker()
    out = [checker.check(m) for m in members]
    checker.finish()
    return out
