"""DistributedShell: each job is a Hadoop YARN distributed-shell application.

Used with :class:`~dpdispatcher.contexts.hdfs_context.HDFSContext`. The job script is
written to the work base and given to the YARN distributed-shell client
(``hadoop jar …distributedshell-*.jar …Client -shell_script <script>``), started on this
machine in the background; the job id is the client's process id, as in the original.
In its container the script fetches the submission's ``<hash>_upload.tgz`` (every
``*.tgz`` of the HDFS job root, as 1.1.0) and the job's ``.run`` body, runs the tasks,
and on success packs the task directories into ``<submission>_<job>_download.tar.gz``,
puts it back and touches the job tag on HDFS (on failure it puts its last-error file
back instead).

A poll is one local ``ps`` for every client and one listing of the HDFS job root: a
job whose tag is there is *finished* (as in 1.1.0, even while its client is still
exiting), else *running* while its client lives, else *terminated*.
Killing a job runs ``yarn application -kill`` for the application id
the client logged, and stops the client's process group.

``resources.kwargs``: ``yarn_path`` (the directory holding
``hadoop-yarn-applications-distributedshell-*.jar``), ``img_name`` (a Docker image for
the container; none runs the script on the node itself) and ``mem_limit`` (GB, 1).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dpdispatcher._script import names, render
from dpdispatcher._script.quoting import job_id, sh
from dpdispatcher.base_context import CommandResult
from dpdispatcher.contexts.hdfs_context import HDFSContext, download_archive, upload_archive
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, SchedulerError
from dpdispatcher.machine import Machine
from dpdispatcher.utils.hdfs_cli import run_cmd_with_all_output
from dpdispatcher.utils.job_status import JobStatus
from dpdispatcher.utils.utils import customized_script_header_template

if TYPE_CHECKING:
    from dpdispatcher.resources import Resources
    from dpdispatcher.submission import Job

__all__ = [
    "DistributedShell",
    "customized_script_header_template",
    "run_cmd_with_all_output",
    "yarn_client_command",
]

CLIENT = "org.apache.hadoop.yarn.applications.distributedshell.Client"
JAR_GLOB = "hadoop-yarn-applications-distributedshell-*.jar"
_APP_ID = re.compile(r"\bapplication_\d+_\d+\b")


def app_name(job_hash: str) -> str:
    """The YARN application name of a job (also how its client is recognised in ``ps``)."""
    return f"distributedshell_dpgen_{job_hash}"


def client_log(job_hash: str) -> str:
    """The client's log in the work base (the original's ``<job_hash>.out``)."""
    return f"{job_hash}.out"


def find_jar(resources: Resources) -> str:
    """The distributed-shell jar under ``kwargs.yarn_path``; a clear error if none."""
    yarn_path = str(resources.kwargs.get("yarn_path") or "")
    found = sorted(glob.glob(os.path.join(yarn_path, JAR_GLOB))) if yarn_path else []
    if not found:
        raise ConfigurationError(
            f"resources/kwargs/yarn_path: no {JAR_GLOB} in {yarn_path!r} (give the "
            "directory holding it, e.g. $HADOOP_HOME/share/hadoop/yarn)"
        )
    return found[-1]


def yarn_client_command(job: Job, jar: str, script: str) -> str:
    """The shell command starting the client in its own session; it prints the PID.

    ``jar`` is a shell word (already quoted), e.g. ``"$jar"``.

    >>> from dpdispatcher import Job, Resources, Task
    >>> j = Job([Task("true", "t")], resources=Resources(1, 4, 0, "q", 1,
    ...         kwargs={"mem_limit": 2, "img_name": "ubuntu:22.04"}))
    >>> cmd = yarn_client_command(j, '"$jar"', ".h.sub")
    >>> "-container_resources memory-mb=2048,vcores=4" in cmd, "-queue q" in cmd
    (True, True)
    """
    res = job.resources
    mem = int(float(res.kwargs.get("mem_limit") or 1) * 1024)
    args = ["hadoop", "jar", "JAR", CLIENT, "-jar", "JAR"]
    if res.queue_name:
        args += ["-queue", res.queue_name]
    args += ["-appname", app_name(job.job_hash)]
    image = res.kwargs.get("img_name")
    if image:
        args += ["-shell_env", "YARN_CONTAINER_RUNTIME_TYPE=docker",
                 "-shell_env", f"YARN_CONTAINER_RUNTIME_DOCKER_IMAGE={image}",
                 "-shell_env", "ENV_DOCKER_CONTAINER_SHM_SIZE=600m"]  # fmt: skip
    args += ["-master_memory", "1024", "-master_vcores", "2", "-num_containers", "1",
             "-container_resources", f"memory-mb={mem},vcores={int(res.cpu_per_node)}",
             "-shell_script", script]  # fmt: skip
    log = sh(client_log(job.job_hash))
    words = " ".join(jar if a == "JAR" else sh(a) for a in args)
    return f"setsid nohup {words} >>{log} 2>&1 </dev/null & echo $!"


def jar_lookup_command(resources: Resources) -> str:
    """Shell lines setting ``$jar`` to the newest distributed-shell jar of ``yarn_path``
    (the client starts on this machine; :func:`find_jar` checked it before submitting).
    """
    yarn_path = sh(str(resources.kwargs.get("yarn_path") or "."))
    return f'jar=$(ls -1 {yarn_path}/{JAR_GLOB} | tail -n 1) && test -n "$jar"'


def alive_command(job: Job) -> str:
    """Prints how many live clients (not zombie/dead) run ``job``'s application."""
    pid = sh(job_id(str(job.job_id)))
    return (
        f"ps -ww -o stat=,args= -p {pid} | grep -F -- {sh(app_name(job.job_hash))}"
        " | grep -vc '^ *[ZX]'"
    )


