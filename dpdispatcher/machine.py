"""Machine: the batch system a job is submitted to, and the one script renderer.

Each batch type is a subclass that supplies only pure hooks: its header lines, the
submit / status / kill commands, parsers of their output and a state map. Submitting,
polling (one status command for all jobs), killing and the finish-tag rule are written
once, in :class:`~dpdispatcher._machine_queue.SchedulerQueue`, a base of
:class:`Machine`; construction, serialization and rendering live here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher._legacy import legacy_machine, legacy_machine_dict
from dpdispatcher._loaders import load_json, load_yaml
from dpdispatcher._machine_queue import ENDED, KILLED_EXIT_CODES, NOT_REPORTED, SchedulerQueue
from dpdispatcher._registry import Registered
from dpdispatcher._script import names, render
from dpdispatcher._submit_shell import (
    SUBMIT_MARK,
    batch_submit_command,
    split_batch_output,
    submit_lock_command,
    wrap_submit,
)
from dpdispatcher.base_context import BaseContext
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, SchemaKeyError
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.resources import Resources
    from dpdispatcher.submission import Job, Submission

#: re-exported from :mod:`dpdispatcher._machine_queue` and :mod:`dpdispatcher._submit_shell`,
#: where they live
__all__ = [
    "ENDED",
    "KILLED_EXIT_CODES",
    "NOT_REPORTED",
    "SUBMIT_MARK",
    "Machine",
    "batch_submit_command",
    "split_batch_output",
    "submit_lock_command",
    "wrap_submit",
]


class Machine(Registered, SchedulerQueue):
    """A batch system reached through a context.

    ``Machine(batch_type="Slurm", context_type="SSHContext", local_root=..., ...)`` or
    :meth:`load_from_dict` build the registered subclass (names are case-insensitive).

    Examples
    --------
    >>> m = Machine.load_from_dict({"batch_type": "shell", "context_type": "local",
    ...                             "local_root": ".", "remote_root": "/tmp/dpd"})
    >>> type(m).__name__, type(m.context).__name__
    ('Shell', 'LocalContext')
    """

    subclasses_dict: ClassVar[dict[str, type[Any]]] = {}
    _canonical: ClassVar[dict[str, type[Any]]] = {}
    _registry_kind = "batch_type"
    _abstract = True

    #: raw scheduler state -> JobStatus (finished/terminated mean "ended: check the tag")
    state_map: ClassVar[dict[str, JobStatus]] = {}
    #: substrings of scheduler errors that mean "try again later"
    transient_patterns: ClassVar[tuple[str, ...]] = ()
    #: status output formats, preferred first (machine-readable before text); the
    #: machine falls back to the next one when the tool does not offer a format
    status_formats: ClassVar[tuple[str, ...]] = ("text",)
    #: whether jobs are submitted by shell commands run through the context (False:
    #: the batch type talks to an API and implements :meth:`submit_prepared` itself)
    submits_by_command: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A batch type that overrides :meth:`submit_prepared` must say so with
        ``submits_by_command = False`` (else its jobs would go through shell commands)."""
        super().__init_subclass__(**kwargs)
        if cls.submits_by_command and "submit_prepared" in vars(cls):
            raise TypeError(
                f"{cls.__name__} overrides submit_prepared: set submits_by_command = False"
            )

    def __init__(
        self,
        batch_type: str | None = None,
        context_type: str | None = None,
        local_root: str | None = None,
        remote_root: str | None = None,
        remote_profile: dict[str, Any] | None = None,
        *,
        context: BaseContext | None = None,
        retry_count: int = 3,
        clean_asynchronously: bool = False,
        create_remote_root: bool = False,
        **kwargs: Any,
    ) -> None:
        for key in sorted(kwargs):
            dlog.warning("machine: unknown key %r ignored", key)
        if context is None:
            if context_type is None or local_root is None:
                raise ConfigurationError(
                    "machine: give either context=... or context_type and local_root"
                )
            context = BaseContext.load_from_dict(
                {
                    "context_type": context_type,
                    "local_root": local_root,
                    "remote_root": remote_root,
                    "remote_profile": remote_profile or {},
                    "clean_asynchronously": clean_asynchronously,
                    "create_remote_root": create_remote_root,
                }
            )
        if not isinstance(retry_count, int) or retry_count < 0:
            raise ConfigurationError(
                f"machine/retry_count: expected an int >= 0, got {retry_count!r}"
            )
        self.retry_count = retry_count
        self._format_index = 0
        self.bind_context(context)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(context={type(self.context).__name__})"

    def __eq__(self, other: object) -> bool:
        """Machines are equal when they serialize alike (as in 1.x)."""
        return isinstance(other, Machine) and self.serialize() == other.serialize()

    #: a machine stays usable as a dict key: identity hash (equality is by content)
    __hash__ = object.__hash__

    def bind_context(self, context: BaseContext) -> None:
        """Attach the context through which this machine runs commands."""
        self.context = context

    # -- construction -------------------------------------------------------------
    @staticmethod
    def arginfo() -> Any:
        """The dargs ``Argument`` describing a machine dictionary."""
        from dpdispatcher.arginfo import machine_dargs

        return machine_dargs()

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """dargs fields this batch type accepts in ``resources.kwargs`` (hook)."""
        return []

    @classmethod
    def resources_subfields(cls) -> list[Any]:
        """The dargs ``kwargs`` argument of this batch type's resources, as in 1.1.0: one
        ``Argument("kwargs", dict)`` whose sub-fields are :meth:`kwargs_subfields`.

        A subclass written for 1.1.0 may override this instead of the hook.
        """
        from dargs import Argument

        return [
            Argument(
                "kwargs",
                dict,
                cls.kwargs_subfields(),
                optional=True,
                doc=f"{cls.__name__}-specific extra arguments.",
            )
        ]

    @classmethod
    def kwargs_fields(cls) -> list[Any]:
        """The ``resources.kwargs`` fields, read through :meth:`resources_subfields` (so a
        1.1.0-style override counts)."""
        fields: list[Any] = []
        for arg in cls.resources_subfields():
            if arg.name == "kwargs":
                fields += list(arg.sub_fields.values())
            else:  # a flat list of kwargs fields
                fields.append(arg)
        return fields

    @classmethod
    def load_from_dict(
        cls, machine_dict: dict[str, Any], allow_ref: bool = False, *, strict: bool = False
    ) -> Machine:
        """Build a machine (and its context) from a dictionary.

        Types and values are checked; an unknown key is dropped with a warning naming it
        (an error with ``strict=True``). ``allow_ref`` lets ``$ref`` entries load files.
        """
        from dpdispatcher.arginfo import machine_dargs, normalize, resolve_root_ref

        if not isinstance(machine_dict, dict):
            raise ConfigurationError(f"machine: expected a dict, got {type(machine_dict).__name__}")
        data = resolve_root_ref(dict(machine_dict), allow_ref)
        for key, registry in (("batch_type", Machine), ("context_type", BaseContext)):
            if key not in data:
                raise SchemaKeyError(f"machine/{key} is required")
            data[key] = registry.resolve_name(data[key])
        data = normalize(machine_dargs(), data, "machine", strict=strict, allow_ref=allow_ref)
        return Machine(**data)

    @classmethod
    def load_from_json(
        cls, json_path: str | Path, allow_ref: bool = False, *, strict: bool = False
    ) -> Machine:
        """Build a machine from a JSON file (see :meth:`load_from_dict`)."""
        return cls.load_from_dict(load_json(json_path), allow_ref, strict=strict)

    @classmethod
    def load_from_yaml(
        cls, yaml_path: str | Path, allow_ref: bool = False, *, strict: bool = False
    ) -> Machine:
        """Build a machine from a YAML file (see :meth:`load_from_dict`)."""
        return cls.load_from_dict(load_yaml(yaml_path), allow_ref, strict=strict)

    def serialize(self, if_empty_remote_profile: bool = False) -> dict[str, Any]:
        """The machine as a dictionary, as 1.1.0 gives it: the roots as written,
        ``clean_asynchronously``, SSH's ``create_remote_root`` and ``retry_count`` besides
        the :meth:`state_dict` keys; secrets are left out. :meth:`load_from_dict` of it
        builds the same machine."""
        profile = {} if if_empty_remote_profile else profile_with_defaults(self.context)
        return legacy_machine_dict("1.1.0", legacy_machine(self), profile=profile)

    def state_dict(self, if_empty_remote_profile: bool = False) -> dict[str, Any]:
        """What identifies the machine, persisted in the state file and hashed into the
        submission hash: ``batch_type``, ``context_type``, the absolute roots and the
        ``remote_profile`` without secrets. Settings that do not change where or how the
        jobs run (``retry_count``, ``clean_asynchronously``, ``create_remote_root``) are
        left out, so changing them keeps the hash."""
        ctx = self.context
        out: dict[str, Any] = {
            "batch_type": type(self).__name__,
            "context_type": type(ctx).__name__,
            "local_root": ctx.init_local_root,
            "remote_root": ctx.init_remote_root,
            "remote_profile": {} if if_empty_remote_profile else profile_with_defaults(ctx),
        }
        return out

    @classmethod
    def deserialize(cls, machine_dict: dict[str, Any]) -> Machine:
        """Inverse of :meth:`serialize`."""
        return cls.load_from_dict(machine_dict)

    # -- rendering ----------------------------------------------------------------
    def header_lines(self, job: Job) -> list[str]:
        """The scheduler directives of ``job`` (hook; the first line is the shebang)."""
        return ["#!/bin/bash -l"]

    def gen_script_header(self, job: Job) -> str:
        """The header: the template file if the resources name one, else the hook.

        As in 1.1.0 the directives are joined by newlines with no newline after the
        last one; :meth:`gen_script` supplies it.
        """
        res = job.resources
        template = res.strategy.get("customized_script_header_template_file")
        if template:
            try:
                text = Path(template).read_text(encoding="utf-8")
            except OSError as err:
                raise ConfigurationError(
                    f"resources/strategy/customized_script_header_template_file: cannot read "
                    f"{template!r}: {err}"
                ) from err
            try:
                return text.format(**res.serialize())
            except (KeyError, IndexError, ValueError) as err:
                raise ConfigurationError(
                    f"customized_script_header_template_file {template!r}: cannot format "
                    f"with the resources fields: {err!r}"
                ) from err
        return "\n".join(self.header_lines(job))

    def gen_script(self, job: Job) -> str:
        """The whole job script."""
        return render.render_script(
            self.gen_script_header(job),
            job.job_hash,
            self.context.remote_root,
            job.resources,
            end=self.gen_script_end(job),
        )

    def gen_run_body(self, job: Job) -> str:
        """The ``.run`` file sourced by the script (per-task blocks)."""
        return render.render_run_body(job.job_hash, job.job_task_list, job.resources)

    def gen_script_custom_flags_lines(self, job: Job) -> str:
        """The custom flag lines, verbatim."""
        return "".join(f"{flag}\n" for flag in job.resources.custom_flags)

    def gen_script_env(self, job: Job) -> str:
        """The env section of the script."""
        return render.render_env(job.job_hash, self.context.remote_root, job.resources)

    def gen_script_command(self, job: Job) -> str:
        """The per-task body (what the original inlined in the script)."""
        return self.gen_run_body(job)

    def gen_script_end(self, job: Job) -> str:
        """The end section of the script."""
        return render.render_end(job.job_hash, job.resources)

    @staticmethod
    def gen_script_wait(resources: Resources) -> str:
        """A ``wait`` line."""
        return "wait\n"

    def job_files(self, job: Job) -> dict[str, str]:
        """The files to write in the job root before submitting ``job``."""
        return {
            names.script_file(job.job_hash): self.gen_script(job),
            names.run_file(job.job_hash): self.gen_run_body(job),
        }

    def do_submit(self, job: Job) -> str:
        """Write the job's files and submit it; return the job id."""
        self.context.write_files(self.job_files(job))
        return self.submit_prepared(job)

    def check_if_recover(self, submission: Submission) -> bool:
        """Whether persisted state of ``submission`` exists in its job root."""
        return self.context.check_file_exists(names.state_file(submission.submission_hash))

    def check_resources(self, resources: Resources, *, strict: bool = False) -> None:
        """Warn about ``resources.kwargs`` keys this batch type does not know.

        One WARNING per key with the closest valid key; with ``strict`` an error. A batch
        type that declares no kwargs takes any (they may feed a custom header template).
        """
        from dpdispatcher._unknown_keys import suggestion

        allowed: dict[str, str] = {}
        for arg in self.kwargs_fields():
            allowed[arg.name] = arg.name
            allowed.update(dict.fromkeys(arg.alias, arg.name))
        if not allowed:
            return
        for key in resources.kwargs:
            if key in allowed:
                continue
            where = f"resources/kwargs of batch type {type(self).__name__}"
            hint = suggestion(key, sorted(set(allowed.values())))
            if strict:
                raise ConfigurationError(f"{where}: unknown key {key!r}{hint}")
            dlog.warning("%s: unknown key %r ignored%s", where, key, hint)

    def default_resources(self, resources: Resources) -> None:
        """Kept for compatibility; defaults come from the schema."""


def profile_with_defaults(context: BaseContext) -> dict[str, Any]:
    """The context's public ``remote_profile`` with its schema's defaults filled in, so a
    machine built in code serializes (and hashes) like the same machine loaded from a dict."""
    profile = context.public_profile()
    for arg in context.machine_subfields():
        if arg.name == "remote_profile" and (arg.sub_fields or arg.sub_variants):
            filled = arg.normalize_value(profile, trim_pattern="_*")
            return {k: v for k, v in filled.items() if k not in context.secret_keys or v is None}
    return profile
