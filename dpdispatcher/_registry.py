"""Case-insensitive registries of batch types and context types.

A class registers itself under its name, its lower-case form, its ``alias`` tuple and,
for contexts, its name without the ``Context`` suffix.
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, TypeVar

from dpdispatcher.errors import ConfigurationError, UnknownNameError

T = TypeVar("T", bound="Registered")


class Registered:
    """Mixin giving a base class a registry filled by ``__init_subclass__``."""

    subclasses_dict: ClassVar[dict[str, type[Any]]]
    alias: ClassVar[tuple[str, ...]] = ()
    _registry_kind: ClassVar[str] = "name"
    _registry_suffix: ClassVar[str] = ""
    _canonical: ClassVar[dict[str, type[Any]]]

    def __new__(cls: type[T], *args: Any, **kwargs: Any) -> T:
        """The registry's base class (the one holding ``subclasses_dict``) builds the class
        named by its ``_registry_kind`` keyword (``Machine(batch_type="Slurm", ...)``)."""
        if "subclasses_dict" in vars(cls):
            name = kwargs.get(cls._registry_kind)
            if name is None:
                raise ConfigurationError(f"machine/{cls._registry_kind} is required")
            cls = cls.get_class(name)
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_abstract", False):
            return
        keys = [cls.__name__, *cls.alias]
        suffix = cls._registry_suffix
        if suffix:
            keys += [k[: -len(suffix)] for k in keys if k.endswith(suffix) and k != suffix]
        for key in keys:
            cls.subclasses_dict[key] = cls
            cls.subclasses_dict[key.lower()] = cls
        cls._canonical[cls.__name__] = cls

    @classmethod
    def canonical_classes(cls) -> dict[str, type[Any]]:
        """Registered classes by canonical (class) name."""
        return dict(cls._canonical)

    @classmethod
    def get_class(cls: type[T], name: str) -> type[T]:
        """The class registered under ``name`` (any case); a clear error otherwise."""
        if not isinstance(name, str):
            raise UnknownNameError(f"{cls._registry_kind}: expected a string, got {name!r}")
        found = cls.subclasses_dict.get(name) or cls.subclasses_dict.get(name.lower())
        if found is None:
            valid = sorted(cls._canonical)
            lowered = {k.lower(): k for k in cls.subclasses_dict}
            close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
            hint = (
                f" Did you mean {cls.subclasses_dict[lowered[close[0]]].__name__}?" if close else ""
            )
            raise UnknownNameError(
                f"unknown {cls._registry_kind} {name!r}; valid names: {', '.join(valid)}.{hint}"
            )
        return found

    @classmethod
    def resolve_name(cls, name: str) -> str:
        """The canonical name of whatever ``name`` refers to."""
        return cls.get_class(name).__name__
