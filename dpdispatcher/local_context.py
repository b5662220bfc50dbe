"""LocalContext under the reference manual's import path (``dpdispatcher.local_context``)."""

from __future__ import annotations

from dpdispatcher.base_context import SPRetObj
from dpdispatcher.contexts.local_context import LocalContext

__all__ = ["LocalContext", "SPRetObj"]
