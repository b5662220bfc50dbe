"""Task: one shell command, where it runs, and the files it needs and produces."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dpdispatcher._loaders import check_path_list, check_relative_path, load_json, load_yaml
from dpdispatcher.errors import ConfigurationError


class Task:
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
        if not isinstance(command, str) or not command.strip():
            raise ConfigurationError(f"task/command: expected a non-empty string, got {command!r}")
        self.command = command
        self.task_work_path = check_relative_path(task_work_path, "task/task_work_path")
        self.forward_files = check_path_list(list(forward_files or []), "task/forward_files")
        self.backward_files = check_path_list(list(backward_files or []), "task/backward_files")
        for key, log in (("outlog", outlog), ("errlog", errlog)):
            if log is not None:
                check_relative_path(log, f"task/{key}")
        self.outlog = outlog
        self.errlog = errlog
        self.task_name = task_name
        self.task_hash = self.get_hash()

    def __repr__(self) -> str:
        return f"Task(command={self.command!r}, task_work_path={self.task_work_path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(self.task_hash)

    @staticmethod
    def arginfo() -> Any:
        """The dargs ``Argument`` describing a task dictionary."""
        from dpdispatcher.arginfo import task_dargs

        return task_dargs()

    @classmethod
    def load_from_dict(cls, task_dict: dict[str, Any]) -> Task:
        """Build a task from a dictionary, validated against :meth:`arginfo`."""
        from dpdispatcher.arginfo import normalize, task_dargs

        return cls(**normalize(task_dargs(), task_dict, "task"))

    @classmethod
    def load_from_json(cls, json_file: str | Path) -> Task:
        """Build a task from a JSON file."""
        return cls.load_from_dict(_expect_dict(load_json(json_file), json_file))

    @classmethod
    def load_from_yaml(cls, yaml_file: str | Path) -> Task:
        """Build a task from a YAML file."""
        return cls.load_from_dict(_expect_dict(load_yaml(yaml_file), yaml_file))

    @classmethod
    def deserialize(cls, task_dict: dict[str, Any]) -> Task:
        """Inverse of :meth:`serialize`."""
        return cls.load_from_dict(task_dict)

    def serialize(self) -> dict[str, Any]:
        """The task as a dictionary, in the fixed key order that feeds the hash."""
        out: dict[str, Any] = {
            "command": self.command,
            "task_work_path": self.task_work_path,
            "forward_files": list(self.forward_files),
            "backward_files": list(self.backward_files),
            "outlog": self.outlog,
            "errlog": self.errlog,
        }
        if self.task_name is not None:
            out["task_name"] = self.task_name
        return out

    def get_hash(self) -> str:
        """sha1 of the JSON of :meth:`serialize`."""
        return hashlib.sha1(json.dumps(self.serialize()).encode("utf-8")).hexdigest()


def _expect_dict(data: Any, source: str | Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: expected a mapping at the top level")
    return data
