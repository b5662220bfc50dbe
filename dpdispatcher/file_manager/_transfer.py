"""Applying manifests on this machine, writing archives and text files, extracting archives.

The work is done by the package's existing primitives; these classes give them the
1.1.0 ``dpdispatcher.file_manager`` interface:

- replacing a destination: :mod:`dpdispatcher._replace` (staged beside the target, then
  renamed into place);
- writing a zip: :func:`dpdispatcher._archive_write.write_zip`;
- writing a text file atomically: :func:`dpdispatcher.contexts._local.atomic_write`;
- extracting an untrusted archive: :mod:`dpdispatcher.utils.archive` (all or nothing).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from dpdispatcher._archive_check import member_parts
from dpdispatcher._archive_write import write_zip
from dpdispatcher._replace import bring_back, remove_path, replace_with, staged_name
from dpdispatcher.contexts._local import atomic_write
from dpdispatcher.errors import MissingInputError
from dpdispatcher.file_manager._manifest import DIRECTORY_MARKER, ResolvedManifest
from dpdispatcher.file_manager._paths import PathResolver, StrPath
from dpdispatcher.utils.archive import safe_extract_tar, safe_extract_zip

__all__ = [
    "ArchiveBuilder",
    "AtomicTextWriter",
    "FileTransfer",
    "SafeArchiveExtractor",
    "write_text_atomic",
]


def _is_real_dir(path: StrPath) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


class FileTransfer:
    """Apply a :class:`~dpdispatcher.file_manager.ResolvedManifest` into ``destination_root``.

    Parameters
    ----------
    destination_root : str or os.PathLike
        The directory the entries' destinations are relative to (created as needed).
    symlink : bool
        Copy symbolic links as links (inside directories too) instead of what they show.
    link_sources : bool
        Make each destination a symbolic link to its (absolute) source instead of a copy
        (LocalContext's ``symlink`` mode).
    move : bool
        Move the sources instead of copying them; an entry below a directory already
        moved is skipped.
    overwrite : bool
        Replace an existing destination (staged beside it and renamed into place).
        Otherwise only what is missing is added: an existing file is kept and an
        existing directory is merged into.
    """

    def __init__(
        self,
        destination_root: StrPath,
        *,
        symlink: bool = False,
        link_sources: bool = False,
        move: bool = False,
        overwrite: bool = True,
    ) -> None:
        self.destination = PathResolver(destination_root)
        self.symlink = symlink
        self.link_sources = link_sources
        self.move = move
        self.overwrite = overwrite

    @staticmethod
    def remove(path: StrPath) -> None:
        """Remove a file, directory tree or (dangling) link without following links."""
        remove_path(os.fspath(path))

    def apply(self, manifest: ResolvedManifest) -> None:
        """Transfer every entry of ``manifest``, in order."""
        moved: set[Path] = set()
        for entry in manifest.entries:
            target = self.destination.resolve(entry.destination, allow_glob=True)
            if entry.source == DIRECTORY_MARKER:
                target.mkdir(parents=True, exist_ok=True)
                continue
            source = Path(os.path.abspath(entry.source))
            if self.move and not moved.isdisjoint(source.parents):
                continue  # went along with its directory
            if source == target:
                continue
            if self.overwrite:
                self._copy_one(source, target)
            else:
                self._copy_missing_one(source, target)
            if self.move:
                moved.add(source)

    @staticmethod
    def _is_descendant(path: Path, parent: Path) -> bool:
        """Whether ``path`` is ``parent`` or lies below it (lexically)."""
        return path == parent or parent in path.parents

    def _create(self, source: Path, target: Path) -> None:
        """Make ``target`` (absent) from ``source`` by the transfer's mode."""
        if self.move:
            bring_back(os.fspath(source), os.fspath(target))
        elif self.link_sources:
            os.symlink(os.path.abspath(source), target)
        elif self.symlink and source.is_symlink():
            os.symlink(os.readlink(source), target)
        elif source.is_dir():
            shutil.copytree(source, target, symlinks=self.symlink)
        else:
            shutil.copy2(source, target)

    def _copy_one(self, source: Path, target: Path) -> None:
        """Make ``target`` from ``source``, replacing what is there."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.move:
            bring_back(os.fspath(source), os.fspath(target))
            return
        staged = Path(staged_name(os.fspath(target), "new"))
        remove_path(os.fspath(staged))
        try:
            self._create(source, staged)
            replace_with(os.fspath(staged), os.fspath(target))
        finally:
            remove_path(os.fspath(staged))

    def _copy_missing_one(self, source: Path, target: Path) -> None:
        """Add only what ``target`` lacks: a missing entry is created, an existing
        directory merged into child by child, anything else kept as it is."""
        if os.path.lexists(target):
            if _is_real_dir(source) and _is_real_dir(target):
                for name in sorted(os.listdir(source)):
                    self._copy_missing_one(source / name, target / name)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # created meanwhile by a concurrent
            self._create(source, target)  # transfer: keep it


class ArchiveBuilder:
    """Write zip archives of a selection of paths under ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        The directory the selected paths (and the names in the archive) are relative to.
    """

    def __init__(self, root: StrPath) -> None:
        self.resolver = PathResolver(root)

    def build_zip(self, archive_path: StrPath, patterns: Sequence[str]) -> Path:
        """Zip what ``patterns`` (paths or globs) name; directories are recursed.

        Every pattern is expanded before the archive is written; names in the archive
        are sorted, each once.

        Returns
        -------
        Path
            ``archive_path``.

        Raises
        ------
        FileNotFoundError
            A pattern names nothing (:class:`~dpdispatcher.errors.MissingInputError`);
            no archive is written.
        """
        selected: dict[str, str | None] = {}
        for pattern in patterns:
            matches = self.resolver.expand(pattern)
            if not matches:
                raise MissingInputError(
                    f"cannot find archive input {pattern} under {self.resolver.root}"
                )
            for match in matches:
                selected.setdefault(self.resolver.relative(match), os.fspath(match))
        archive = Path(archive_path)
        write_zip(os.fspath(archive), selected, skip=os.path.realpath(archive))
        return archive


class AtomicTextWriter:
    """Write UTF-8 text files below ``root``, each through a temporary file and a rename.

    Parameters
    ----------
    root : str or os.PathLike
        The directory the written paths are relative to.
    """

    def __init__(self, root: StrPath) -> None:
        self.resolver = PathResolver(root)

    def write(self, relative_path: str, content: str) -> Path:
        """Write ``content`` to ``relative_path`` (parent directories are created).

        Raises
        ------
        ValueError
            The path lies outside the root.
        """
        target = self.resolver.resolve(relative_path, allow_glob=True, allow_absolute=True)
        atomic_write(os.fspath(target), content)
        return target


def write_text_atomic(root: StrPath, relative_path: str, content: str) -> Path:
    """Write one text file atomically: ``AtomicTextWriter(root).write(relative_path, content)``."""
    return AtomicTextWriter(root).write(relative_path, content)


def _file_names(members: Iterable[tuple[str, bool]]) -> set[str]:
    """The normalised names of the members that are files (``(name, is a file)``)."""
    return {"/".join(member_parts(name)) for name, is_file in members if is_file}


class SafeArchiveExtractor:
    """Extract tar and zip archives into ``destination``, all or nothing.

    Any unsafe member (absolute or ``..`` name, link, device, a symbolic link already on
    its path, ...) raises :class:`~dpdispatcher.errors.UnsafeArchiveError` (a
    ``ValueError``) before anything is written; see :mod:`dpdispatcher.utils.archive`.

    Parameters
    ----------
    destination : str or os.PathLike
        Where the members go (created if needed).
    """

    def __init__(self, destination: StrPath) -> None:
        self.destination = Path(destination)

    def _member_path(self, name: str) -> Path:
        """Where member ``name`` goes; raise if it is unsafe."""
        return self.destination.joinpath(*member_parts(name))

    def extract_tar(self, archive: StrPath) -> set[str]:
        """Extract the tar file ``archive``; return the names of the files extracted."""
        with tarfile.open(archive) as tar:
            safe_extract_tar(tar, os.fspath(self.destination))
            return _file_names((info.name, info.isfile()) for info in tar.getmembers())

    def extract_zip(self, archive: StrPath) -> set[str]:
        """Extract the zip file ``archive``; return the names of the files extracted."""
        with zipfile.ZipFile(archive) as zf:
            safe_extract_zip(zf, os.fspath(self.destination))
            return _file_names((info.filename, not info.is_dir()) for info in zf.infolist())
