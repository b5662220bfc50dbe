"""Resources: what each job asks of the scheduler and how its script is shaped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dpdispatcher._loaders import load_json, load_yaml
from dpdispatcher._tracked import JsonCached, plain, track
from dpdispatcher.errors import ConfigurationError

_FIELDS = (
    "number_node",
    "cpu_per_node",
    "gpu_per_node",
    "queue_name",
    "group_size",
    "custom_flags",
    "strategy",
    "para_deg",
    "module_purge",
    "module_unload_list",
    "module_list",
    "source_list",
    "envs",
    "prepend_script",
    "append_script",
    "wait_time",
    "kwargs",
)
_FIELD_SET = frozenset(_FIELDS)


class Resources(JsonCached):
    """The computing resources of each job of a submission.

    The five core fields are positional; the rest are keyword-only. Options specific to a
    batch type (``custom_gpu_line``, ``slurm_job_size``, ``gpu_usage``, ``pe_name`` ...)
    may be given inside ``kwargs={...}`` or directly as keywords.

    Examples
    --------
    >>> r = Resources(1, 4, 0, "normal", 5, custom_gpu_line="#SBATCH --gres=gpu:v100:1")
    >>> r.kwargs["custom_gpu_line"]
    '#SBATCH --gres=gpu:v100:1'
    >>> list(r.serialize())[:5]
    ['number_node', 'cpu_per_node', 'gpu_per_node', 'queue_name', 'group_size']
    """

    __slots__ = (*_FIELDS, "_json", "__dict__")
    _json_fields = _FIELD_SET

    number_node: int
    cpu_per_node: int
    gpu_per_node: int
    queue_name: str
    group_size: int
    custom_flags: list[str]
    strategy: dict[str, Any]
    para_deg: int
    module_purge: bool
    module_unload_list: list[str]
    module_list: list[str]
    source_list: list[str]
    envs: dict[str, Any]
    prepend_script: list[str]
    append_script: list[str]
    wait_time: float
    kwargs: dict[str, Any]
    _json: str | None

    def __init__(
        self,
        number_node: int,
        cpu_per_node: int,
        gpu_per_node: int,
        queue_name: str,
        group_size: int,
        *,
        custom_flags: list[str] | None = None,
        strategy: dict[str, Any] | None = None,
        para_deg: int = 1,
        source_list: list[str] | None = None,
        module_purge: bool = False,
        module_unload_list: list[str] | None = None,
        module_list: list[str] | None = None,
        envs: dict[str, Any] | None = None,
        prepend_script: list[str] | None = None,
        append_script: list[str] | None = None,
        wait_time: float = 0,
        kwargs: dict[str, Any] | None = None,
        **flat_kwargs: Any,
    ) -> None:
        raw: dict[str, Any] = {
            "number_node": number_node,
            "cpu_per_node": cpu_per_node,
            "gpu_per_node": gpu_per_node,
            "queue_name": queue_name,
            "group_size": group_size,
            "custom_flags": custom_flags or [],
            "strategy": strategy or {},
            "para_deg": para_deg,
            "module_purge": module_purge,
            "module_unload_list": module_unload_list or [],
            "module_list": module_list or [],
            "source_list": source_list or [],
            "envs": envs or {},
            "prepend_script": prepend_script or [],
            "append_script": append_script or [],
            "wait_time": wait_time,
            "kwargs": dict(kwargs or {}),
        }
        raw.update(_split_flat_kwargs(raw["kwargs"], flat_kwargs))
        self._assign(_validate(raw))

    def _assign(self, values: dict[str, Any]) -> None:
        """Fill a new object (nothing cached anywhere can be stale: no change recorded)."""
        for key in _FIELDS:
            object.__setattr__(self, key, track(values[key], self))
        object.__setattr__(self, "_json", None)
        _check_semantics(self)

    def __repr__(self) -> str:
        return f"Resources({self.serialize()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resources) and self.serialize() == other.serialize()

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> Resources:
        """An independent copy (each job owns one); it shares the cached JSON text."""
        text = self.to_json()
        new = type(self).__new__(type(self))
        for key in _FIELDS:
            object.__setattr__(new, key, track(getattr(self, key), new))
        object.__setattr__(new, "_json", text)
        return new

    def to_json(self) -> str:
        """``json.dumps(self.serialize())``, computed once and kept until a field changes."""
        text = self._json
        if text is None:
            text = json.dumps(self.serialize())
            object.__setattr__(self, "_json", text)
        return text

    @staticmethod
    def arginfo(detail_kwargs: bool = True) -> Any:
        """The dargs ``Argument`` describing a resources dictionary."""
        from dpdispatcher.arginfo import resources_dargs

        return resources_dargs(detail_kwargs=detail_kwargs)

    @classmethod
    def load_from_dict(
        cls, resources_dict: dict[str, Any], allow_ref: bool = False, *, strict: bool = False
    ) -> Resources:
        """Build resources from a dictionary.

        Types and values are checked; an unknown key is dropped with a warning naming it
        (an error with ``strict=True``). A ``batch_type`` key (any spelling) selects which
        ``kwargs`` are accepted; without it each batch type checks its own when submitting.
        """
        from dpdispatcher.arginfo import normalize, resolve_root_ref, resources_dargs

        if not isinstance(resources_dict, dict):
            raise ConfigurationError(
                f"resources: expected a dict, got {type(resources_dict).__name__}"
            )
        data = resolve_root_ref(dict(resources_dict), allow_ref)
        if "batch_type" in data:
            from dpdispatcher.machine import Machine

            data["batch_type"] = Machine.resolve_name(str(data["batch_type"]))
            data = normalize(
                resources_dargs(detail_kwargs=True),
                data,
                "resources",
                strict=strict,
                skip=() if strict else ("kwargs",),
                allow_ref=allow_ref,
            )
            data.pop("batch_type", None)
        obj = cls.__new__(cls)
        kwargs = dict(data.pop("kwargs", {}) or {})
        flat = {k: data.pop(k) for k in list(data) if k not in _FIELDS}
        data["kwargs"] = kwargs
        data.update(_split_flat_kwargs(kwargs, flat))
        obj._assign(_validate(data, strict=strict, allow_ref=allow_ref))
        return obj

    @classmethod
    def load_from_json(
        cls, json_file: str | Path, allow_ref: bool = False, *, strict: bool = False
    ) -> Resources:
        """Build resources from a JSON file (see :meth:`load_from_dict`)."""
        return cls.load_from_dict(load_json(json_file), allow_ref, strict=strict)

    @classmethod
    def load_from_yaml(
        cls, yaml_file: str | Path, allow_ref: bool = False, *, strict: bool = False
    ) -> Resources:
        """Build resources from a YAML file (see :meth:`load_from_dict`)."""
        return cls.load_from_dict(load_yaml(yaml_file), allow_ref, strict=strict)

    @classmethod
    def deserialize(cls, resources_dict: dict[str, Any]) -> Resources:
        """Inverse of :meth:`serialize`."""
        return cls.load_from_dict(resources_dict)

    def serialize(self) -> dict[str, Any]:
        """The resources as a dictionary in the fixed key order that feeds hashes."""
        return {key: plain(getattr(self, key)) for key in _FIELDS}


def _split_flat_kwargs(kwargs: dict[str, Any], flat: dict[str, Any]) -> dict[str, Any]:
    """Move batch-type options given flat into ``kwargs``; return the unknown rest."""
    from dpdispatcher.arginfo import kwargs_union_subfields

    known = set()
    for arg in kwargs_union_subfields():
        known.add(arg.name)
        known.update(arg.alias)
    rest = {}
    for key, value in flat.items():
        if key in known:
            kwargs[key] = value
        else:
            rest[key] = value
    return rest


def _validate(raw: dict[str, Any], strict: bool = False, allow_ref: bool = False) -> dict[str, Any]:
    from dpdispatcher.arginfo import normalize, resources_dargs

    return normalize(
        resources_dargs(detail_kwargs=False, _union_kwargs=True),
        raw,
        "resources",
        strict=strict,
        skip=("kwargs",),
        allow_ref=allow_ref,
    )


def _check_semantics(res: Resources) -> None:
    checks = [
        (res.number_node >= 1, "number_node", "at least 1"),
        (res.cpu_per_node >= 0, "cpu_per_node", "0 or more"),
        (res.gpu_per_node >= 0, "gpu_per_node", "0 or more"),
        (res.group_size >= 0, "group_size", "0 (all tasks in one job) or more"),
        (res.para_deg >= 1, "para_deg", "at least 1"),
        (res.wait_time >= 0, "wait_time", "0 or more"),
        (
            0.0 <= res.strategy.get("ratio_unfinished", 0.0) < 1.0,
            "strategy/ratio_unfinished",
            "in [0, 1)",
        ),
    ]
    for ok, key, expected in checks:
        if not ok:
            raise ConfigurationError(f"resources/{key}: expected {expected}")
    for key in (
        "custom_flags",
        "source_list",
        "module_list",
        "module_unload_list",
        "prepend_script",
        "append_script",
    ):
        for i, item in enumerate(getattr(res, key)):
            if not isinstance(item, str):
                raise ConfigurationError(
                    f"resources/{key}[{i}]: expected a string, got {type(item).__name__}"
                )
