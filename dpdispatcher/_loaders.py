"""Reading configuration files (JSON or YAML) into dictionaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dpdispatcher.errors import ConfigurationError


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise ConfigurationError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from err
    except FileNotFoundError as err:
        raise ConfigurationError(f"{path}: no such file") from err


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file (needs PyYAML: ``pip install dpdispatcher[yaml]``)."""
    try:
        import yaml
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ConfigurationError("reading YAML needs PyYAML: pip install pyyaml") from err
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as err:
        raise ConfigurationError(f"{path}: not valid YAML: {err}") from err
    except FileNotFoundError as err:
        raise ConfigurationError(f"{path}: no such file") from err


def path_problem(path: Any) -> str | None:
    """What is wrong with ``path`` as a relative path inside the work base, or None.

    >>> path_problem("a/b"), path_problem("a/../../b")
    (None, "'a/../../b' must not climb out of the work base with '..'")
    """
    if not isinstance(path, str) or path == "":
        return f"expected a non-empty relative path, got {path!r}"
    if "\0" in path:
        return f"{path!r} contains a NUL byte"
    if path.startswith("/"):
        return f"{path!r} must be relative to the work base"
    if ".." in path and ".." in path.split("/"):
        return f"{path!r} must not climb out of the work base with '..'"
    return None


def plainly_fine(path: Any) -> bool:
    """The quick test passed by nearly every path; :func:`path_problem` explains a failure."""
    return (
        type(path) is str
        and path != ""
        and path[0] != "/"
        and ".." not in path
        and ("\0" not in path)
    )


def check_relative_path(path: str, key: str) -> str:
    """Refuse absolute paths and paths climbing out with ``..``."""
    if plainly_fine(path):
        return path
    problem = path_problem(path)
    if problem is not None:
        raise ConfigurationError(f"{key}: {problem}")
    return path


def check_path_list(paths: Any, key: str) -> list[str]:
    """A list of relative paths (a single string is refused: it is a common slip)."""
    if not isinstance(paths, (list, tuple)):
        raise ConfigurationError(f"{key}: expected a list of paths, got {type(paths).__name__}")
    if all(map(plainly_fine, paths)):
        return list(paths)
    for i, path in enumerate(paths):
        problem = path_problem(path)
        if problem is not None:
            raise ConfigurationError(f"{key}[{i}]: {problem}")
    return list(paths)
