"""The rendered job-array script run by bash as Slurm would, one element at a time."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names
from dpdispatcher.machines.slurm import SlurmJobArray, task_tag_path


def _setup(tmp_path: Path) -> tuple[SlurmJobArray, Job, Path]:
    root = tmp_path / "root"
    tasks = [
        Task(f"test -f {tmp_path}/ok || test {i} -ne 3", f"t{i}", outlog="log", errlog="err")
        for i in range(5)
    ]
    job = Job(tasks, resources=Resources(1, 1, 0, "", 5, para_deg=2, slurm_job_size=2))
    machine = Machine(
        batch_type="SlurmJobArray",
        context_type="LocalContext",
        local_root=str(tmp_path),
        remote_root=str(root),
    )
    assert isinstance(machine, SlurmJobArray)
    machine.context.remote_root = str(root)
    for task in tasks:
        (root / task.task_work_path).mkdir(parents=True)
    machine.context.write_files(machine.job_files(job))
    return machine, job, root


def _run_element(root: Path, job: Job, index: int) -> int:
    env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(index))
    return subprocess.run(
        ["bash", names.script_file(job.job_hash)],
        cwd=root,
        env=env,
        capture_output=True,
        check=False,
    ).returncode


def test_elements_run_their_tasks_and_the_last_one_tags_the_job(tmp_path: Path) -> None:
    machine, job, root = _setup(tmp_path)
    tag = root / names.job_tag_file(job.job_hash)
    # element 1 holds tasks t2, t3; t3 fails until the "ok" file exists
    assert [_run_element(root, job, i) for i in range(3)] == [0, 1, 0]
    assert not tag.exists()
    done = {t.task_work_path for t in job.job_task_list if (root / task_tag_path(t)).exists()}
    assert done == {"t0", "t1", "t2", "t4"}
    assert (
        "task t3 failed with exit code 1" in (root / names.last_err_file(job.job_hash)).read_text()
    )

    job.fail_count, job.job_id = 1, "1"
    machine.prepare_submit([job])
    assert "--array=1 " in machine.submit_command(job, names.script_file(job.job_hash))

    (tmp_path / "ok").touch()
    assert _run_element(root, job, 1) == 0
    assert tag.exists()
    tags = machine.context.files_exist(machine.finish_tag_files(job))
    assert machine.unfinished_elements(job, tags) == []
    assert machine.check_finish_tag(job)


def test_an_index_without_tasks_fails_loudly(tmp_path: Path) -> None:
    _, job, root = _setup(tmp_path)
    assert _run_element(root, job, 7) == 1
