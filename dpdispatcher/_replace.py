"""The one home of the rule "a result replaces the local file" (SPEC §4, Download).

Every context that brings results back to the work base places them with
:func:`bring_back`: LocalContext moves them out of the job root, SSH extraction moves
them out of its staging directory, the cloud context out of the unpacked result.

A result is first staged *beside* its target (same directory, so same filesystem) and
then renamed into place, so a crash never leaves half a result under the target's name:

- a file or link replaces the target with one ``rename`` (atomic);
- a directory (or a change of kind) moves the old target aside to a fixed name, removes
  it, then renames the result into place. A crash in between leaves the target missing,
  never half-written, while the result's source still exists, so the next download
  redoes the step (and removes the leftover aside copy first).

The source is removed (or renamed away) only once the target is in place. A source that
is a symbolic link to the target itself (a forward file linked into the job root and
written through the link) is already in place: nothing moves.

Examples
--------
>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> for name, text in (("new", "v2"), ("out", "v1")):
...     with open(os.path.join(d, name), "w") as fh:
...         _ = fh.write(text)
>>> bring_back(os.path.join(d, "new"), os.path.join(d, "out"))
>>> open(os.path.join(d, "out")).read(), os.path.exists(os.path.join(d, "new"))
('v2', False)
"""

from __future__ import annotations

import errno
import os
import shutil

__all__ = ["bring_back", "remove_path", "replace_with", "staged_name"]

_MAX_BASE = 120  # keeps staged names under the usual 255-byte limit


def staged_name(dst: str, role: str) -> str:
    """The fixed hidden name beside ``dst`` used while replacing it (``role``: new/old)."""
    directory, base = os.path.split(os.path.normpath(dst))
    return os.path.join(directory, f".{base[:_MAX_BASE]}.dpdispatcher-{role}")


def _is_real_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def remove_path(path: str) -> None:
    """Remove a file, link or directory tree if it exists (a link, not what it shows)."""
    if _is_real_dir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def replace_with(staged: str, dst: str) -> None:
    """Rename ``staged`` (on ``dst``'s filesystem) to ``dst``, replacing whatever is there.

    A file or link over a file or link is one atomic ``rename``; when either side is a
    directory, the old ``dst`` is first moved aside and removed.
    """
    aside = staged_name(dst, "old")
    remove_path(aside)  # left by a replace that was killed midway
    if os.path.lexists(dst) and (_is_real_dir(dst) or _is_real_dir(staged)):
        os.rename(dst, aside)
        remove_path(aside)
    os.replace(staged, dst)


def _same_entry(src: str, dst: str) -> bool:
    """Whether ``src`` is a link that resolves to ``dst`` itself."""
    if not os.path.islink(src) or not os.path.lexists(dst):
        return False
    try:
        return os.path.samefile(src, dst)
    except OSError:
        return False


def _inline_links_into(tree: str, target: str) -> None:
    """Replace links inside ``tree`` that point into ``target`` by copies of what they show.

    ``target`` is about to be replaced by ``tree``; a link into it (a forward file linked
    into a result directory) would dangle afterwards.
    """
    root = os.path.realpath(target)
    for directory, subdirs, files in os.walk(tree):
        for name in subdirs + files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                continue
            real = os.path.realpath(path)
            if real != root and not real.startswith(root + os.sep):
                continue
            os.unlink(path)
            if os.path.isdir(real):
                shutil.copytree(real, path, symlinks=True)
            elif os.path.exists(real):
                shutil.copy2(real, path)


def _copy(src: str, dst: str) -> None:
    if _is_real_dir(src):
        shutil.copytree(src, dst, symlinks=True)
    else:  # a link to a file is copied as the file; a dangling one as the link
        shutil.copy2(src, dst, follow_symlinks=os.path.isfile(src))


def bring_back(src: str, dst: str, *, keep_source: bool = False) -> None:
    """Make the result at ``src`` the local ``dst``, replacing a file or directory there.

    Parameters
    ----------
    src : str
        The result (file, link or directory) on this machine.
    dst : str
        Where it belongs in the work base; its parent directories are created.
    keep_source : bool
        Copy instead of move (the source is kept, e.g. for a backup).

    Notes
    -----
    On the same filesystem the result is renamed straight into place; across
    filesystems (or with ``keep_source``) it is copied to a staged name beside ``dst``
    first, renamed into place, and only then is the source removed. A link to a file
    comes back as a copy of that file (as in 1.1.0): the job root it may point into is
    cleaned afterwards.
    """
    if _same_entry(src, dst):
        return
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    if _is_real_dir(src) and os.path.lexists(dst):
        _inline_links_into(src, dst)
    link_to_file = os.path.islink(src) and os.path.isfile(src)
    if not keep_source and not link_to_file:
        try:
            replace_with(src, dst)
            return
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
    staged = staged_name(dst, "new")
    remove_path(staged)
    _copy(src, staged)
    replace_with(staged, dst)
    if not keep_source:
        remove_path(src)
