"""Task: one shell command, where it runs, and the files it needs and produces."""

from __future__ import annotations

import hashlib
import json
import re
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import Any, cast

from dpdispatcher import _tracked
from dpdispatcher._loaders import (
    check_path_list,
    check_relative_path,
    load_json,
    load_yaml,
)
from dpdispatcher._script import names
from dpdispatcher._tracked import JsonCached, tracked_strings
from dpdispatcher.errors import ConfigurationError
from dpdispatcher.utils.job_status import JobStatus

#: the fields of :meth:`Task.serialize`, and the slots holding the file lists; assigning
#: one drops the cached JSON (and tracks a list assigned: copies and pickles set the slots)
_SERIALIZED = frozenset(
    (
        "command",
        "task_work_path",
        "forward_files",
        "backward_files",
        "outlog",
        "errlog",
        "task_name",
        "_forward",
        "_backward",
    )
)


class Task(JsonCached):
    """A command to run in ``task_work_path`` with its forward and backward files.

    Parameters
    ----------
    command : str
        Shell command (raw shell, inserted verbatim); exit code 0 means success.
    task_work_path : str
        Directory of the task, relative to the submission's ``work_base``.
    forward_files, backward_files : list of str
        Files sent before / brought back after the run (globs and directories allowed).
    outlog, errlog : str or None
        Files receiving stdout / stderr; ``None`` leaves the stream alone.
    task_name : str, optional
        Scheduler job name when the job holds only this task.

    Examples
    --------
    >>> t = Task(command="echo hi", task_work_path="dir1/", outlog="out.txt")
    >>> t.serialize()["outlog"]
    'out.txt'
    """

    __slots__ = (
        "__dict__",  # other attributes may still be set, as on the original's tasks
        "_backward",
        "_forward",
        "_json",
        "_task_state",
        "command",
        "errlog",
        "outlog",
        "task_hash",
        "task_name",
        "task_work_path",
    )
    _json_fields = _SERIALIZED

    command: str
    task_work_path: str
    #: the file lists: tuples, shared by tasks listing the same files, until first read (see
    #: :func:`_file_list`): a million tasks give the garbage collector no lists to traverse
    _forward: tuple[str, ...] | list[str]
    _backward: tuple[str, ...] | list[str]
    outlog: str | None
    errlog: str | None
    task_name: str | None
    task_hash: str
    _task_state: JobStatus
    _json: str | None

    def __init__(
        self,
        command: str,
        task_work_path: str,
        forward_files: list[str] | None = None,
        backward_files: list[str] | None = None,
        outlog: str | None = "log",
        errlog: str | None = "err",
        task_name: str | None = None,
    ) -> None:
        forward = forward_files if forward_files is not None else []
        backward = backward_files if backward_files is not None else []
        if not _plainly_valid(command, task_work_path, forward, backward, outlog, errlog):
            _explain_invalid(command, task_work_path, forward, backward, outlog, errlog)
        init = object.__setattr__  # plain stores: nothing is cached yet
        init(self, "command", command)
        init(self, "task_work_path", task_work_path)
        init(self, "_forward", _shared_tuple(forward))
        init(self, "_backward", _shared_tuple(backward))
        init(self, "outlog", outlog)
        init(self, "errlog", errlog)
        init(self, "task_name", task_name)
        init(self, "_json", None)
        init(self, "task_hash", self.get_hash())
        init(self, "_task_state", JobStatus.unsubmitted)  # new: in no job's cached JSON

    @property
    def forward_files(self) -> list[str]:
        """Files sent before the run (a tracked list: changing it makes cached JSON stale)."""
        return _file_list(self, "_forward")

    @forward_files.setter
    def forward_files(self, files: list[str]) -> None:
        object.__setattr__(self, "_forward", files)  # tracked by JsonCached.__setattr__

    @property
    def backward_files(self) -> list[str]:
        """Files brought back after the run (a tracked list, as :attr:`forward_files`)."""
        return _file_list(self, "_backward")

    @backward_files.setter
    def backward_files(self, files: list[str]) -> None:
        object.__setattr__(self, "_backward", files)

    @property
    def task_state(self) -> JobStatus:
        """The state of the task as last seen (1.x attribute; the job's state governs)."""
        return self._task_state

    @task_state.setter
    def task_state(self, value: JobStatus) -> None:
        object.__setattr__(self, "_task_state", value)
        _tracked.changed()  # the "task_states" its job writes in the state file changed

    def __repr__(self) -> str:
        return repr(self.serialize())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.task_hash)

    @staticmethod
    def arginfo() -> Any:
        """The dargs ``Argument`` describing a task dictionary."""
        from dpdispatcher.arginfo import task_dargs

        return task_dargs()

    @classmethod
    def load_from_dict(
        cls, task_dict: dict[str, Any], allow_ref: bool = False, *, strict: bool = False
    ) -> Task:
        """Build a task from a dictionary, validated against :meth:`arginfo`.

        An unknown key is dropped with a warning naming it (an error with ``strict=True``).
        """
        from dpdispatcher.arginfo import normalize, resolve_root_ref, task_dargs

        data = resolve_root_ref(task_dict, allow_ref) if isinstance(task_dict, dict) else task_dict
        return cls(**normalize(task_dargs(), data, "task", strict=strict, allow_ref=allow_ref))

    @classmethod
    def load_from_json(
        cls, json_file: str | Path, allow_ref: bool = False, *, strict: bool = False
    ) -> Task:
        """Build a task from a JSON file (see :meth:`load_from_dict`)."""
        data = _expect_dict(load_json(json_file), json_file)
        return cls.load_from_dict(data, allow_ref, strict=strict)

    @classmethod
    def load_from_yaml(
        cls, yaml_file: str | Path, allow_ref: bool = False, *, strict: bool = False
    ) -> Task:
        """Build a task from a YAML file (see :meth:`load_from_dict`)."""
        data = _expect_dict(load_yaml(yaml_file), yaml_file)
        return cls.load_from_dict(data, allow_ref, strict=strict)

    @classmethod
    def deserialize(cls, task_dict: dict[str, Any]) -> Task:
        """Inverse of :meth:`serialize`."""
        return cls.load_from_dict(task_dict)

    def serialize(self) -> dict[str, Any]:
        """The task as a dictionary, in the fixed key order that feeds the hash."""
        out: dict[str, Any] = {
            "command": self.command,
            "task_work_path": self.task_work_path,
            "forward_files": list(self._forward),
            "backward_files": list(self._backward),
            "outlog": self.outlog,
            "errlog": self.errlog,
        }
        if self.task_name is not None:
            out["task_name"] = self.task_name
        return out

    def to_json(self) -> str:
        """``json.dumps(self.serialize())``, computed once and kept until the task changes."""
        text = self._json
        if text is None:
            try:
                text = _task_json(self)
            except TypeError:  # a field was set to something other than text: the slow way
                text = json.dumps(self.serialize())
            object.__setattr__(self, "_json", text)
        return text

    def get_hash(self) -> str:
        """sha1 of the JSON of :meth:`serialize` (of the task as it is now).

        The ``task_hash`` attribute keeps the hash taken when the task was built.
        """
        return hashlib.sha1(self.to_json().encode("utf-8")).hexdigest()


