"""File staging as objects (the 1.1.0 ``dpdispatcher.file_manager`` API).

Task and submission file lists are strings; these classes turn them into validated,
deterministic manifests before any transfer, and apply them:

- :class:`PathPolicy`, :class:`PathResolver`: what a staging path may be (relative, no
  ``..``, no NUL) and what it names under a root (:mod:`glob` rules);
- :class:`ManifestBuilder`, :class:`RemoteManifestBuilder`,
  :class:`SubmissionStagingPlan`: patterns to :class:`ResolvedManifest`\\ s of
  :class:`FileEntry` transfers and :class:`MissingEntry` requests;
- :class:`FileTransfer`: apply a manifest on this machine (copy, link or move;
  replace or only fill in what is missing);
- :class:`ArchiveBuilder`, :class:`SafeArchiveExtractor`: write zip archives, extract
  untrusted tar and zip archives all or nothing;
- :class:`AtomicTextWriter`, :func:`write_text_atomic`: text files written through a
  temporary file and a rename.

Path errors are :class:`~dpdispatcher.errors.StagingPathError` and unsafe archives
:class:`~dpdispatcher.errors.UnsafeArchiveError`, both ``ValueError``\\ s as in 1.1.0.

Examples
--------
>>> import os, tempfile
>>> src, dst = tempfile.mkdtemp(), tempfile.mkdtemp()
>>> _ = write_text_atomic(src, "task/in.txt", "data")
>>> manifest = (
...     ManifestBuilder()
...     .add_paths(source_root=os.path.join(src, "task"), destination_prefix="task",
...                patterns=["*.txt", "absent.dat"])
...     .build()
... )
>>> [entry.destination for entry in manifest.entries], manifest.missing
(['task/in.txt'], [MissingEntry(pattern='absent.dat', destination_prefix='task')])
>>> FileTransfer(dst).apply(manifest)
>>> open(os.path.join(dst, "task", "in.txt")).read()
'data'
"""

from __future__ import annotations

import os  # noqa: F401  (1.1.0 tests patch ``dpdispatcher.file_manager.os.symlink``)

from dpdispatcher.file_manager._manifest import (
    FileEntry,
    ManifestBuilder,
    MissingEntry,
    RemoteManifestBuilder,
    ResolvedManifest,
    SubmissionStagingPlan,
)
from dpdispatcher.file_manager._paths import PathPolicy, PathResolver
from dpdispatcher.file_manager._transfer import (
    ArchiveBuilder,
    AtomicTextWriter,
    FileTransfer,
    SafeArchiveExtractor,
    write_text_atomic,
)

__all__ = [
    "ArchiveBuilder",
    "AtomicTextWriter",
    "FileEntry",
    "FileTransfer",
    "ManifestBuilder",
    "MissingEntry",
    "PathPolicy",
    "PathResolver",
    "RemoteManifestBuilder",
    "ResolvedManifest",
    "SafeArchiveExtractor",
    "SubmissionStagingPlan",
    "write_text_atomic",
]