class DistributedShell(Machine):
    """Hadoop YARN distributed shell (with HDFSContext): one application per job.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="DistributedShell", context_type="HDFSContext",
    ...             local_root=".", remote_root="hdfs://nn/runs")
    >>> m.header_lines(Job([Task("true", "t")], resources=Resources(1, 1, 0, "", 1)))
    ['#!/bin/bash -l', 'set -x']
    """

    #: the YARN client is started on this machine, one job at a time (submit_prepared)
    submits_by_command = False
    #: first letter of the client's ``ps`` STAT: Z (zombie) and X (dead) have ended
    state_map = {s: JobStatus.running for s in "RSDTtIW"} | {
        "Z": JobStatus.terminated,
        "X": JobStatus.terminated,
    }

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """``yarn_path``, ``img_name``, ``mem_limit``."""
        from dargs import Argument

        return [
            Argument("yarn_path", str, optional=True, default=None,
                     doc=f"Directory holding `{JAR_GLOB}` "
                     "(e.g. `$HADOOP_HOME/share/hadoop/yarn`)."),
            Argument("img_name", str, optional=True, default=None,
                     doc="Docker image the container runs in; none runs on the node itself."),
            Argument("mem_limit", [int, float], optional=True, default=1,
                     doc="Container memory in GB."),
        ]  # fmt: skip

    def check_resources(self, resources: Resources, *, strict: bool = False) -> None:
        """Also refuse, before anything is uploaded, a context other than HDFSContext and a
        ``kwargs.yarn_path`` without the distributed-shell jar."""
        super().check_resources(resources, strict=strict)
        if not isinstance(self.context, HDFSContext):
            raise ConfigurationError(
                f"machine/context_type: DistributedShell needs HDFSContext (its job roots are "
                f"on HDFS), not {type(self.context).__name__}"
            )
        find_jar(resources)

    # -- rendering ----------------------------------------------------------------
    def header_lines(self, job: Job) -> list[str]:
        """Shebang and ``set -x`` (the original's header)."""
        return ["#!/bin/bash -l", "set -x"]

    def submission_hash(self) -> str:
        """The bound submission's hash (else the last component of the job root)."""
        submission = getattr(self.context, "submission", None)
        if submission is not None:
            return str(submission.submission_hash)
        return str(self.context.remote_root).rstrip("/").rsplit("/", 1)[-1]

    def gen_script_header(self, job: Job) -> str:
        """The header template file's text if the resources name one, else the default."""
        template = job.resources.strategy.get("customized_script_header_template_file")
        if template:
            return customized_script_header_template(template, job.resources)
        return super().gen_script_header(job)

    def _root(self) -> str:
        return sh(self.context.remote_root.rstrip("/"))

    def gen_script_env(self, job: Job) -> str:
        """Env section in the container's directory, then the inputs fetched from HDFS.

        As in 1.1.0: each ``source`` line is wrapped as ``{ source …; }``, no
        ``DPDISPATCHER_*`` sizes are exported, and the inputs are every ``*.tgz`` of
        the job root (globbed by HDFS, not by the container's shell).
        """
        res = job.resources
        upload = sh(upload_archive(self.submission_hash()))
        root = self._root()
        lines = [
            *render.root_lines(job.job_hash, "."),
            *render.module_lines(res),
            *(f"{{ {line}; }} " for line in render.source_lines(res)),
            *render.env_exports(res),
            *res.prepend_script,
            f"if [ ! -f {upload} ]; then (set -f; hadoop fs -get {root}/*.tgz .) || exit 1; fi",
            f"hadoop fs -get -f {root}/{sh(names.run_file(job.job_hash))} . || exit 1",
            f"tar -xzf {upload} || exit 1",
        ]
        return "\n".join(lines) + "\n"

    def gen_script_end(self, job: Job) -> str:
        """Pack the task directories and put them back with the job tag, or the error."""
        submission_hash = self.submission_hash()
        tarball = sh(download_archive(submission_hash, job.job_hash))
        dirs = " ".join(sh(t.task_work_path) for t in job.job_task_list)
        root = self._root()
        flag = render.root_file(names.fail_flag_file(job.job_hash))
        lines = [
            'cd "$REMOTE_ROOT"',
            "wait",
            f"read -r dpdispatcher_task_fail < {flag}",
            'if test "$dpdispatcher_task_fail" -eq 0; then',
            f"  tar --dereference -czf {tarball} {dirs} &&",
            f"  hadoop fs -put -f {tarball} {root} &&",
            f"  hadoop fs -touchz {root}/{sh(names.job_tag_file(job.job_hash))} || exit 1",
            "else",
            f"  hadoop fs -put -f {sh(names.last_err_file(job.job_hash))} {root} 2>/dev/null",
            "  exit 1",
            "fi",
            *job.resources.append_script,
        ]
        return "\n".join(lines) + "\n"

    def gen_script(self, job: Job) -> str:
        """Header, custom flags, env and staging, the run line, the end."""
        return render.render_script(
            self.gen_script_header(job), job.job_hash, ".", job.resources,
            env=self.gen_script_env(job), end=self.gen_script_end(job),
        )  # fmt: skip

    # -- submit, poll, kill (on this machine) -------------------------------------------
    def do_submit(self, job: Job) -> int:  # type: ignore[override]
        """Write the script and its ``.run`` body to the job root, start the client;
        return its process id (an int, as 1.1.0 did)."""
        self.context.write_file(fname=job.script_file_name, write_str=self.gen_script(job))
        self.context.write_file(
            fname=f"{job.script_file_name}.run", write_str=self.gen_script_command(job)
        )
        return int(self.submit_prepared(job))

    def submit_prepared(self, job: Job) -> str:
        """Fetch the script from the job root, start the client here; record the PID."""
        script = names.script_file(job.job_hash)
        command = " && ".join([
            f"cd {sh(str(self.context.local_root))}",
            jar_lookup_command(job.resources),
            f"hadoop fs -get -f {self._root()}/{sh(script)} {sh(script)}",
            yarn_client_command(job, '"$jar"', script),
        ])  # fmt: skip
        code, out, err = run_cmd_with_all_output(command)
        if code:
            raise SchedulerError(
                f"DistributedShell: starting the YARN client for job {job.job_hash} failed "
                f"(exit code {code}): {err.decode(errors='replace').strip()}"
            )
        pid = job_id(self.parse_submit_output(out.decode()))
        self.context.write_file(names.job_id_file(job.job_hash), pid)
        return pid

    def submit_command(self, job: Job, script: str) -> str:
        """Not used: the client starts on this machine (see :meth:`submit_prepared`)."""
        raise SchedulerError("DistributedShell submits through submit_prepared")

    def parse_submit_output(self, stdout: str) -> str:
        """The client's PID (the last line)."""
        lines = stdout.strip().splitlines()
        if not lines or not lines[-1].strip().isdigit():
            raise SchedulerError(f"DistributedShell: no PID in {stdout!r}")
        return lines[-1].strip()

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One ``ps`` for every client."""
        return "ps -ww -o pid=,stat=,args= -p " + ",".join(sh(job_id(j.job_id)) for j in jobs)

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """First letter of STAT for clients still running our application."""
        out: dict[str, str] = {}
        for line in result.stdout.splitlines():
            fields = line.split(None, 2)
            if len(fields) == 3:
                for job in jobs:
                    if fields[0] == job.job_id and app_name(job.job_hash) in fields[2]:
                        out[job.job_id] = fields[1][:1]
        return out

    def check_status_many(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """One local ``ps`` and one listing of the job root: tag there means finished."""
        submitted = [job for job in jobs if job.job_id]
        if not submitted:
            return {}
        code, out, err = run_cmd_with_all_output(self.status_command(submitted))
        if code not in (0, 1) or (code and err.strip()):
            raise SchedulerError(f"DistributedShell: ps failed: {err.decode(errors='replace')}")
        raw = self.parse_status_output(CommandResult(code, out.decode(), err.decode()), submitted)
        states = {
            job.job_hash: self.map_state(raw[job.job_id])
            if job.job_id in raw
            else JobStatus.terminated
            for job in submitted
        }
        tags = self.context.files_exist([names.job_tag_file(job.job_hash) for job in submitted])
        for job in submitted:
            if names.job_tag_file(job.job_hash) in tags:
                states[job.job_hash] = JobStatus.finished
        return states

    def check_status(self, job: Job) -> JobStatus:
        """One job: finished if its tag is on HDFS, else running while its client lives."""
        if not job.job_id:
            return JobStatus.unsubmitted
        code, out, err = run_cmd_with_all_output(alive_command(job))
        if code not in (0, 1) or (code and err.strip()):
            raise SchedulerError(f"DistributedShell: ps failed: {err.decode(errors='replace')}")
        if self.check_finish_tag(job):
            return JobStatus.finished
        alive = out.strip() not in (b"", b"0")
        return JobStatus.running if alive else JobStatus.terminated

    def check_finish_tag(self, job: Job) -> bool:
        """Whether the job tag is on HDFS."""
        return bool(self.context.check_file_exists(names.job_tag_file(job.job_hash)))

    def kill_command(self, job_id: str) -> str:
        """Stop the client's process group."""
        return f"kill -- -{sh(job_id)}"

    def kill(self, job: Job) -> None:
        """``yarn application -kill`` for the logged application, then stop the client."""
        if not job.job_id:
            return
        log = os.path.join(self.context.local_root, client_log(job.job_hash))
        try:
            with open(log, encoding="utf-8", errors="replace") as fh:
                apps = _APP_ID.findall(fh.read())
        except OSError:
            apps = []
        if apps:
            code, _, err = run_cmd_with_all_output(f"yarn application -kill {sh(apps[-1])}")
            if code:
                dlog.info("yarn application -kill %s: %s", apps[-1], err.decode().strip())
        run_cmd_with_all_output(self.kill_command(job_id(job.job_id)))
