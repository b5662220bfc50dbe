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


def check_relative_path(path: str, key: str) -> str:
    """Refuse absolute paths and paths climbing out with ``..``."""
    if not isinstance(path, str) or path == "":
        raise ConfigurationError(f"{key}: expected a non-empty relative path, got {path!r}")
    if "\0" in path:
        raise ConfigurationError(f"{key}: {path!r} contains a NUL byte")
    if path.startswith("/"):
        raise ConfigurationError(f"{key}: {path!r} must be relative to the work base")
    if ".." in Path(path).parts:
        raise ConfigurationError(f"{key}: {path!r} must not climb out of the work base with '..'")
    return path


def check_path_list(paths: Any, key: str) -> list[str]:
    """A list of relative paths (a single string is refused: it is a common slip)."""
    if not isinstance(paths, (list, tuple)):
        raise ConfigurationError(f"{key}: expected a list of paths, got {type(paths).__name__}")
    return [check_relative_path(p, f"{key}[{i}]") for i, p in enumerate(paths)]
