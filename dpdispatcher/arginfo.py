"""dargs schemas of the machine, resources and task dictionaries.

The documentation pages of the parameters are generated from these schemas, and every
``load_from_dict`` validates against them, so each parameter is described once.
"""

from __future__ import annotations

from typing import Any

from dargs import Argument, Variant

from dpdispatcher._unknown_keys import find_unknown_keys
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, schema_error

TRIM_PATTERN = "_*"


def _strategy_args() -> list[Argument]:
    return [
        Argument(
            "if_cuda_multi_devices",
            bool,
            optional=True,
            default=False,
            doc="Give each task its own CUDA device (round-robin over gpu_per_node) by "
            "exporting CUDA_VISIBLE_DEVICES. Needs gpu_per_node >= 1 and number_node == 1.",
        ),
        Argument(
            "ratio_unfinished",
            float,
            optional=True,
            default=0.0,
            doc="Stop waiting once at least (1 - ratio_unfinished) of the tasks finished; "
            "the remaining jobs are killed and their tasks are not downloaded.",
        ),
        Argument(
            "customized_script_header_template_file",
            str,
            optional=True,
            doc="A file whose text replaces the whole script header; it is formatted with "
            "``str.format(**resources.serialize())``.",
        ),
    ]


def custom_gpu_line_argument(doc: str) -> Argument:
    """The ``custom_gpu_line`` kwarg of a batch type: a GPU request line used verbatim.

    Each batch type words ``doc`` for its own directive (which generated line it replaces).
    """
    return Argument("custom_gpu_line", str, optional=True, default=None, doc=doc)


def optional_field(name: str, dtype: Any, default: Any, doc: str) -> Argument:
    """An optional field with a default (the common shape of a schema field)."""
    return Argument(name, dtype, optional=True, default=default, doc=doc)


def _resources_base_args() -> list[Argument]:
    return [*_resources_job_args(), *_resources_script_args()]


def _resources_job_args() -> list[Argument]:
    """What each job asks the scheduler for, and how its tasks are grouped and run."""
    return [
        optional_field("number_node", int, 1, "Nodes per job."),
        optional_field("cpu_per_node", int, 1, "CPUs per node."),
        optional_field("gpu_per_node", int, 0, "GPUs per node."),
        optional_field("queue_name", str, "", "Queue (partition) name."),
        Argument("group_size", int, doc="Tasks per job; 0 puts all tasks in one job."),
        optional_field(
            "custom_flags", list, [], "Extra header lines, inserted verbatim (raw shell)."
        ),
        Argument(
            "strategy",
            dict,
            _strategy_args(),
            optional=True,
            default={},
            doc="Strategies used to generate the job script.",
        ),
        optional_field("para_deg", int, 1, "How many tasks of a job run in parallel."),
    ]


def _resources_script_args() -> list[Argument]:
    """What the job script sets up around the tasks, and the pause after submitting."""
    return [
        optional_field(
            "source_list",
            list,
            [],
            "Files sourced before the tasks run: each entry is a file and its arguments "
            "as static shell words (quote a path with spaces); a single path may also start "
            "with `~/` or hold `$NAME` references, which expand. Shell code (operators, "
            "command substitution, globs) is refused: put it in `prepend_script`.",
        ),
        optional_field("module_purge", bool, False, "Run `module purge` before loading modules."),
        optional_field("module_unload_list", list, [], "Modules unloaded before the tasks run."),
        optional_field(
            "module_list",
            list,
            [],
            "Modules loaded before the tasks run; an entry may name several modules "
            "(static shell words, as `module_unload_list`).",
        ),
        optional_field(
            "envs",
            dict,
            {},
            "Environment variables exported before the tasks run; a list value "
            "exports once per item. `$NAME` references expand, nothing else does.",
        ),
        optional_field(
            "prepend_script", list, [], "Lines inserted verbatim (raw shell) before the tasks."
        ),
        optional_field(
            "append_script", list, [], "Lines inserted verbatim (raw shell) after the tasks."
        ),
        optional_field("wait_time", [int, float], 0, "Seconds to wait after submitting each job."),
    ]


