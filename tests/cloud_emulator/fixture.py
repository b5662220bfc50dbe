"""Pytest fixture for the cloud emulator.

Use it from a test module (or a ``conftest.py``) by importing it::

    from tests.cloud_emulator.fixture import cloud_emulator  # noqa: F401

or register it once for the whole suite in the root ``conftest.py``::

    pytest_plugins = ["tests.cloud_emulator.fixture"]

The fixture starts a fresh emulator per test on a free port of 127.0.0.1, sets
the four ``DPDISPATCHER_LEBESGUE_*`` variables to it, removes ``BOHR_TICKET``,
and stops the emulator (killing running jobs) afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import CloudEmulator

__all__ = ["CloudEmulator", "cloud_emulator"]


@pytest.fixture
def cloud_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudEmulator]:
    """A running :class:`CloudEmulator` with the environment pointing at it."""
    emulator = CloudEmulator(tmp_path / "cloud-emulator").start()
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BOHR_TICKET", raising=False)
    try:
        yield emulator
    finally:
        emulator.stop()
