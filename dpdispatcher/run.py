"""``dpdisp run``: a Python script that carries its own submission (PEP 723 metadata).

The script's ``# /// script`` block holds a ``[tool.dpdispatcher]`` table with the keys
of a ``dpdisp submit`` file (``machine``, ``resources``, ``task_list``, ``work_base``,
common files). Each task runs ``<command> "$REMOTE_ROOT"/script_<sha1>.py`` (the command
defaults to ``python``; a ``task_work_path`` may be a glob, expanded in the work base).
Without ``task_list`` one task runs in the work base (``python`` names the interpreter,
``forward_files``/``backward_files`` its files).

Examples
--------
>>> meta = read_pep723('# /// script\\n# [tool.dpdispatcher]\\n# work_base = "w"\\n# ///\\n')
>>> meta["work_base"]
'w'
"""

from __future__ import annotations

import glob
import hashlib
import os
import shlex
import sys
from typing import Any

from dargs import Argument

from dpdispatcher.errors import ConfigurationError

#: the legacy single-task keys accepted when ``task_list`` is absent
LEGACY_KEYS = ("python", "forward_files", "backward_files")


def pep723_args() -> Argument:
    """The schema of the ``[tool.dpdispatcher]`` table (a submission; work_base optional)."""
    from dpdispatcher.entrypoints.submit import submission_args

    base = submission_args()
    fields = [a for a in base.sub_fields.values() if a.name not in ("work_base", "task_list")]
    task = base.sub_fields["task_list"]
    command = Argument(
        "command",
        str,
        optional=True,
        default="python",
        doc="Program running the script (the script path is appended).",
    )
    task_fields = [command, *(a for a in task.sub_fields.values() if a.name != "command")]
    return Argument(
        "pep723",
        dict,
        [
            Argument("work_base", str, optional=True, default="./", doc="The work base."),
            Argument(
                "task_list",
                list,
                task_fields,
                repeat=True,
                optional=True,
                doc="The tasks; each runs the script.",
            ),
            *fields,
        ],
        doc="The [tool.dpdispatcher] table of a `# /// script` block.",
    )


def read_pep723(script: str) -> dict[str, Any] | None:
    """The ``[tool.dpdispatcher]`` table of the script's ``# /// script`` block, if any."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found]
    body = _metadata_block(script.splitlines())
    if body is None:
        return None
    try:
        meta = tomllib.loads(body)
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(f"script metadata is not valid TOML: {err}") from err
    table = meta.get("tool", {}).get("dpdispatcher")
    return dict(table) if isinstance(table, dict) else None


def _metadata_block(lines: list[str]) -> str | None:
    """The TOML inside ``# /// script`` ... ``# ///`` (PEP 723), comment marks removed."""
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "# /// script")
    except StopIteration:
        return None
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.rstrip() == "# ///":
            return "\n".join(body) + "\n"
        if not line.startswith("#"):
            break
        body.append(line[2:] if line.startswith("# ") else line[1:])
    raise ConfigurationError("the `# /// script` block is not closed by a `# ///` line")


def script_file_name(script_hash: str) -> str:
    """Name of the script in the job root."""
    return f"script_{script_hash}.py"


def _legacy_task_list(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "command": shlex.quote(str(metadata.get("python", "python3"))),
            "task_work_path": ".",
            "forward_files": list(metadata.get("forward_files", [])),
            "backward_files": list(metadata.get("backward_files", [])),
        }
    ]


def _expand_tasks(tasks: list[Any], work_dir: str, script_hash: str) -> list[dict[str, Any]]:
    suffix = f' "$REMOTE_ROOT"/{script_file_name(script_hash)}'
    out: list[dict[str, Any]] = []
    for raw in tasks:
        if not isinstance(raw, dict):
            raise ConfigurationError("task_list: expected a list of tables")
        task = {"command": "python", **raw}
        task["command"] = f"{task['command']}{suffix}"
        pattern = str(task.get("task_work_path", "."))
        matches = [pattern]
        if glob.has_magic(pattern):
            found = glob.glob(os.path.join(glob.escape(work_dir), pattern))
            matches = sorted(os.path.relpath(m, work_dir) for m in found)
        if not matches:
            raise ConfigurationError(f"task_work_path {pattern!r} matches nothing in {work_dir}")
        out += [{**task, "task_work_path": m} for m in matches]
    return out


def create_submission(metadata: dict[str, Any], script_hash: str, allow_ref: bool = False) -> Any:
    """The :class:`~dpdispatcher.Submission` a script's metadata describes."""
    from dpdispatcher.entrypoints.submit import submission_from_dict
    from dpdispatcher.machine import Machine

    data = {k: v for k, v in metadata.items() if k not in LEGACY_KEYS}
    data.setdefault("work_base", "./")
    if "machine" not in data or "resources" not in data:
        raise ConfigurationError("[tool.dpdispatcher] needs `machine` and `resources` tables")
    machine = Machine.load_from_dict(data["machine"], allow_ref)
    work_dir = os.path.join(machine.context.init_local_root, str(data["work_base"]))
    tasks = data.get("task_list", _legacy_task_list(metadata))
    tasks = [_resolve_ref(t, allow_ref) for t in tasks]
    data["task_list"] = _expand_tasks(tasks, work_dir, script_hash)
    return submission_from_dict(data, allow_ref=allow_ref)


def _resolve_ref(task: Any, allow_ref: bool) -> Any:
    """A task given as ``{"$ref": file}`` loaded from the file (only with ``allow_ref``)."""
    if not (isinstance(task, dict) and "$ref" in task):
        return task
    if not allow_ref:
        raise ConfigurationError(
            f"task_list: {task['$ref']!r} is a $ref; pass allow_ref=True "
            "(dpdisp run --allow-ref) to load it"
        )
    from dpdispatcher._loaders import load_json, load_yaml

    path = str(task["$ref"])
    loaded = load_yaml(path) if path.endswith((".yaml", ".yml")) else load_json(path)
    rest = {k: v for k, v in task.items() if k != "$ref"}
    return {**loaded, **rest} if isinstance(loaded, dict) else loaded


def run_pep723(script: str, allow_ref: bool = False) -> None:
    """Run the submission described by ``script``'s metadata (``script`` is its text)."""
    metadata = read_pep723(script)
    if metadata is None:
        raise ConfigurationError(
            "no `# /// script` block with a [tool.dpdispatcher] table found in the script"
        )
    script_hash = hashlib.sha1(script.encode("utf-8")).hexdigest()
    submission = create_submission(metadata, script_hash, allow_ref=allow_ref)
    submission.generate_jobs()
    context = submission.machine.context
    context.bind_submission(submission)
    context.write_file(script_file_name(script_hash), script)
    submission.run_submission()
