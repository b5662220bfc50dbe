"""Local copies of submission states, by hash (``~/.dpdispatcher/submission/<hash>.json``).

The directory is :func:`dpdispatcher._state.local_state_dir` (``$DPDISPATCHER_HOME``
overrides ``~/.dpdispatcher``); it is looked up on each call and created on the first
write, never at import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dpdispatcher._state import local_state_dir
from dpdispatcher.errors import RecordNotFoundError

if TYPE_CHECKING:
    from dpdispatcher.submission import Submission


class Record:
    """The store of submission records (``dpdisp submission HASH`` reads it).

    Examples
    --------
    >>> from dpdispatcher.utils.record import record
    >>> record.get_submission("0" * 40, not_exist_ok=True).name
    '0000000000000000000000000000000000000000.json'
    """

    @property
    def record_directory(self) -> Path:
        """Where the records are kept."""
        return local_state_dir()

    def get_submissions(self) -> list[str]:
        """The hashes of every stored submission."""
        directory = self.record_directory
        if not directory.is_dir():
            return []
        return sorted(p.stem for p in directory.glob("*.json"))

    def write(
        self,
        submission: Submission,
        *,
        text: str | Iterable[str] | None = None,
        same_as: str | None = None,
    ) -> Path:
        """Store ``submission``'s state (``text``: its JSON, whole or in pieces) atomically.

        ``same_as`` names a file on this machine that already holds exactly that text (the
        state file in a local job root): the record becomes a hard link to it where the
        file system allows, instead of a second copy written out.
        """
        from dpdispatcher.contexts._local import atomic_link, atomic_write

        path = self.get_submission(submission.submission_hash, not_exist_ok=True)
        if same_as is not None and atomic_link(same_as, str(path)):
            return path
        atomic_write(str(path), json.dumps(submission.serialize()) if text is None else text)
        return path

    def get_submission(self, hash: str, not_exist_ok: bool = False) -> Path:
        """The record file of submission ``hash`` (must exist unless ``not_exist_ok``)."""
        path = self.record_directory / f"{hash}.json"
        if not not_exist_ok and not path.is_file():
            raise RecordNotFoundError(f"no record of submission {hash} ({path})")
        return path

    def journal(self, hash: str) -> Path:
        """The journal beside the record of submission ``hash`` (see
        :mod:`dpdispatcher._journal`); it may not exist."""
        return self.record_directory / f"{hash}.journal"

    def append_journal(self, hash: str, text: str) -> None:
        """Append ``text`` to the journal beside the record of ``hash``, flushed."""
        path = self.journal(hash)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)

    def read_journal(self, hash: str) -> str:
        """The journal beside the record of ``hash`` ("" if there is none)."""
        try:
            return self.journal(hash).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def remove_journal(self, hash: str) -> None:
        """Delete the journal beside the record of ``hash`` if there is one."""
        self.journal(hash).unlink(missing_ok=True)

    def remove(self, hash: str) -> None:
        """Delete the record of submission ``hash`` (its journal first) if there is one."""
        self.remove_journal(hash)
        self.get_submission(hash, not_exist_ok=True).unlink(missing_ok=True)


#: the store used by the package and the CLI
record = Record()
