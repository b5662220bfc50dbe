"""The seeded shuffle that groups tasks into jobs, as ``random.Random(seed).shuffle`` does.

The permutation must be exactly the one of ``random.Random(seed).shuffle`` (the original
dpdispatcher's grouping, hence its job hashes, depend on it). This is the same Fisher-Yates
walk over the same ``getrandbits`` stream, written as one tight loop: the standard
``shuffle`` spends most of its time in a method call per element.

>>> import random
>>> items = list(range(50))
>>> expected = list(items)
>>> random.Random(42).shuffle(expected)
>>> seeded_shuffle(items, 42) == expected
True
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def seeded_shuffle(items: Sequence[T], seed: int) -> list[T]:
    """A new list of ``items`` in the order ``random.Random(seed).shuffle`` gives."""
    out = list(items)
    getrandbits = random.Random(seed).getrandbits
    for i in reversed(range(1, len(out))):
        n = i + 1  # j uniform in [0, i], drawn as random's _randbelow draws it
        k = n.bit_length()
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        out[i], out[j] = out[j], out[i]
    return out
