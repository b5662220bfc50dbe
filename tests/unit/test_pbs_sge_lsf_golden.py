"""Golden PBS / Torque / SGE / LSF scripts over a matrix of resources.

Regenerate after an intended change with
``UPDATE_GOLDEN=1 pytest tests/unit/test_pbs_sge_lsf_golden.py`` and review the diff of
``tests/fixtures/scripts/{pbs,torque,sge,lsf}/``. A missing golden file is a failure.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Job, Machine, Resources, Task

SCRIPTS = Path(__file__).parent.parent / "fixtures" / "scripts"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FLAVOURS = {"pbs": "PBS", "torque": "Torque", "sge": "SGE", "lsf": "LSF"}
CUDA = {"if_cuda_multi_devices": True}

#: case -> (number of tasks, task_name, resources keywords); run for every flavour
COMMON: dict[str, tuple[int, str | None, dict[str, Any]]] = {
    "cpu": (3, None, {}),
    "cpu_para_deg": (5, None, {"para_deg": 2}),
    "multi_node": (2, None, {"number_node": 2, "cpu_per_node": 8}),
    "gpu_cuda_multi": (
        6,
        None,
        {"gpu_per_node": 2, "para_deg": 2, "queue_name": "gpu", "strategy": CUDA},
    ),
    "custom_flags": (
        2,
        None,
        {"queue_name": "normal", "custom_flags": ["# site flag one", "# site flag two"]},
    ),
    "modules_sources_envs": (
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
        2,
        None,
        {
            "prepend_script": ["ulimit -s unlimited", "set -x"],
            "append_script": ["echo all done", "date"],
        },
    ),
    "template_header": (
        2,
        None,
        {
            "queue_name": "debug",
            "strategy": {"customized_script_header_template_file": "{template}"},
        },
    ),
    "job_name": (1, "relax Fe/bcc #1", {"queue_name": "normal"}),
    "job_name_ignored_for_groups": (2, "relax", {}),
}

#: flavour-specific cases: case -> (number of tasks, task_name, resources keywords)
SPECIFIC: dict[str, dict[str, tuple[int, str | None, dict[str, Any]]]] = {
    "pbs": {
        "flags_select": (
            1,
            None,
            {"custom_flags": ["#PBS -l walltime=1:00:00", "#PBS -l mem=4gb"]},
        ),
    },
    "torque": {
        "long_job_name": (1, "a_rather_long_job_name_for_torque", {}),
    },
    "sge": {
        "pe_name_job_name": (
            3,
            None,
            {"queue_name": "all.q", "kwargs": {"pe_name": "smp", "job_name": "my run/1"}},
        ),
        "sge_pe_name_alias": (1, "9lives", {"kwargs": {"sge_pe_name": "orte"}}),
    },
    "lsf": {
        "gpu_old_syntax": (2, None, {"gpu_per_node": 2, "kwargs": {"gpu_usage": True}}),
        "gpu_new_syntax": (
            2,
            None,
            {"gpu_per_node": 1, "kwargs": {"gpu_usage": True, "gpu_new_syntax": True}},
        ),
        "gpu_new_syntax_shared": (
            2,
            None,
            {
                "gpu_per_node": 4,
                "kwargs": {"gpu_usage": True, "gpu_new_syntax": True, "gpu_exclusive": False},
            },
        ),
        "gpu_without_gpu_usage": (1, None, {"gpu_per_node": 2}),
        "custom_gpu_line": (
            1,
            None,
            {
                "gpu_per_node": 2,
                "kwargs": {
                    "gpu_usage": True,
                    "custom_gpu_line": "#BSUB -gpu 'num=2:gmodel=NVIDIAA100'",
                },
            },
        ),
    },
}

CASES = [(flavour, case) for flavour in FLAVOURS for case in [*COMMON, *SPECIFIC[flavour]]]


def spec(flavour: str, case: str) -> tuple[int, str | None, dict[str, Any]]:
    n, name, res = COMMON.get(case) or SPECIFIC[flavour][case]
    strategy = res.get("strategy", {})
    if strategy.get("customized_script_header_template_file") == "{template}":
        template = str(SCRIPTS / flavour / "header_template.tpl")
        res = {**res, "strategy": {"customized_script_header_template_file": template}}
    return n, name, res


def make_job(n_tasks: int, task_name: str | None, res: dict[str, Any]) -> Job:
    res = dict(res)
    tasks = [
        Task(
            f"run_step {i} --input in.{i} > out.{i}",
            f"task.{i:03d}/",
            task_name=task_name,
            forward_files=["in"],
            backward_files=["out"],
        )
        for i in range(n_tasks)
    ]
    resources = Resources(
        res.pop("number_node", 1),
        res.pop("cpu_per_node", 4),
        res.pop("gpu_per_node", 0),
        res.pop("queue_name", ""),
        n_tasks,
        **res,
    )
    return Job(tasks, resources=resources)


def make_machine(flavour: str, tmp_path: Path) -> Machine:
    m = Machine(
        batch_type=FLAVOURS[flavour],
        context_type="LocalContext",
        local_root=str(tmp_path),
        remote_root="/remote/root",
    )
    m.context.remote_root = "/remote/root/SUBMISSION"
    return m


def render(flavour: str, case: str, tmp_path: Path) -> tuple[str, str, str]:
    job = make_job(*spec(flavour, case))
    machine = make_machine(flavour, tmp_path)
    script, body = machine.gen_script(job), machine.gen_run_body(job)
    text = script + "#### .run file ####\n" + body
    text = text.replace(job.job_hash, "JOBHASH")
    for task in job.job_task_list:
        text = text.replace(task.task_hash, f"TASKHASH_{task.task_work_path.strip('/')}")
    return text, script, body


@pytest.mark.parametrize(("flavour", "case"), CASES)
def test_golden_scripts(flavour: str, case: str, tmp_path: Path) -> None:
    text, _, _ = render(flavour, case, tmp_path)
    golden = SCRIPTS / flavour / f"{case}.sub"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text()


@pytest.mark.parametrize(("flavour", "case"), CASES)
def test_valid_bash_shebang_first_and_pure(flavour: str, case: str, tmp_path: Path) -> None:
    job = make_job(*spec(flavour, case))
    before = job.resources.serialize()
    machine = make_machine(flavour, tmp_path)
    script, body = machine.gen_script(job), machine.gen_run_body(job)
    assert script.startswith("#!/bin/bash")
    for text in (script, body):
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    assert machine.gen_script(job) == script and machine.gen_run_body(job) == body
    assert job.resources.serialize() == before


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_golden_file_has_a_case(flavour: str) -> None:
    known = {case for fl, case in CASES if fl == flavour}
    stale = {p.stem for p in (SCRIPTS / flavour).glob("*.sub")} - known
    assert not stale, f"golden files without a case: {sorted(stale)}"
