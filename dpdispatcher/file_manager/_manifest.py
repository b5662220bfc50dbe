"""Manifests: which source goes to which destination, resolved before any transfer.

:class:`ManifestBuilder` expands patterns on this machine's filesystem,
:class:`RemoteManifestBuilder` against an index of remote paths (a transport lists the
remote files once, then matches every pattern locally), and
:class:`SubmissionStagingPlan` compiles a whole submission into an upload or a download
manifest. The result, a :class:`ResolvedManifest`, lists :class:`FileEntry` transfers
(sorted by destination, one source per destination) and the :class:`MissingEntry`
requests that matched nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpdispatcher._files import backward_requests, has_magic
from dpdispatcher.errors import StagingPathError
from dpdispatcher.file_manager._paths import PathPolicy, PathResolver, StrPath

if TYPE_CHECKING:
    from dpdispatcher.submission import Submission

__all__ = [
    "FileEntry",
    "ManifestBuilder",
    "MissingEntry",
    "RemoteManifestBuilder",
    "ResolvedManifest",
    "SubmissionStagingPlan",
]

#: the source of an entry that only asks for its (empty) destination directory
DIRECTORY_MARKER = Path(".")


@dataclass(frozen=True)
class FileEntry:
    """One transfer: ``source`` (a path) to ``destination`` (relative to the target root).

    An entry whose source is ``Path(".")`` only creates the destination directory.
    """

    source: Path
    destination: str

    @property
    def is_symlink(self) -> bool:
        """Whether the source is a symbolic link (dangling or not)."""
        return self.source.is_symlink()

    @property
    def is_directory(self) -> bool:
        """Whether the source is a directory (a link to one counts)."""
        return self.source.is_dir()


@dataclass(frozen=True)
class MissingEntry:
    """A required ``pattern`` that matched nothing, for the destination ``destination_prefix``."""

    pattern: str
    destination_prefix: str


@dataclass
class ResolvedManifest:
    """Concrete transfers plus the requests that could not be resolved."""

    entries: list[FileEntry]
    missing: list[MissingEntry]

    def unique(self) -> ResolvedManifest:
        """This manifest sorted by destination, repeated entries dropped.

        Raises
        ------
        ValueError
            Two different sources map to the same destination
            (:class:`~dpdispatcher.errors.StagingPathError`).
        """
        by_destination: dict[str, FileEntry] = {}
        for entry in self.entries:
            seen = by_destination.setdefault(entry.destination, entry)
            if seen.source != entry.source:
                raise StagingPathError(
                    f"multiple source files map to the same destination "
                    f"{entry.destination}: {seen.source} and {entry.source}"
                )
        entries = [by_destination[key] for key in sorted(by_destination)]
        return ResolvedManifest(entries, list(self.missing))


class ManifestBuilder:
    """Collect transfers from local directories (upload, or download from a local root).

    Every ``add_*`` method returns the builder, so calls chain.
    """

    def __init__(self) -> None:
        self._entries: list[FileEntry] = []
        self._missing: list[MissingEntry] = []

    @property
    def missing(self) -> list[MissingEntry]:
        """The required patterns that matched nothing so far."""
        return list(self._missing)

    def add_paths(
        self,
        *,
        source_root: StrPath,
        destination_prefix: str,
        patterns: Sequence[str],
        required: bool = True,
        fallback_root: StrPath | None = None,
    ) -> ManifestBuilder:
        """Expand ``patterns`` under ``source_root``; each match goes to the same relative
        path under ``destination_prefix``.

        Parameters
        ----------
        source_root : str or os.PathLike
            Where the patterns are expanded.
        destination_prefix : str
            Relative directory of the destinations.
        patterns : sequence of str
            Relative paths or globs.
        required : bool
            Record a pattern that matches nothing in :attr:`missing`.
        fallback_root : str or os.PathLike, optional
            Where a pattern matching nothing is looked for again (e.g. the local
            directory a previous download already filled); a match there is neither
            transferred nor missing.
        """
        prefix = PathPolicy.normalize_relative(destination_prefix)
        source = PathResolver(source_root)
        fallback = PathResolver(fallback_root) if fallback_root is not None else None
        for pattern in patterns:
            matches = source.expand(pattern)
            for match in matches:
                destination = PathPolicy.join_relative(prefix, source.relative(match))
                self._entries.append(FileEntry(match, destination))
            if matches or not required or (fallback and fallback.expand(pattern)):
                continue
            self._missing.append(MissingEntry(pattern, prefix))
        return self

    def add_directory(self, destination: str) -> ManifestBuilder:
        """Ask for the (possibly empty) directory ``destination`` to exist at the target."""
        self._entries.append(
            FileEntry(DIRECTORY_MARKER, PathPolicy.normalize_relative(destination))
        )
        return self

    def build(self) -> ResolvedManifest:
        """A sorted, deduplicated snapshot (:meth:`ResolvedManifest.unique`)."""
        return ResolvedManifest(list(self._entries), list(self._missing)).unique()


# ---- remote index ------------------------------------------------------------------

_Node = dict[str, "_Tree"]


class _Tree:
    """A directory tree of indexed paths; ``listed`` marks paths of the index itself."""

    __slots__ = ("children", "listed")

    def __init__(self) -> None:
        self.children: _Node = {}
        self.listed = False

    @classmethod
    def of(cls, paths: Iterable[str]) -> _Tree:
        root = cls()
        for path in paths:
            node = root
            for part in _parts(PathPolicy.normalize_relative(path, allow_glob=True)):
                node = node.children.setdefault(part, cls())
            node.listed = True
        return root

    def find(self, path: str) -> _Tree | None:
        node: _Tree | None = self
        for part in _parts(path):
            node = node.children.get(part) if node else None
        return node


def _parts(path: str) -> list[str]:
    """The components of a normalised relative path (none for ``"."``)."""
    return [] if path == "." else path.split("/")


def _segment_matches(name: str, pattern: str) -> bool:
    """:mod:`glob`'s rule for one path component: a leading dot must be matched literally."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _walk(node: _Tree, parts: Sequence[str], path: str, out: set[str]) -> None:
    """Add to ``out`` every listed path below ``node`` that the pattern ``parts`` matches.

    ``*`` and ``?`` stay within one component; ``**`` matches zero or more components
    that are not dot files, like :func:`glob.glob` with ``recursive=True``.
    """
    if not parts:
        if node.listed:
            out.add(path)
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        _walk(node, rest, path, out)
        for name, child in node.children.items():
            if not name.startswith("."):
                _walk(child, parts, f"{path}/{name}" if path else name, out)
        return
    for name, child in node.children.items():
        if (name == head) if not has_magic(head) else _segment_matches(name, head):
            _walk(child, rest, f"{path}/{name}" if path else name, out)


