"""LocalContext: run jobs in a separate directory on this machine."""

from __future__ import annotations

import os
import shutil
import threading
from typing import TYPE_CHECKING, Any

from dpdispatcher import _files
from dpdispatcher._replace import bring_back, remove_path
from dpdispatcher._script import names
from dpdispatcher.contexts._local import LocalShellContext
from dpdispatcher.errors import RemoteFileNotFoundError

if TYPE_CHECKING:
    from dpdispatcher.submission import Submission


class LocalContext(LocalShellContext):
    """Jobs run in ``remote_root/<submission_hash>`` on this machine.

    Forward files are symlinked there (copied with ``remote_profile.symlink = false``),
    results are moved back to the work base (replacing local files of the same name),
    and ``clean`` removes the job root.
    """

    @classmethod
    def machine_subfields(cls) -> list[Any]:
        """``remote_profile.symlink``."""
        from dargs import Argument

        return [
            Argument(
                "remote_profile",
                dict,
                [
                    Argument(
                        "symlink",
                        bool,
                        optional=True,
                        default=True,
                        doc="Symlink forward files into the job root; false copies them.",
                    ),
                ],
                optional=True,
                default={},
                doc="Options of LocalContext.",
            )
        ]

    def upload(self, submission: Submission) -> None:
        """Link or copy every forward and common file into the job root."""
        os.makedirs(self.remote_root, exist_ok=True)
        for directory in _files.task_dirs(submission):
            os.makedirs(os.path.join(self.remote_root, directory), exist_ok=True)
        symlink = self.remote_profile.get("symlink", True)
        for rel in _files.forward_files(submission, self.local_root):
            src = os.path.join(self.local_root, rel)
            dst = os.path.join(self.remote_root, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            _place(os.path.abspath(src), dst, symlink)

    def download(
        self,
        submission: Submission,
        check_exists: bool = False,
        mark_failure: bool = True,
        back_error: bool = False,
    ) -> None:
        """Move every backward file back, replacing local ones; report missing ones at the end.

        A result replaces the local file or directory of the same name
        (:func:`~dpdispatcher._replace.bring_back`); a pattern matching nothing in the
        job root counts as downloaded when it is present locally (a rerun after the
        results came back).
        """
        missing = _files.bring_back_results(
            submission, self.remote_root, self.local_root, check_exists, mark_failure, back_error
        )
        if missing:
            raise RemoteFileNotFoundError(
                f"backward files not found in {self.remote_root}: {', '.join(missing)} "
                "(set check_exists=True to tolerate missing files)"
            )

    def clean(self) -> None:
        """Remove the job root: renamed aside at once, then deleted.

        The rename is atomic, so a run killed while cleaning never finds half a job root
        (its state file gone, some task tags left); the aside copy is deleted in a
        background thread with ``clean_asynchronously``, and a copy left by a killed
        clean is deleted first.
        """
        root = os.path.normpath(self.remote_root)
        aside = os.path.join(os.path.dirname(root), names.removing_dir(os.path.basename(root)))
        shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(root, aside)
        except FileNotFoundError:
            return
        if self.clean_asynchronously:
            threading.Thread(target=shutil.rmtree, args=(aside, True), daemon=True).start()
        else:
            shutil.rmtree(aside, ignore_errors=True)


def _place(src: str, dst: str, symlink: bool) -> None:
    """Link ``src`` at ``dst``, or copy it there (staged, then renamed into place)."""
    if not symlink:
        bring_back(src, dst, keep_source=True)
        return
    if os.path.lexists(dst):
        if os.path.islink(dst) and os.readlink(dst) == src:
            return
        remove_path(dst)
    os.symlink(src, dst)
