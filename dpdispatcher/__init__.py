"""dpdispatcher: turn tasks into HPC batch jobs, run them to completion, fetch results.

Examples
--------
>>> from dpdispatcher import Machine, Resources, Task, Submission
>>> Machine.get_class("slurm").__name__
'Slurm'
"""

from __future__ import annotations

import sys

from dpdispatcher import _builtin  # noqa: F401  (registers the batch and context types)
from dpdispatcher.job import Job
from dpdispatcher.machine import Machine
from dpdispatcher.resources import Resources
from dpdispatcher.submission import Submission
from dpdispatcher.task import Task
from dpdispatcher.utils.job_status import JobStatus

__version__ = "1.2.0"

__all__ = ["Job", "JobStatus", "Machine", "Resources", "Submission", "Task", "__version__", "info"]


def info() -> None:
    """Print the version, the Python in use, and the registered batch and context types."""
    from dpdispatcher.base_context import BaseContext

    print(f"dpdispatcher {__version__} (Python {sys.version.split()[0]})")
    print("batch types:   " + ", ".join(Machine.canonical_classes()))
    print("context types: " + ", ".join(BaseContext.canonical_classes()))