class RemoteManifestBuilder:
    """Build a manifest from an index of remote paths instead of a filesystem.

    Parameters
    ----------
    available_paths : sequence of str
        The paths present on the remote side, relative to its root (files, and any
        directory that may be requested by name).
    exists : callable, optional
        Asked about a literal path that is not in the index.
    assume_literals : bool
        Take a literal path that is not in the index as present (the transfer itself
        then reports it if it is not); otherwise it is present only when ``exists`` says
        so.
    """

    def __init__(
        self,
        available_paths: Sequence[str] = (),
        *,
        exists: Callable[[str], bool] | None = None,
        assume_literals: bool = True,
    ) -> None:
        self._tree = _Tree.of(available_paths)
        self._exists = exists
        self._assume_literals = assume_literals
        self._entries: list[FileEntry] = []
        self._missing: list[MissingEntry] = []

    def _present(self, path: str) -> bool:
        node = self._tree.find(path)
        if node is not None and node.listed:
            return True
        if self._assume_literals:
            return True
        return self._exists is not None and self._exists(path)

    def add_paths(
        self,
        *,
        source_prefix: str,
        destination_prefix: str,
        patterns: Sequence[str],
        required: bool = True,
    ) -> RemoteManifestBuilder:
        """Match ``patterns`` under the remote directory ``source_prefix``; each match goes
        to the same relative path under ``destination_prefix``."""
        source = PathPolicy.normalize_relative(source_prefix)
        prefix = PathPolicy.normalize_relative(destination_prefix)
        for pattern in patterns:
            full = PathPolicy.join_relative(source, pattern)
            if has_magic(full):
                found: set[str] = set()
                _walk(self._tree, _parts(full), "", found)
                matches = sorted(found)
            else:
                matches = [full] if self._present(full) else []
            for match in matches:
                rel = self._relative_to_prefix(match, source)
                if rel is not None:
                    destination = PathPolicy.join_relative(prefix, rel)
                    self._entries.append(FileEntry(Path(match), destination))
            if required and not matches:
                self._missing.append(MissingEntry(pattern, prefix))
        return self

    @staticmethod
    def _match_path(path: str, pattern: str) -> bool:
        """Whether the remote ``path`` matches ``pattern`` (the rules of :func:`_walk`)."""
        found: set[str] = set()
        _walk(
            _Tree.of([path]),
            _parts(PathPolicy.normalize_relative(pattern, allow_glob=True)),
            "",
            found,
        )
        return bool(found)

    @staticmethod
    def _relative_to_prefix(path: str, prefix: str) -> str | None:
        """``path`` relative to the directory ``prefix``; None when it is not below it."""
        if prefix == ".":
            return path
        if path == prefix:
            return "."
        return path[len(prefix) + 1 :] if path.startswith(prefix + "/") else None

    def build(self) -> ResolvedManifest:
        """A sorted, deduplicated snapshot (:meth:`ResolvedManifest.unique`)."""
        return ResolvedManifest(list(self._entries), list(self._missing)).unique()


