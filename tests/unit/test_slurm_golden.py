"""Golden Slurm / SlurmJobArray scripts over a matrix of resources.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/test_slurm_golden.py``
and review the diff of ``tests/fixtures/scripts/slurm/``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import golden
from tests.golden import make_job, make_machine

GOLDEN = Path(__file__).parent.parent / "fixtures" / "scripts" / "slurm"
TEMPLATE = GOLDEN / "header_template.tpl"

CUDA = {"if_cuda_multi_devices": True}

#: case -> (batch type, number of tasks, task_name, resources keywords)
CASES: dict[str, tuple[str, int, str | None, dict[str, Any]]] = {
    "cpu": ("Slurm", 3, None, {}),
    "cpu_para_deg": ("Slurm", 5, None, {"para_deg": 2}),
    "multi_node": ("Slurm", 2, None, {"number_node": 2, "cpu_per_node": 8}),
    "gpu": ("Slurm", 2, None, {"gpu_per_node": 1, "queue_name": "gpu"}),
    "gpu_cuda_multi": ("Slurm", 6, None, {"gpu_per_node": 2, "para_deg": 2, "strategy": CUDA}),
    "custom_gpu_line": (
        "Slurm",
        1,
        None,
        {"gpu_per_node": 2, "kwargs": {"custom_gpu_line": "#SBATCH --gpus-per-node=a100:2"}},
    ),
    "custom_flags": (
        "Slurm",
        2,
        None,
        {
            "queue_name": "normal",
            "custom_flags": ["#SBATCH --time=2:00:00", "#SBATCH --mem=4G", "#SBATCH --exclusive"],
        },
    ),
    "modules_sources_envs": (
        "Slurm",
        2,
        None,
        {
            "module_purge": True,
            "module_unload_list": ["intel/old"],
            "module_list": ["intel/2023", "cuda/12.1"],
            "source_list": ["/opt/env.sh", "~/my env.sh"],
            "envs": {"OMP_NUM_THREADS": 4, "PATH": "/opt/bin:$PATH", "LIST": ["a", "b c"]},
        },
    ),
    "prepend_append": (
        "Slurm",
        2,
        None,
        {
            "prepend_script": ["ulimit -s unlimited", "set -x"],
            "append_script": ["echo all done", "date"],
        },
    ),
    "template_header": (
        "Slurm",
        2,
        None,
        {
            "queue_name": "debug",
            "strategy": {"customized_script_header_template_file": str(TEMPLATE)},
        },
    ),
    "job_name": ("Slurm", 1, "relax Fe/bcc #1", {"queue_name": "normal"}),
    "job_name_ignored_for_groups": ("Slurm", 2, "relax", {}),
    "array": ("SlurmJobArray", 5, None, {"kwargs": {"slurm_job_size": 2}}),
    "array_size1_partition": ("SlurmJobArray", 3, None, {"queue_name": "normal"}),
    "array_cuda": (
        "SlurmJobArray",
        4,
        None,
        {"gpu_per_node": 2, "strategy": CUDA, "kwargs": {"slurm_job_size": 4}},
    ),
    "array_job_name_append": ("SlurmJobArray", 1, "single", {"append_script": ["echo end"]}),
}


def render(case: str, tmp_path: Path) -> tuple[str, str, str]:
    batch_type, n_tasks, name, res = CASES[case]
    return golden.render(make_machine(batch_type, tmp_path), make_job(n_tasks, name, res))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_slurm_scripts(case: str, tmp_path: Path) -> None:
    text, _, _ = render(case, tmp_path)
    golden.check_golden(GOLDEN / f"{case}.sub", text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_scripts_are_valid_bash_with_shebang_first(case: str, tmp_path: Path) -> None:
    _, script, body = render(case, tmp_path)
    assert script.startswith("#!/bin/")
    for text in (script, body):
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_is_pure(case: str, tmp_path: Path) -> None:
    batch_type, n_tasks, name, res = CASES[case]
    job = make_job(n_tasks, name, res)
    before = job.resources.serialize()
    machine = make_machine(batch_type, tmp_path)
    assert machine.gen_script(job) == machine.gen_script(job)
    assert machine.gen_run_body(job) == machine.gen_run_body(job)
    assert job.resources.serialize() == before


def test_every_golden_file_has_a_case() -> None:
    stale = {p.stem for p in GOLDEN.glob("*.sub")} - set(CASES)
    assert not stale, f"golden files without a case: {sorted(stale)}"
