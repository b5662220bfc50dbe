"""Shared pieces of the golden-script tests: a job over a resources matrix, a machine with a
fixed job root, the rendered text with hashes masked, and the comparison with a golden file.

Regenerate goldens after an intended change with ``UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dpdispatcher import Job, Machine, Resources, Task

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def make_job(n_tasks: int, task_name: str | None, res: dict[str, Any]) -> Job:
    """``n_tasks`` tasks (``task.000/`` ...) sharing resources built from ``res``."""
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
    base = [
        res.pop(k, d)
        for k, d in (
            ("number_node", 1),
            ("cpu_per_node", 4),
            ("gpu_per_node", 0),
            ("queue_name", ""),
        )
    ]
    return Job(tasks, resources=Resources(*base, n_tasks, **res))


def make_machine(batch_type: str, tmp_path: Path) -> Machine:
    """A ``batch_type`` machine on LocalContext whose job root is a fixed path."""
    m = Machine(
        batch_type=batch_type,
        context_type="LocalContext",
        local_root=str(tmp_path),
        remote_root="/remote/root",
    )
    m.context.remote_root = "/remote/root/SUBMISSION"
    return m


def render(machine: Machine, job: Job) -> tuple[str, str, str]:
    """(script + run file with hashes masked, script, run file)."""
    script, body = machine.gen_script(job), machine.gen_run_body(job)
    text = script + "#### .run file ####\n" + body
    text = text.replace(job.job_hash, "JOBHASH")
    for task in job.job_task_list:
        text = text.replace(task.task_hash, f"TASKHASH_{task.task_work_path.strip('/')}")
    return text, script, body


def check_golden(golden: Path, text: str) -> None:
    """``text`` must equal the golden file (written first with ``UPDATE_GOLDEN=1``)."""
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text()