#: in paths joined by NUL: an empty or absolute path, or a ``..`` component (the checks
#: without a regex below find the first two; this one runs only when ".." appears)
_BAD_IN_JOINED = re.compile(r"(?:^|\x00)(?:/|\x00|$)|(?:^|[\x00/])\.\.(?:$|[\x00/])")


def _plainly_valid(
    command: Any, work_path: Any, forward: Any, backward: Any, outlog: Any, errlog: Any
) -> bool:
    """The quick test nearly every task passes, one regex over all its paths joined by NUL
    (the slow checks of :func:`_explain_invalid` say what is wrong otherwise)."""
    if type(command) is not str or not command.strip():
        return False
    if type(forward) is not list or type(backward) is not list:
        return False
    paths = [work_path, *forward, *backward]
    if outlog is not None:
        paths.append(outlog)
    if errlog is not None:
        paths.append(errlog)
    try:
        joined = "\x00".join(paths)
    except TypeError:  # not all strings
        return False
    if joined.count("\x00") != len(paths) - 1:  # a path holds a NUL
        return False
    if ".." in joined and _BAD_IN_JOINED.search(joined) is not None:
        return False
    return not (
        joined[0] in "/\x00" or joined[-1] == "\x00" or "\x00\x00" in joined or "\x00/" in joined
    )


