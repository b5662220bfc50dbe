"""LazyLocalContext under the reference manual's import path
(``dpdispatcher.lazy_local_context``)."""

from __future__ import annotations

from dpdispatcher.base_context import SPRetObj
from dpdispatcher.contexts.lazy_local_context import LazyLocalContext

__all__ = ["LazyLocalContext", "SPRetObj"]
