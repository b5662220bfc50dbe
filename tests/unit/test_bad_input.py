"""Malformed configurations are rejected with an error naming the problem, before
anything is submitted and without touching any user file."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import pytest

from dpdispatcher.dpdisp import main, submission_from_dict
from dpdispatcher.errors import ConfigurationError


def base(tmp_path: Path) -> dict[str, Any]:
    work = tmp_path / "local" / "work"
    for i in range(2):
        (work / f"t{i}").mkdir(parents=True, exist_ok=True)
        (work / f"t{i}" / "in.txt").write_text(f"input {i}\n")
    (work / "common.txt").write_text("common\n")
    return {
        "work_base": "work",
        "machine": {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(tmp_path / "local"),
            "remote_root": str(tmp_path / "remote"),
        },
        "resources": {"group_size": 1},
        "forward_common_files": ["common.txt"],
        "task_list": [
            {
                "command": "cat in.txt > out.txt",
                "task_work_path": f"t{i}/",
                "forward_files": ["in.txt"],
                "backward_files": ["out.txt"],
            }
            for i in range(2)
        ],
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        keys = path.split("/")
        target: Any = d
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value

    return apply


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        keys = path.split("/")
        target: Any = d
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        del target[keys[-1]]

    return apply


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing batch_type", _del("machine/batch_type"), "batch_type"),
    ("unknown batch_type", _set("machine/batch_type", "Shel"), "Did you mean Shell"),
    ("unknown context_type", _set("machine/context_type", "LocalContxt"), "LocalContext"),
    ("LocalContext without remote_root", _del("machine/remote_root"), "remote_root"),
    ("negative retry_count", _set("machine/retry_count", -1), "retry_count"),
    ("missing group_size", _del("resources/group_size"), "group_size"),
    ("cpu_per_node as string", _set("resources/cpu_per_node", "4"), "cpu_per_node"),
    ("negative group_size", _set("resources/group_size", -2), "group_size"),
    ("bad env name", _set("resources/envs", {"A B": "1"}), "A B"),
    (
        "cuda without gpus",
        _set("resources/strategy", {"if_cuda_multi_devices": True}),
        "if_cuda_multi_devices",
    ),
    (
        "ratio_unfinished out of range",
        _set("resources/strategy", {"ratio_unfinished": 1.5}),
        "ratio_unfinished",
    ),
    ("para_deg zero", _set("resources/para_deg", 0), "para_deg"),
    ("task without command", _del("task_list/0/command"), "command"),
    ("absolute task_work_path", _set("task_list/0/task_work_path", "/etc"), "task_work_path"),
    ("forward file climbing out", _set("task_list/0/forward_files", ["../../x"]), "'..'"),
    ("forward_files as a string", _set("task_list/0/forward_files", "in.txt"), "forward_files"),
    ("missing forward file", _set("task_list/1/forward_files", ["nope.txt"]), "nope.txt"),
    ("missing common file", _set("forward_common_files", ["gone.txt"]), "gone.txt"),
    ("empty task_list", _set("task_list", []), "no tasks"),
    ("missing work base", _set("work_base", "no_such_dir"), "does not exist"),
    (
        "header template missing",
        _set("resources/strategy", {"customized_script_header_template_file": "/no/such.tpl"}),
        "customized_script_header_template_file",
    ),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name,mutate,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_rejected_before_submission(name, mutate, expected, tmp_path):
    data = base(tmp_path)
    mutate(data)
    before = _snapshot(tmp_path / "local")
    with pytest.raises(ConfigurationError) as err:
        submission_from_dict(data).run_submission(check_interval=0.1)
    assert expected in str(err.value), str(err.value)
    assert _snapshot(tmp_path / "local") == before
    remote = tmp_path / "remote"
    assert not remote.exists() or not any(remote.rglob("*_job_id"))


#: unknown keys: a warning naming the key, where it is and the closest valid key; an
#: error only under strict=True (SPEC §3, revised)
UNKNOWN_KEYS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "machine key typo",
        _set("machine/remote_rot", "/x"),
        "machine: unknown key 'remote_rot' ignored; did you mean 'remote_root'?",
    ),
    (
        "remote_profile key typo",
        _set("machine/remote_profile", {"symlnk": False}),
        "machine/remote_profile: unknown key 'symlnk' ignored; did you mean 'symlink'?",
    ),
    (
        "resources key typo",
        _set("resources/cpu_per_nod", 2),
        "resources: unknown key 'cpu_per_nod' ignored; did you mean 'cpu_per_node'?",
    ),
    (
        "DP-GEN's cvasp in resources",
        _set("resources/cvasp", True),
        "resources: unknown key 'cvasp' ignored",
    ),
    (
        "task key typo",
        _set("task_list/0/forward_file", ["in.txt"]),
        "task: unknown key 'forward_file' ignored; did you mean 'forward_files'?",
    ),
    (
        "unknown submission key",
        _set("task_lists", []),
        "submission: unknown key 'task_lists' ignored; did you mean 'task_list'?",
    ),
]


@pytest.mark.parametrize("name,mutate,expected", UNKNOWN_KEYS, ids=[c[0] for c in UNKNOWN_KEYS])
def test_unknown_key_warns_once_and_the_run_succeeds(name, mutate, expected, tmp_path, caplog):
    data = base(tmp_path)
    mutate(data)
    with caplog.at_level(logging.WARNING, logger="dpdispatcher"):
        sub = submission_from_dict(data)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(expected), warnings
    sub.run_submission(check_interval=0.1)
    assert (tmp_path / "local/work/t1/out.txt").read_text() == "input 1\n"


@pytest.mark.parametrize("name,mutate,expected", UNKNOWN_KEYS, ids=[c[0] for c in UNKNOWN_KEYS])
def test_unknown_key_is_an_error_when_strict(name, mutate, expected, tmp_path):
    data = base(tmp_path)
    mutate(data)
    key = expected.split("'")[1]
    with pytest.raises(ConfigurationError, match=key):
        submission_from_dict(data, strict=True)


def test_valid_base_runs(tmp_path):
    data = base(tmp_path)
    submission_from_dict(data).run_submission(check_interval=0.1)
    assert (tmp_path / "local/work/t1/out.txt").read_text() == "input 1\n"


def test_json_syntax_error_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "sub.json"
    bad.write_text('{"work_base": "w",\n "machine": {,}}')
    assert main(["submit", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "line 2" in err


def test_cli_reports_configuration_errors(tmp_path, capsys):
    data = base(tmp_path)
    data["resources"]["cpu_per_node"] = "1"
    path = tmp_path / "sub.json"
    path.write_text(json.dumps(data))
    assert main(["submit", str(path)]) == 1
    assert "cpu_per_node" in capsys.readouterr().err


def test_cli_strict_refuses_unknown_keys_that_otherwise_warn(tmp_path, capsys):
    data = base(tmp_path)
    data["resources"]["cpu_per_nod"] = 1
    path = tmp_path / "sub.json"
    path.write_text(json.dumps(data))
    assert main(["submit", "--strict", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cpu_per_nod" in err and "did you mean 'cpu_per_node'" in err
    assert not (tmp_path / "remote").exists()
    assert main(["submit", str(path)]) == 0
    assert "resources: unknown key 'cpu_per_nod' ignored" in capsys.readouterr().err