def _explain_invalid(
    command: Any, work_path: Any, forward: Any, backward: Any, outlog: Any, errlog: Any
) -> None:
    """Raise the error naming what is wrong with a task's fields (if anything is)."""
    if not isinstance(command, str) or not command.strip():
        raise ConfigurationError(f"task/command: expected a non-empty string, got {command!r}")
    check_relative_path(work_path, "task/task_work_path")
    check_path_list(forward, "task/forward_files")
    check_path_list(backward, "task/backward_files")
    for key, log in (("outlog", outlog), ("errlog", errlog)):
        if log is not None:
            check_relative_path(log, f"task/{key}")


def _task_json(task: Task) -> str:
    """``json.dumps(task.serialize())`` written out for the usual field types (strings,
    lists of strings, None); raises TypeError for any other type.

    >>> t = Task("echo é", "d", forward_files=["a"], outlog=None, task_name="n")
    >>> _task_json(t) == json.dumps(t.serialize())
    True
    """
    text = (
        f'{{"command": {_json_str(task.command)}, '
        f'"task_work_path": {_json_str(task.task_work_path)}, '
        f'"forward_files": [{", ".join(map(_json_str, task._forward))}], '
        f'"backward_files": [{", ".join(map(_json_str, task._backward))}], '
        f'"outlog": {_json_or_null(task.outlog)}, "errlog": {_json_or_null(task.errlog)}'
    )
    if task.task_name is not None:
        return f'{text}, "task_name": {_json_str(task.task_name)}}}'
    return text + "}"


#: the file lists of recent tasks, each once (see :func:`_shared_tuple`); cleared when full
_FILE_LISTS: dict[tuple[str, ...], tuple[str, ...]] = {}
_FILE_LISTS_MAX = 1024


def _shared_tuple(files: list[str]) -> tuple[str, ...]:
    """``tuple(files)``, the very tuple of an earlier task listing the same files.

    Tasks usually list the same file names: a million of them then hold one tuple, and
    the garbage collector does not count a new tracked object per list.
    """
    key = tuple(files)
    shared = _FILE_LISTS.get(key)
    if shared is None:
        if len(_FILE_LISTS) >= _FILE_LISTS_MAX:
            _FILE_LISTS.clear()
        shared = _FILE_LISTS[key] = key
    return shared


def _file_list(task: Task, slot: str) -> list[str]:
    """The file list of ``task`` in ``slot``, a tracked list from the first read on (the
    tuple the constructor stored becomes one then; its cached JSON stays true)."""
    files = getattr(task, slot)
    if type(files) is tuple:
        files = tracked_strings(files, task)
        object.__setattr__(task, slot, files)
    return cast("list[str]", files)


def _json_or_null(value: str | None) -> str:
    return "null" if value is None else _json_str(value)


def _expect_dict(data: Any, source: str | Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: expected a mapping at the top level")
    return data


def task_tag_path(task: Task) -> str:
    """The finish tag of ``task``, relative to the job root (:func:`names.task_tag_path`)."""
    return names.task_tag_path(task.task_work_path, task.task_hash)
