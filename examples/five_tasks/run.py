"""The reference manual's five-task submission, on this computer (Shell + LocalContext).

Run it from anywhere, after ``pip install .`` in the repository::

    python examples/five_tasks/run.py

Task 0 comes from ``task.json``; tasks 1-4 are built in Python. Each task ``cat``s its
``example.txt`` into ``out.txt``; ``graph.pb`` is a common file every task can read from the
job root. All five tasks form one job (``group_size`` 5 in ``resources.json``), which runs in
a directory under the system temporary directory; the results are brought back next to the
inputs, in ``lammps_md_300K_5GPa/<task dir>/out.txt``.
"""

from __future__ import annotations

import json
import os
import tempfile

from dpdispatcher import Machine, Resources, Submission, Task

HERE = os.path.dirname(os.path.abspath(__file__))
WORK_BASE = "lammps_md_300K_5GPa/"


def here(name: str) -> str:
    """A file of this example, wherever the script is run from."""
    return os.path.join(HERE, name)


def load_machine() -> Machine:
    """``machine.json``, with the roots made absolute for this checkout."""
    with open(here("machine.json"), encoding="utf-8") as fh:
        machine_dict = json.load(fh)
    machine_dict["local_root"] = HERE
    machine_dict["remote_root"] = os.path.join(tempfile.gettempdir(), "dpdispatcher_work_dir")
    return Machine.load_from_dict(machine_dict)


def main() -> list[str]:
    """Run the five tasks; return the absolute paths of their ``out.txt`` files."""
    machine = load_machine()
    resources = Resources.load_from_json(here("resources.json"))

    task0 = Task.load_from_json(here("task.json"))
    task1 = Task(
        command="cat example.txt",
        task_work_path="dir1/",
        forward_files=["example.txt"],
        backward_files=["out.txt"],
        outlog="out.txt",
    )
    task2 = Task(
        command="cat example.txt",
        task_work_path="dir2/",
        forward_files=["example.txt"],
        backward_files=["out.txt"],
        outlog="out.txt",
    )
    task3 = Task(
        command="cat example.txt",
        task_work_path="dir3/",
        forward_files=["example.txt"],
        backward_files=["out.txt"],
        outlog="out.txt",
    )
    task4 = Task(
        command="cat example.txt",
        task_work_path="dir4/",
        forward_files=["example.txt"],
        backward_files=["out.txt"],
        outlog="out.txt",
    )
    task_list = [task0, task1, task2, task3, task4]
    results = [os.path.join(HERE, WORK_BASE, task.task_work_path, "out.txt") for task in task_list]

    submission = Submission(
        work_base=WORK_BASE,
        machine=machine,
        resources=resources,
        task_list=task_list,
        forward_common_files=["graph.pb"],
        backward_common_files=[],
    )
    submission.run_submission()

    print(f"All {len(task_list)} tasks finished. Results:")
    for path in results:
        with open(path, encoding="utf-8") as fh:
            first_line = fh.readline().rstrip("\n")
        print(f"  {path}: {first_line}")
    return results


if __name__ == "__main__":
    main()
