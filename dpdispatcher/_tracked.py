"""Lists and dicts that tell their owner when they change, so cached JSON stays true.

``Task`` and ``Resources`` keep the JSON text of their serialised form, computed once:
it feeds the task, job and submission hashes and every state write. Their list and dict
fields are these tracked containers (a task's file lists become ones when first read), so
an in-place change (``task.forward_files.append``, ``resources.kwargs["x"] = 1``) drops the
owner's cached text just like an assignment does.

>>> class Owner:
...     cached = "old"
...     def _touch(self) -> None:
...         self.cached = None
>>> owner = Owner()
>>> files = track(["a"], owner)
>>> files.append("b"); files, owner.cached
(['a', 'b'], None)
>>> import json; json.dumps(track({"k": [1]}, owner))
'{"k": [1]}'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Protocol, SupportsIndex

#: bumped by every change of a tracked object and every assignment of a task's state (see
#: :func:`changed`): caches built from several objects (a job's JSON) stay valid while it
#: has not moved
EPOCH = [0]


def changed() -> None:
    """Record that some tracked object changed (caches built on top of it are stale)."""
    EPOCH[0] += 1


class Owner(Protocol):
    """Anything holding a cache that a change of its containers makes stale."""

    def _touch(self) -> None: ...


class JsonCached:
    """Base of objects caching their JSON in ``_json``: changing a field forgets it.

    Assigning one of ``_json_fields`` tracks the new value (see :func:`track`) and drops the
    cache; a tracked container changed in place calls :meth:`_touch`, which does the same.
    """

    __slots__ = ()
    #: the attributes that make up the serialised form
    _json_fields: ClassVar[frozenset[str]] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._json_fields:
            value = track(value, self)
            object.__setattr__(self, "_json", None)
            changed()
        object.__setattr__(self, name, value)

    def _touch(self) -> None:
        """A tracked list or dict of this object changed: forget the cached JSON."""
        object.__setattr__(self, "_json", None)
        changed()


def track(value: Any, owner: Owner) -> Any:
    """A tracked copy of JSON-like ``value`` (lists and dicts at any depth) owned by ``owner``.

    Scalars and strings are returned as they are; containers are copied, so the caller's
    own lists and dicts are never changed behind its back and never shared by two owners.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, list):
        return _new(TrackedList, value, owner)
    if isinstance(value, dict):
        return _new(TrackedDict, value, owner)
    return value


def tracked_strings(items: Iterable[str], owner: Owner) -> TrackedList:
    """A tracked copy of a list or tuple known to hold only strings (no per-item work)."""
    out = TrackedList(items)
    out._owner = owner
    return out


def _new(kind: type[TrackedList] | type[TrackedDict], value: Any, owner: Owner) -> Any:
    """A ``kind`` holding tracked copies of ``value``'s items (C-level copy when flat)."""
    if not value:
        out: Any = kind()
    elif kind is TrackedList:
        flat = not any(isinstance(v, (list, dict)) for v in value)
        out = TrackedList(value if flat else [track(v, owner) for v in value])
    else:
        flat = not any(isinstance(v, (list, dict)) for v in value.values())
        out = TrackedDict(value if flat else {k: track(v, owner) for k, v in value.items()})
    out._owner = owner
    return out


def plain(value: Any) -> Any:
    """A plain (untracked) deep copy of JSON-like ``value``."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class TrackedList(list):  # type: ignore[type-arg]
    """A list that calls ``owner._touch()`` after every in-place change."""

    __slots__ = ("_owner",)
    _owner: Owner

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        # copies and pickles are plain lists: the owner re-tracks them when assigned
        return (list, (plain(self),))

    def _changed(self) -> None:
        self._owner._touch()

    def append(self, value: Any) -> None:
        list.append(self, track(value, self._owner))
        self._changed()

    def extend(self, values: Any) -> None:
        list.extend(self, [track(v, self._owner) for v in values])
        self._changed()

    def insert(self, index: SupportsIndex, value: Any) -> None:
        list.insert(self, index, track(value, self._owner))
        self._changed()

    def remove(self, value: Any) -> None:
        list.remove(self, value)
        self._changed()

    def pop(self, index: SupportsIndex = -1) -> Any:
        value = list.pop(self, index)
        self._changed()
        return value

    def clear(self) -> None:
        list.clear(self)
        self._changed()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        list.sort(self, *args, **kwargs)
        self._changed()

    def reverse(self) -> None:
        list.reverse(self)
        self._changed()

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            value = [track(v, self._owner) for v in value]
        else:
            value = track(value, self._owner)
        list.__setitem__(self, index, value)
        self._changed()

    def __delitem__(self, index: Any) -> None:
        list.__delitem__(self, index)
        self._changed()

    def __iadd__(self, values: Any) -> TrackedList:  # type: ignore[misc]
        self.extend(values)
        return self

    def __imul__(self, times: SupportsIndex) -> TrackedList:
        list.__imul__(self, times)
        self._changed()
        return self


class TrackedDict(dict):  # type: ignore[type-arg]
    """A dict that calls ``owner._touch()`` after every in-place change."""

    __slots__ = ("_owner",)
    _owner: Owner

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (dict, (plain(self),))

    def _changed(self) -> None:
        self._owner._touch()

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, track(value, self._owner))
        self._changed()

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        self._changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            dict.__setitem__(self, key, track(value, self._owner))
        self._changed()

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[misc]
        self.update(other)
        return self

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        had = key in self
        value = dict.pop(self, key, *default)
        if had:
            self._changed()
        return value

    def popitem(self) -> tuple[Any, Any]:
        item = dict.popitem(self)
        self._changed()
        return item

    def clear(self) -> None:
        dict.clear(self)
        self._changed()
