"""``dpdisp submit``: run a submission described by one JSON file."""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dargs import Argument

from dpdispatcher._loaders import load_json
from dpdispatcher.arginfo import machine_dargs, resources_dargs, task_dargs
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError
from dpdispatcher.machine import Machine
from dpdispatcher.resources import Resources
from dpdispatcher.submission import Submission
from dpdispatcher.task import Task

#: keys of the submission JSON
SUBMISSION_KEYS = (
    "work_base",
    "machine",
    "resources",
    "task_list",
    "forward_common_files",
    "backward_common_files",
    "previous_submission_hash",
    "continue_on_failure",
)

_CHDIR_LOCK = threading.Lock()


def submission_args() -> Argument:
    """The dargs schema of the submission JSON (machine, resources, task_list, ...)."""
    machine, resources, task = machine_dargs(), resources_dargs(detail_kwargs=False), task_dargs()
    task_list = Argument(
        "task_list", list, list(task.sub_fields.values()), repeat=True, doc="The tasks."
    )
    opt_str = [str, type(None)]
    return Argument(
        "submission",
        dict,
        [
            Argument("work_base", str, doc="Directory of the tasks, relative to local_root."),
            machine,
            resources,
            task_list,
            Argument(
                "forward_common_files",
                list,
                optional=True,
                default=[],
                doc="Files sent once to the job root.",
            ),
            Argument(
                "backward_common_files",
                list,
                optional=True,
                default=[],
                doc="Files brought back from the job root.",
            ),
            Argument(
                "previous_submission_hash",
                opt_str,
                optional=True,
                default=None,
                doc="Adopt the job root of this earlier submission.",
            ),
            Argument(
                "continue_on_failure",
                bool,
                optional=True,
                default=False,
                doc="Keep running the other jobs when one fails for good.",
            ),
        ],
        doc="A submission: where the tasks are, what they run and where.",
    )


def submission_from_dict(data: Any, *, strict: bool = False, allow_ref: bool = False) -> Submission:
    """Build a submission from the ``dpdisp submit`` JSON layout.

    Unknown keys (at any level) are dropped with a warning, or refused with ``strict``.
    """
    if not isinstance(data, dict):
        raise ConfigurationError("submission: expected a JSON object")
    for key in ("work_base", "machine", "resources", "task_list"):
        if key not in data:
            raise ConfigurationError(f"submission/{key} is required")
    _report_unknown(data, strict)
    tasks = data["task_list"]
    if not isinstance(tasks, list):
        raise ConfigurationError("submission/task_list: expected a list of task objects")
    machine = Machine.load_from_dict(data["machine"], allow_ref, strict=strict)
    resources = Resources.load_from_dict(data["resources"], allow_ref, strict=strict)
    if strict:
        machine.check_resources(resources, strict=True)
    accepted = inspect.signature(Submission).parameters
    extra = {
        k: data[k]
        for k in ("previous_submission_hash", "continue_on_failure")
        if data.get(k) is not None and k in accepted
    }
    return Submission(
        data["work_base"],
        machine,
        resources,
        forward_common_files=data.get("forward_common_files", []),
        backward_common_files=data.get("backward_common_files", []),
        task_list=[Task.load_from_dict(t, allow_ref, strict=strict) for t in tasks],
        **extra,
    )


def _report_unknown(data: dict[str, Any], strict: bool) -> None:
    from dpdispatcher._unknown_keys import suggestion

    for key in data:
        if key in SUBMISSION_KEYS or str(key).startswith("_") or key == "$schema":
            continue
        hint = suggestion(str(key), list(SUBMISSION_KEYS))
        if strict:
            raise ConfigurationError(f"submission: unknown key {key!r}{hint}")
        dlog.warning("submission: unknown key %r ignored%s", key, hint)


@contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    """``$ref`` paths are relative to the JSON file: resolve them from its directory."""
    with _CHDIR_LOCK:
        old = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(old)


def load_submission_from_json(
    json_path: str, allow_ref: bool = False, *, strict: bool = False
) -> Submission:
    """Read a submission JSON file (``$ref`` entries load other files with ``allow_ref``)."""
    data = load_json(json_path)
    if not allow_ref:
        return submission_from_dict(data, strict=strict)
    with _in_directory(Path(json_path).resolve().parent):
        return submission_from_dict(data, strict=strict, allow_ref=True)


def submit(
    *,
    filename: str,
    dry_run: bool = False,
    exit_on_submit: bool = False,
    allow_ref: bool = False,
    clean: bool = True,
    continue_on_failure: bool | None = None,
    strict: bool = False,
    **run_options: Any,
) -> Submission:
    """Load ``filename`` and run it (``dpdisp submit``); return the submission.

    ``continue_on_failure`` is passed on only when given, so a value in the file holds.
    """
    submission = load_submission_from_json(filename, allow_ref=allow_ref, strict=strict)
    options: dict[str, Any] = {
        "dry_run": dry_run,
        "exit_on_submit": exit_on_submit,
        "clean": clean,
        **run_options,
    }
    if continue_on_failure is not None:
        options["continue_on_failure"] = continue_on_failure
    submission.run_submission(**options)
    return submission