class SubmissionStagingPlan:
    """A submission's forward and backward files as manifests, independent of transport.

    Parameters
    ----------
    local_root : str or os.PathLike
        The work base the task directories are relative to.
    submission : Submission
        Its ``belonging_tasks`` and common files are planned.
    """

    def __init__(self, local_root: StrPath, submission: Submission) -> None:
        self.local_root = Path(local_root)
        self.submission = submission

    def upload_manifest(
        self, *, include_tasks: bool = True, include_common: bool = True
    ) -> ResolvedManifest:
        """The forward common files, then each task directory and its forward files.

        A pattern matching nothing is listed in ``missing`` (nothing is raised).
        """
        builder = ManifestBuilder()
        if include_common:
            builder.add_paths(
                source_root=self.local_root,
                destination_prefix=".",
                patterns=self.submission.forward_common_files,
            )
        for task in self.submission.belonging_tasks if include_tasks else []:
            directory = PathPolicy.normalize_relative(task.task_work_path)
            builder.add_directory(directory)
            builder.add_paths(
                source_root=self.local_root / directory,
                destination_prefix=directory,
                patterns=task.forward_files,
            )
        return builder.build()

    def download_manifest(
        self,
        remote_root: StrPath,
        *,
        fallback_root: StrPath | None = None,
        include_errors: bool = False,
    ) -> ResolvedManifest:
        """Every backward file of the tasks, then the backward common files, found under
        ``remote_root``.

        Parameters
        ----------
        remote_root : str or os.PathLike
            The job root (a directory on this machine) the results are in.
        fallback_root : str or os.PathLike, optional
            A pattern missing remotely but present here (already downloaded by an
            earlier attempt) is not reported missing.
        include_errors : bool
            Also fetch each task's ``error*`` files (never reported missing).
        """
        builder = ManifestBuilder()
        for request in backward_requests(self.submission, include_errors):
            directory = PathPolicy.normalize_relative(request.directory)
            builder.add_paths(
                source_root=Path(remote_root) / directory,
                destination_prefix=directory,
                patterns=[request.pattern],
                required=not request.optional,
                fallback_root=None if fallback_root is None else Path(fallback_root) / directory,
            )
        return builder.build()
