"""Writing zip archives (the counterpart of :mod:`dpdispatcher._archive`'s extraction).

:func:`write_zip` packs ``{name in the archive: source path}``; directories are
recursed and symbolic links in the sources followed (the archive holds their
content; a link loop is not descended twice).

Examples
--------
>>> import os, tempfile, zipfile
>>> src = tempfile.mkdtemp()
>>> _ = open(os.path.join(src, "a.txt"), "w").write("hi")
>>> out = os.path.join(tempfile.mkdtemp(), "x.zip")
>>> write_zip(out, {"a.txt": os.path.join(src, "a.txt"), "empty": None})
2
>>> sorted(zipfile.ZipFile(out).namelist())
['a.txt', 'empty/']
"""

from __future__ import annotations

import os
import zipfile

from dpdispatcher._walk import walk_tree

__all__ = ["write_zip"]


def write_zip(archive: str, entries: dict[str, str | None], *, skip: str = "") -> int:
    """Write ``{name: source path or None (a directory)}`` into a zip; return the count.

    Directories are recursed and symbolic links in the sources followed (the archive
    holds their content; a link loop is not descended twice). A file whose real path
    is ``skip`` (the archive itself, when it is written inside a packed directory) is
    left out.
    """
    written: set[str] = set()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, src in sorted(entries.items()):
            if src is None or os.path.isdir(src):
                _add_dir(zf, arcname, src, written, skip)
            elif arcname not in written:
                zf.write(src, arcname)
                written.add(arcname)
    return len(written)


def _add_dir(
    zf: zipfile.ZipFile, arcname: str, src: str | None, written: set[str], skip: str = ""
) -> None:
    if arcname + "/" not in written:
        zf.writestr(_dir_info(arcname), b"")
        written.add(arcname + "/")
    if src is None:
        return
    for dirpath, rel, _dirnames, filenames in walk_tree(src, follow=True):
        here = arcname if rel == "." else f"{arcname}/{rel}"
        if here + "/" not in written:
            zf.writestr(_dir_info(here), b"")
            written.add(here + "/")
        for name in filenames:
            full = os.path.join(dirpath, name)
            fresh = f"{here}/{name}" not in written and os.path.exists(full)
            if fresh and not (skip and os.path.realpath(full) == skip):
                zf.write(full, f"{here}/{name}")
                written.add(f"{here}/{name}")


def _dir_info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname + "/")
    info.external_attr = (0o40755 << 16) | 0x10  # a directory, rwxr-xr-x (MS-DOS dir bit)
    return info
