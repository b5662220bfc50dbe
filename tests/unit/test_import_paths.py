"""Every import path users know works, and each class is defined once."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import dpdispatcher

PATHS = {
    "dpdispatcher.machine": ["Machine"],
    "dpdispatcher.submission": ["Submission", "Job", "Task", "Resources"],
    "dpdispatcher.base_context": ["BaseContext"],
    "dpdispatcher.local_context": ["LocalContext"],
    "dpdispatcher.lazy_local_context": ["LazyLocalContext"],
    "dpdispatcher.ssh_context": ["SSHContext", "SSHSession"],
    "dpdispatcher.dp_cloud_server": ["DpCloudServer"],
    "dpdispatcher.dp_cloud_server_context": ["DpCloudServerContext"],
    "dpdispatcher.slurm": ["Slurm", "SlurmJobArray"],
    "dpdispatcher.pbs": ["PBS", "Torque"],
    "dpdispatcher.lsf": ["LSF"],
    "dpdispatcher.sge": ["SGE"],
    "dpdispatcher.shell": ["Shell"],
    "dpdispatcher.JobStatus": ["JobStatus"],
    "dpdispatcher.dpdisp": ["main", "main_parser", "parse_args"],
    "dpdispatcher.machines.slurm": ["Slurm", "SlurmJobArray"],
    "dpdispatcher.machines.pbs": ["PBS", "Torque"],
    "dpdispatcher.machines.lsf": ["LSF"],
    "dpdispatcher.machines.shell": ["Shell"],
    "dpdispatcher.machines.fugaku": ["Fugaku"],
    "dpdispatcher.machines.JH_UniScheduler": ["JH_UniScheduler"],
    "dpdispatcher.machines.distributed_shell": ["DistributedShell", "run_cmd_with_all_output"],
    "dpdispatcher.contexts.hdfs_context": ["HDFSContext"],
    "dpdispatcher.utils.hdfs_cli": ["HDFS", "HDFSMissingPathError", "run_cmd_with_all_output"],
    "dpdispatcher.machines.dp_cloud_server": ["DpCloudServer"],
    "dpdispatcher.contexts.local_context": ["LocalContext"],
    "dpdispatcher.contexts.ssh_context": ["SSHContext", "SSHSession"],
    "dpdispatcher.contexts.dp_cloud_server_context": ["DpCloudServerContext"],
    "dpdispatcher.utils.job_status": ["JobStatus"],
    "dpdispatcher.utils.utils": [
        "generate_totp",
        "retry",
        "RetrySignal",
        "get_sha256",
        "hotp",
        "rsync",
        "run_cmd_with_all_output",
        "customized_script_header_template",
    ],
    "dpdispatcher.utils.record": ["Record", "record"],
    "dpdispatcher.utils.dpcloudserver": ["Client", "client", "config", "retcode", "zip_file"],
    "dpdispatcher.utils.dpcloudserver.client": ["Client", "RequestInfoException"],
    "dpdispatcher.entrypoints.submit": ["submit", "load_submission_from_json", "submission_args"],
    "dpdispatcher.entrypoints.submission": ["handle_submission"],
    "dpdispatcher.entrypoints.run": ["run"],
    "dpdispatcher.entrypoints.gui": ["start_dpgui"],
    "dpdispatcher.run": ["create_submission", "pep723_args", "read_pep723", "run_pep723"],
    "dpdispatcher.contexts.lazy_local_context": ["LazyLocalContext", "SPRetObj"],
    "dpdispatcher.arginfo": ["machine_dargs", "resources_dargs", "task_dargs"],
    "dpdispatcher.dlog": ["dlog"],
    "dpdispatcher.dpcloudserver.api": [
        "login",
        "get",
        "post",
        "job_create",
        "get_jobs",
        "get_tasks",
        "upload",
        "download",
    ],
    "dpdispatcher.dpcloudserver.config": ["API_HOST"],
    "dpdispatcher.dpcloudserver.retcode": ["RETCODE"],
    "dpdispatcher.dpcloudserver.zip_file": ["zip_file_list", "unzip_file"],
    "dpdispatcher.file_manager": [
        "PathPolicy",
        "PathResolver",
        "ManifestBuilder",
        "RemoteManifestBuilder",
        "SubmissionStagingPlan",
        "ArchiveBuilder",
        "FileTransfer",
        "AtomicTextWriter",
        "SafeArchiveExtractor",
        "write_text_atomic",
        "FileEntry",
        "MissingEntry",
        "ResolvedManifest",
    ],
    "dpdispatcher.utils.archive": ["UnsafeArchiveError", "safe_extract_tar", "safe_extract_zip"],
}


@pytest.mark.parametrize("module", sorted(PATHS))
def test_import_path(module):
    mod = importlib.import_module(module)
    for name in PATHS[module]:
        assert hasattr(mod, name), f"{module}.{name}"


def test_each_class_is_defined_once():
    seen = {}
    for module, names in PATHS.items():
        mod = importlib.import_module(module)
        for name in names:
            obj = getattr(mod, name)
            seen.setdefault(name, obj)
            assert seen[name] is obj, f"{module}.{name} is a second definition"


def test_top_level_api():
    for name in ("Machine", "Resources", "Task", "Submission", "Job", "info", "__version__"):
        assert hasattr(dpdispatcher, name)


def test_import_is_light_and_quiet():
    code = (
        "import sys, logging, dpdispatcher; "
        "heavy = [m for m in ('paramiko', 'requests', 'oss2') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert all(isinstance(h, logging.NullHandler) "
        "for h in logging.getLogger('dpdispatcher').handlers)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