def _kwargs_variant() -> Variant:
    from dpdispatcher.machine import Machine

    choices = []
    for name, cls in Machine.canonical_classes().items():
        kwargs = Argument(
            "kwargs",
            dict,
            cls.kwargs_fields(),
            optional=True,
            default={},
            doc=f"Options specific to {name}.",
        )
        choices.append(Argument(name, dict, [kwargs], alias=_spellings(Machine, cls)))
    return Variant(
        "batch_type", choices, optional=False, doc="The batch type whose `kwargs` are accepted."
    )


def kwargs_union_subfields() -> list[Argument]:
    """Every batch type's ``kwargs`` fields (used when the batch type is not known)."""
    from dpdispatcher.machine import Machine

    seen: dict[str, Argument] = {}
    for cls in Machine.canonical_classes().values():
        for arg in cls.kwargs_fields():
            # no defaults here: each batch type applies its own when rendering
            seen.setdefault(
                arg.name,
                Argument(arg.name, arg.dtype, optional=True, alias=list(arg.alias), doc=arg.doc),
            )
    return list(seen.values())


def resources_dargs(detail_kwargs: bool = True, *, _union_kwargs: bool = False) -> Argument:
    """Schema of the resources dictionary.

    With ``detail_kwargs`` the ``kwargs`` sub-dictionary is documented per batch type,
    selected by a ``batch_type`` key (any spelling the registry accepts); otherwise
    ``kwargs`` is a free dictionary (each batch type checks its own when submitting).
    """
    args = _resources_base_args()
    if detail_kwargs:
        return Argument(
            "resources", dict, args, [_kwargs_variant()], doc="Computing resources of each job."
        )
    args.append(
        Argument(
            "kwargs",
            dict,
            kwargs_union_subfields() if _union_kwargs else [],
            optional=True,
            default={},
            doc="Options specific to the batch type (see each batch type's kwargs).",
        )
    )
    if not _union_kwargs:
        args.append(
            Argument(
                "batch_type",
                str,
                optional=True,
                doc="The batch type, as in the machine (allowed here; the machine's governs).",
            )
        )
    return Argument("resources", dict, args, doc="Computing resources of each job.")


def task_dargs() -> Argument:
    """Schema of a task dictionary."""
    opt_s = [str, type(None)]
    return Argument(
        "task",
        dict,
        [
            Argument(
                "command", str, doc="Shell command of the task (raw shell); exit 0 = success."
            ),
            Argument(
                "task_work_path",
                str,
                doc="Directory of the task, relative to the submission's work_base.",
            ),
            optional_field(
                "forward_files",
                list,
                [],
                "Files (globs allowed) sent to the task directory before it runs.",
            ),
            optional_field(
                "backward_files",
                list,
                [],
                "Files, globs or directories brought back after the task finished.",
            ),
            optional_field(
                "outlog",
                opt_s,
                "log",
                "File receiving the command's stdout; null = not redirected.",
            ),
            optional_field(
                "errlog",
                opt_s,
                "err",
                "File receiving the command's stderr; null = not redirected.",
            ),
            optional_field(
                "task_name", opt_s, None, "Scheduler job name when the job has this single task."
            ),
        ],
        doc="A command and the files it needs and produces.",
    )


def machine_dargs() -> Argument:
    """Schema of the machine dictionary (the remote profile depends on the context type)."""
    from dpdispatcher.base_context import BaseContext

    context_choices = [
        Argument(name, dict, cls.machine_subfields(), alias=_spellings(BaseContext, cls))
        for name, cls in BaseContext.canonical_classes().items()
    ]
    variant = Variant(
        "context_type", context_choices, doc="How files and commands reach the execution side."
    )
    return Argument("machine", dict, _machine_fields(), [variant], doc="Where and how jobs run.")


