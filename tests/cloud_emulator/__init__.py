"""A local emulator of the DP Cloud Server (Bohrium) HTTP API and its OSS storage.

See :mod:`.server` for :class:`CloudEmulator` and :mod:`.fixture` for the pytest
fixture ``cloud_emulator``. Run it stand-alone with ``python -m tests.cloud_emulator``.
"""

from __future__ import annotations

from .server import CloudEmulator

__all__ = ["CloudEmulator"]
