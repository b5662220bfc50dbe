"""The original dpdispatcher 1.1.0 with its cloud extra, in a throwaway virtual environment.

:func:`original_python` is the interpreter of :func:`tests._venvs.original`, the one
cached venv holding ``dpdispatcher[bohrium]==1.1.0`` from PyPI (which brings ``oss2``
and ``bohrium-sdk``), shared by the cloud tests. The original is only *run* (as a
client of the emulator), never imported here.

:data:`DRIVER` is the script that drives it through one submission.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests._venvs import original, pip_target

__all__ = ["DRIVER", "OPENAPI_DRIVER", "ensure_bohrium_sdk", "original_python"]


def original_python() -> Path:
    """The python of the shared venv holding dpdispatcher 1.1.0 + its bohrium extra."""
    return original("1.1.0", extra="bohrium").python


#: The three-task submission both drivers hand to the original (``machine`` set before).
_SUBMISSION = r"""
tasks = [Task(command="cat in.txt ../common.txt > out.txt", task_work_path=f"t{i}",
              forward_files=["in.txt"], backward_files=["out.txt"], outlog="log", errlog="err")
         for i in range(3)]
res = Resources(number_node=1, cpu_per_node=1, gpu_per_node=0, queue_name="", group_size=1)
sub = Submission(work_base="./", machine=machine, resources=res, task_list=tasks,
                 forward_common_files=["common.txt"])
"""

#: Drives the original through a submission: ``python DRIVER <env.json> <mode> <work>``.
#: Modes: ``email``, ``phone`` (the account is a phone number), ``grouped``
#: (``input_data.grouped`` true; then the job group is listed with the original's
#: client), ``kill`` (submit, then kill every job).
DRIVER = (
    r"""
import json, os, sys
os.environ.update(json.load(open(sys.argv[1])))
mode, work = sys.argv[2], sys.argv[3]
from dpdispatcher import Machine, Resources, Submission, Task
profile = {"password": os.environ["EMU_PASSWORD"], "program_id": 4242,
           "input_data": {"job_type": "container", "platform": "ali", "scass_type": "c2_m4_cpu",
                          "image_name": "ubuntu:22.04", "job_name": "wire"}}
profile["phone" if mode == "phone" else "email"] = os.environ["EMU_ACCOUNT"]
if mode == "grouped":
    profile["input_data"]["grouped"] = True
machine = Machine.load_from_dict({"batch_type": "Bohrium", "context_type": "BohriumContext",
                                  "local_root": work, "remote_profile": profile})
"""
    + _SUBMISSION
    + r"""
if mode == "kill":
    sub.run_submission(exit_on_submit=True)
    for job in sub.belonging_jobs:
        machine.kill(job)
else:
    sub.run_submission(check_interval=1)
    print("EXIT CODES", json.dumps([machine.get_exit_code(j) for j in sub.belonging_jobs]))
if mode == "grouped":  # the original's job listing, called through its client
    from dpdispatcher.utils.dpcloudserver.client import Client
    client = Client(email=os.environ["EMU_ACCOUNT"], password=os.environ["EMU_PASSWORD"],
                    base_url=os.environ["DPDISPATCHER_LEBESGUE_API_HOST"])
    group = int(sub.belonging_jobs[0].job_id.split(":job_group_id:")[1])
    print("LISTED", len(client.get_tasks_list(group)))
print("COMPLETED")
"""
)


def ensure_bohrium_sdk() -> None:
    """Make ``bohrium`` (bohrium-sdk, the ``bohrium`` extra) importable.

    When the environment lacks it, :func:`tests._venvs.pip_target` installs it (from
    PyPI) into a cached directory once, and that directory joins ``sys.path``.
    """
    try:
        import bohrium  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        pass
    else:
        return
    target = pip_target("bohrium-sdk>=0.15", "bohrium-sdk")
    if str(target) not in sys.path:
        sys.path.append(str(target))


#: Drives the original's OpenAPI backend: ``python OPENAPI_DRIVER <work>`` with
#: ``EMU_AK`` (an access key the emulator issued) and the emulator's ``openapi_env()``.
OPENAPI_DRIVER = (
    r"""
import os, sys
work = sys.argv[1]
from dpdispatcher import Machine, Resources, Submission, Task
profile = {"access_key": os.environ["EMU_AK"], "project_id": 4242, "machine_type": "c2_m4_cpu",
           "image_address": "ubuntu:22.04", "job_name": "wire", "platform": "ali"}
machine = Machine.load_from_dict({"batch_type": "OpenAPI", "context_type": "OpenAPIContext",
                                  "local_root": work, "remote_profile": profile})
"""
    + _SUBMISSION
    + r"""
sub.run_submission(check_interval=1)
print("COMPLETED")
"""
)
