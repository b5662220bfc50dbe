"""Fixtures shared by the real-client tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A scratch dir the SSH test user may write too (counters and stand-ins live there)."""
    path = Path(tempfile.mkdtemp(prefix="dpdisp-client-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