def _machine_fields() -> list[Argument]:
    return [
        Argument("batch_type", str, doc="Batch system: " + ", ".join(_batch_names()) + "."),
        Argument(
            "local_root",
            str,
            doc="Directory holding the submission's work_base; a relative path is taken "
            "from the current working directory when the machine is loaded.",
        ),
        optional_field(
            "remote_root",
            [str, type(None)],
            None,
            "Directory where job roots are created (not needed for LazyLocalContext). "
            "For LocalContext a relative path is taken from the current working directory "
            "when the machine is loaded; over SSH, from the remote home directory.",
        ),
        optional_field(
            "clean_asynchronously",
            bool,
            False,
            "Remove the job root in the background after downloading.",
        ),
        optional_field("retry_count", int, 3, "Resubmissions of a failing job before giving up."),
        optional_field(
            "create_remote_root",
            bool,
            False,
            "Create remote_root if it does not exist (SSHContext).",
        ),
    ]


def _batch_names() -> list[str]:
    from dpdispatcher.machine import Machine

    return list(Machine.canonical_classes())


def resolve_root_ref(data: dict[str, Any], allow_ref: bool) -> dict[str, Any]:
    """A dict that is itself ``{"$ref": "file.json"}`` (plus overrides) read from the file.

    Needed before the registry names can be read from it; references deeper down are
    resolved by dargs. Without ``allow_ref`` the dict is returned as it is.
    """
    if not allow_ref or "$ref" not in data:
        return data
    from dpdispatcher._loaders import load_json, load_yaml

    path = str(data["$ref"])
    loaded = load_yaml(path) if path.endswith((".yaml", ".yml")) else load_json(path)
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{path}: expected a mapping at the top level")
    return {**loaded, **{k: v for k, v in data.items() if k != "$ref"}}


def _spellings(registry: Any, cls: type) -> list[str]:
    """Every name the registry accepts for ``cls`` except its canonical name."""
    names = {k for k, v in registry.subclasses_dict.items() if v is cls}
    return sorted(names - {cls.__name__})


def normalize(
    schema: Argument,
    data: Any,
    what: str,
    *,
    strict: bool = False,
    skip: tuple[str, ...] = (),
    allow_ref: bool = False,
) -> dict[str, Any]:
    """Fill defaults, drop ``_*`` comment keys, check types and values.

    Unknown keys are dropped with one WARNING each (naming the key, where it was found
    and the closest valid key); with ``strict`` they are an error instead. Keys under the
    paths in ``skip`` (e.g. ``("kwargs",)``) are not looked at for unknown keys.
    ``allow_ref`` lets ``{"$ref": "file.json"}`` entries load from files (dargs).
    """
    from dargs.dargs import ArgumentError

    if not isinstance(data, dict):
        raise ConfigurationError(f"{what}: expected a dict, got {type(data).__name__}")
    try:
        out = schema.normalize_value(data, trim_pattern=TRIM_PATTERN, allow_ref=allow_ref)
        # a second pass fills the defaults inside sub-dicts that were themselves defaulted
        out = schema.normalize_value(out, trim_pattern=TRIM_PATTERN)
        schema.check_value(out, strict=False)
        unknown = find_unknown_keys(schema, out, what, skip)
    except ArgumentError as err:
        raise schema_error(err)(f"invalid {what}: {err}") from err
    except OSError as err:
        raise ConfigurationError(f"invalid {what}: {err}") from err
    if unknown and strict:
        raise ConfigurationError(
            "; ".join(f"{u.where}: unknown key {u.key!r}{u.hint}" for u in unknown)
        )
    for u in unknown:
        dlog.warning("%s: unknown key %r ignored%s", u.where, u.key, u.hint)
        u.parent.pop(u.key, None)
    return dict(out)
