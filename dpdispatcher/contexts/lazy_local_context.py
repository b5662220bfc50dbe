"""LazyLocalContext: run the jobs in place, in the local work base itself."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dpdispatcher.base_context import SPRetObj  # 1.x imported it from here
from dpdispatcher.contexts._local import LocalShellContext

if TYPE_CHECKING:
    from dpdispatcher.submission import Submission

__all__ = ["LazyLocalContext", "SPRetObj"]


class LazyLocalContext(LocalShellContext):
    """Jobs run in ``local_root/work_base``; nothing is copied, moved or cleaned."""

    def job_root_for(self, submission: Submission) -> str:
        """The local work base: tasks run where their files already are."""
        return os.path.join(self.init_local_root, submission.work_base)

    def binds_offline(self) -> bool:
        """The job root (the work base) is always known."""
        return True

    def upload(self, submission: Submission) -> None:
        """Nothing to send: the files are already in place."""

    def download(
        self,
        submission: Submission,
        check_exists: bool = False,
        mark_failure: bool = True,
        back_error: bool = False,
    ) -> None:
        """Nothing to fetch: the results are already in place."""

    def clean(self) -> None:
        """Nothing to remove: the work base belongs to the user."""
