"""Import every built-in batch type and context so that they register themselves.

Each module imports its heavy dependencies (paramiko, requests, oss2) lazily.
"""

from __future__ import annotations

import importlib

BUILTIN_MODULES = (
    "dpdispatcher.machines.shell",
    "dpdispatcher.machines.slurm",
    "dpdispatcher.machines.pbs",
    "dpdispatcher.machines.lsf",
    "dpdispatcher.machines.sge",
    "dpdispatcher.machines.fugaku",
    "dpdispatcher.machines.JH_UniScheduler",
    "dpdispatcher.machines.distributed_shell",
    "dpdispatcher.machines.dp_cloud_server",
    "dpdispatcher.machines.openapi",
    "dpdispatcher.contexts.local_context",
    "dpdispatcher.contexts.lazy_local_context",
    "dpdispatcher.contexts.ssh_context",
    "dpdispatcher.contexts.hdfs_context",
    "dpdispatcher.contexts.dp_cloud_server_context",
    "dpdispatcher.contexts.openapi_context",
)

for _name in BUILTIN_MODULES:
    importlib.import_module(_name)
