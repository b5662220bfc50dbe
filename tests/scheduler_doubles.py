"""Test doubles shared by the offline scheduler tests: recorded outputs and a scripted
context."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from dpdispatcher.base_context import BaseContext, CommandResult

FIXTURES = Path(__file__).parent / "fixtures" / "scheduler_output"


def recorded(flavour: str, name: str) -> CommandResult:
    """A recorded command of ``flavour`` (exit code, stdout, stderr; see its README)."""
    base = FIXTURES / flavour
    if not (base / f"{name}.rc").exists():
        pytest.fail(f"missing fixture {flavour}/{name}")
    cmd = base / f"{name}.cmd"
    return CommandResult(
        int((base / f"{name}.rc").read_text().strip()),
        (base / f"{name}.stdout").read_text(),
        (base / f"{name}.stderr").read_text(),
        cmd.read_text().strip() if cmd.exists() else "",
    )


class FakeContext(BaseContext):
    """Answers commands from a queue and file checks from a set; records every command."""

    _abstract = True

    def __init__(self, answers: Iterable[CommandResult] = (), files: Iterable[str] = ()) -> None:
        super().__init__("/local", "/remote")
        self.remote_root = "/remote/HASH"
        self.answers = list(answers)
        self.files = set(files)
        self.commands: list[str] = []
        self.exist_queries: list[list[str]] = []

    def run(
        self, cmd: str, timeout: float | None = None, *, idempotent: bool = False
    ) -> CommandResult:
        self.commands.append(cmd)
        if not self.answers:
            raise AssertionError(f"unexpected command {cmd!r}")
        return self.answers.pop(0)

    def files_exist(self, fnames: list[str]) -> set[str]:
        self.exist_queries.append(list(fnames))
        return {f for f in fnames if f in self.files}

    def check_file_exists(self, fname: str) -> bool:
        return fname in self.files
