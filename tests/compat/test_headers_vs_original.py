"""Every batch type's scheduler directives equal the original dpdispatcher 1.1.0's.

The original is installed at run time from PyPI into the one cached virtual environment
every test shares (:func:`tests._venvs.original`). Both packages render the same matrix
of resources through ``render_headers.py``; the headers, and the directive lines of the
whole scripts, must be equal once the deliberate differences below are applied. Each
deliberate difference is named, carries its reason, and is listed in ``docs/migrating.md``.

Without network access to PyPI the test fails (nothing is skipped).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import _venvs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RENDER = HERE / "render_headers.py"
#: lines that carry a scheduler directive (or the shebang), in any batch type
DIRECTIVE = re.compile(r"^(#!|#SBATCH|#PBS|#\$ |#BSUB|#JSUB|#PJM)")


@dataclass(frozen=True)
class Deliberate:
    """A difference from the original that is on purpose (see docs/migrating.md)."""

    reason: str
    applies: Callable[[str], bool]  # batch type -> whether it applies
    ours: Callable[[list[str]], list[str]]  # turns our lines into the original's form


def _drop_leading_shebang(lines: list[str]) -> list[str]:
    return lines[1:] if lines and lines[0].startswith("#!") else lines


DELIBERATE: dict[str, Deliberate] = {
    "shebang-on-line-1": Deliberate(
        "The original starts the PBS, Torque, SGE, Shell and DistributedShell headers with "
        "an empty line, so their '#!' is on line 2 and is not a shebang; ours is on line 1. "
        "(Compared after dropping empty lines, see 'no-placeholder-empty-lines'.)",
        lambda bt: True,
        lambda lines: lines,
    ),
    "no-placeholder-empty-lines": Deliberate(
        "The original writes an empty line where an optional directive is absent (no "
        "queue, no GPU line, no job name) and sometimes no final newline; ours leaves the "
        "line out. Empty lines mean nothing to any scheduler.",
        lambda bt: True,
        lambda lines: lines,
    ),
    "fugaku-shebang": Deliberate(
        "The original's Fugaku script has no shebang at all; ours starts with "
        "'#!/bin/bash -l' like every other batch type (pjsub reads the #PJM lines after "
        "it, and the Fugaku user guide's job scripts start with one).",
        lambda bt: bt == "Fugaku",
        _drop_leading_shebang,
    ),
}


def _normalise(text: str) -> list[str]:
    """The non-empty lines (see 'shebang-on-line-1' and 'no-placeholder-empty-lines')."""
    return [line for line in text.splitlines() if line.strip()]


def _ours_as_original(batch_type: str, lines: list[str]) -> list[str]:
    for rule in DELIBERATE.values():
        if rule.applies(batch_type):
            lines = rule.ours(lines)
    return lines


# ------------------------------------------------------------------ the matrix
GPU_Q = {"number_node": 2, "cpu_per_node": 8, "gpu_per_node": 2, "queue_name": "gpu"}
FLAGS = {"custom_flags": ["#SITE flag one", "#SITE flag two"], "queue_name": "normal"}
NAMES = ["relax Fe/bcc #1", "1st-try", "a_rather_long_job_name_for_pbs", "###", "y" * 200]


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def add(bt: str, name: str, res: dict[str, Any], **extra: Any) -> None:
        cases.append({"id": f"{bt}/{name}", "batch_type": bt, "resources": res, **extra})

    for bt in ("Slurm", "PBS", "Torque", "SGE", "LSF", "Shell", "Fugaku", "JH_UniScheduler",
               "DistributedShell"):  # fmt: skip
        kw: dict[str, Any] = {"kwargs": {}} if bt in ("SGE", "LSF", "JH_UniScheduler") else {}
        add(bt, "cpu", {**kw})
        add(bt, "gpu_queue_nodes", {**GPU_Q, **kw})
        add(bt, "custom_flags", {**FLAGS, **kw})
        add(bt, "two_tasks_named", {**kw}, task_name="relax", n_tasks=2)
        for i, name in enumerate(NAMES):
            add(bt, f"task_name_{i}", {**kw}, task_name=name)
    add("Slurm", "custom_gpu_line", {"gpu_per_node": 2,
        "kwargs": {"custom_gpu_line": "#SBATCH --gpus=a100:1"}})  # fmt: skip
    add("SlurmJobArray", "three_tasks", {}, n_tasks=3)
    add("SlurmJobArray", "one_task", {}, n_tasks=1)
    add("SlurmJobArray", "size2_queue", {"queue_name": "q", "kwargs": {"slurm_job_size": 2}},
        n_tasks=5)  # fmt: skip
    add("SGE", "pe_and_job_name", {"queue_name": "all.q", "cpu_per_node": 8,
        "kwargs": {"pe_name": "smp", "job_name": "myjob"}})  # fmt: skip
    add("LSF", "gpu_old_syntax", {**GPU_Q, "kwargs": {"gpu_usage": True}})
    add("LSF", "gpu_new_syntax_shared", {**GPU_Q, "kwargs": {
        "gpu_usage": True, "gpu_new_syntax": True, "gpu_exclusive": False}})  # fmt: skip
    add("LSF", "gpu_without_gpu_usage", {**GPU_Q, "kwargs": {}})
    add("LSF", "custom_gpu_line", {"kwargs": {"custom_gpu_line": "#BSUB -gpu num=1"}})
    add("JH_UniScheduler", "custom_gpu_line", {"gpu_per_node": 2, "kwargs": {
        "custom_gpu_line": '#JSUB -gpgpu "1 type=A100"'}})  # fmt: skip
    add("DistributedShell", "yarn_kwargs", {**GPU_Q, "kwargs": {
        "img_name": "img", "yarn_path": "/opt/yarn", "mem_limit": 2}})  # fmt: skip
    add("JH_UniScheduler", "custom_gpu_line_no_gpu", {"kwargs": {
        "custom_gpu_line": "#JSUB -gpgpu 1"}})  # fmt: skip
    return cases


CASES = _cases()


# ------------------------------------------------------------------ the two renderings
def _isolated_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH (the original must import itself) and a private HOME (it writes
    ``~/.dpdispatcher`` and ``./dpdispatcher.log`` at import time)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HOME"] = str(home)
    return env


def _render(python: str, tmp: Path, extra_env: dict[str, str]) -> dict[str, dict[str, str]]:
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**_isolated_env(tmp), **extra_env}
    proc = subprocess.run(
        [python, str(RENDER)], input=json.dumps(CASES), capture_output=True, text=True,
        cwd=tmp, env=env, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, dict[str, str]] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="module")
def renderings(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    python = _venvs.original("1.1.0").python
    original = _render(str(python), tmp_path_factory.mktemp("original"), {})
    ours = _render(sys.executable, tmp_path_factory.mktemp("ours"), {"PYTHONPATH": str(REPO)})
    return original, ours


@pytest.mark.slow
@pytest.mark.parametrize("case", [c["id"] for c in CASES])
def test_header_matches_the_original(case: str, renderings: tuple[dict[str, Any], ...]) -> None:
    original, ours = renderings
    batch_type = case.split("/", 1)[0]
    assert "error" not in original[case], f"the original cannot render {case}: {original[case]}"
    assert "error" not in ours[case], f"we cannot render {case}: {ours[case]}"
    want = _normalise(original[case]["header"])
    got = _ours_as_original(batch_type, _normalise(ours[case]["header"]))
    assert got == want
    want_directives = [
        line for line in _normalise(original[case]["script"]) if DIRECTIVE.match(line)
    ]
    got_directives = _ours_as_original(
        batch_type, [line for line in _normalise(ours[case]["script"]) if DIRECTIVE.match(line)]
    )
    assert got_directives == want_directives


def test_every_deliberate_difference_is_in_the_migration_page() -> None:
    page = (REPO / "docs" / "migrating.md").read_text()
    missing = [name for name in DELIBERATE if f"`{name}`" not in page]
    assert not missing, f"docs/migrating.md does not list {missing}"
