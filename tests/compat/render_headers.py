"""Render job-script headers for a list of cases with whichever dpdispatcher is importable.

Run by ``test_headers_vs_original.py`` twice: with the original 1.1.0 (in a throwaway
venv) and with this package. Reads a JSON list of cases on stdin, writes a JSON object
``{case id: {"header": text, "script": text} | {"error": text}}`` on stdout. Stdlib and
dpdispatcher only, no import of this package's test helpers (the original runs it too).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import Any


def render(case: dict[str, Any], root: str) -> dict[str, str]:
    from dpdispatcher import Machine, Resources, Submission, Task

    res = dict(case["resources"])
    core = [
        res.pop(k, d)
        for k, d in (
            ("number_node", 1),
            ("cpu_per_node", 4),
            ("gpu_per_node", 0),
            ("queue_name", ""),
        )
    ]
    n_tasks = case.get("n_tasks", 1)
    resources = Resources(*core, group_size=n_tasks, **res)
    machine = Machine.load_from_dict(
        {
            "batch_type": case["batch_type"],
            "context_type": "LocalContext",
            "local_root": root,
            "remote_root": os.path.join(root, "remote"),
        }
    )
    tasks = []
    for i in range(n_tasks):
        os.makedirs(os.path.join(root, f"task.{i:03d}"), exist_ok=True)
        kwargs = {"task_name": case["task_name"]} if case.get("task_name") else {}
        tasks.append(
            Task(
                command=f"echo {i}",
                task_work_path=f"task.{i:03d}/",
                forward_files=[],
                backward_files=[],
                **kwargs,
            )
        )
    submission = Submission(work_base=".", machine=machine, resources=resources, task_list=tasks)
    submission.generate_jobs()
    job = submission.belonging_jobs[0]
    return {"header": machine.gen_script_header(job), "script": machine.gen_script(job)}


def main() -> int:
    cases = json.load(sys.stdin)
    out: dict[str, dict[str, str]] = {}
    root = tempfile.mkdtemp(prefix="dpdisp-headers-")
    for case in cases:
        try:
            out[case["id"]] = render(case, root)
        except Exception as err:  # noqa: BLE001  (reported to the caller, per case)
            out[case["id"]] = {"error": f"{type(err).__name__}: {err}"}
    shutil.rmtree(root, ignore_errors=True)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
