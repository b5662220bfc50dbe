"""Slurm and SlurmJobArray: ``sbatch`` / ``squeue`` / ``scancel`` behind the Machine hooks.

Everything here is pure (header lines, commands, parsers, the state table) except two
explicit steps the submission runs: :meth:`SlurmJobArray.prepare_submit` asks the
context, in one query, which task tags exist before a resubmission, and
:meth:`Slurm.settle_terminated` asks ``sacct`` why a job ended without its finish tag.
Each job carries its submit tag in ``--comment``, so that a submission whose outcome
was lost (``sbatch`` timed out after slurmctld queued the job) is found again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dpdispatcher._script import names, render
from dpdispatcher._script.quoting import directive_value, job_id, scheduler_job_name, sh
from dpdispatcher.base_context import CommandResult
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, SchedulerError
from dpdispatcher.job import single_task_name
from dpdispatcher.machine import Machine
from dpdispatcher.machines._slurm_parse import (
    SLURM_STATES,
    base_job_id,
    combine_states,
    parse_sacct_output,
    parse_sbatch_output,
    parse_squeue_comments,
    parse_squeue_output,
)
from dpdispatcher.task import task_tag_path

if TYPE_CHECKING:
    from dpdispatcher.resources import Resources
    from dpdispatcher.submission import Job
    from dpdispatcher.task import Task

#: the parsers and the state table live in :mod:`dpdispatcher.machines._slurm_parse`
__all__ = [
    "SLURM_STATES",
    "Slurm",
    "SlurmJobArray",
    "array_indices",
    "base_job_id",
    "combine_states",
    "element_tasks",
    "format_indices",
    "parse_sacct_output",
    "parse_sbatch_output",
    "parse_squeue_comments",
    "parse_squeue_output",
    "task_tag_path",
]

#: squeue/sacct wording of "these job ids are not known (any more)"
_UNKNOWN_IDS = "Invalid job id specified"
_ACCOUNTING_DISABLED = "accounting storage is disabled"


# --------------------------------------------------------------------------- pure helpers
def element_tasks(tasks: Sequence[Task], size: int) -> list[list[Task]]:
    """The tasks of each array element: consecutive chunks of ``size``."""
    return [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]


def format_indices(indices: Iterable[int]) -> str:
    """Array indices in ``--array`` syntax with ranges: ``[0, 1, 2, 5]`` -> ``0-2,5``."""
    ordered = sorted(set(indices))
    parts: list[str] = []
    start = prev = None
    for index in [*ordered, None]:
        if index is not None and prev is not None and index == prev + 1:
            prev = index
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = index
    return ",".join(parts)


def array_indices(spec: str) -> list[int]:
    """Inverse of :func:`format_indices` (a ``%limit`` suffix is ignored)."""
    out: list[int] = []
    for part in spec.split("%", 1)[0].split(","):
        low, _, high = part.partition("-")
        out.extend(range(int(low), int(high or low) + 1))
    return out


# --------------------------------------------------------------------------- Slurm
class Slurm(Machine):
    """Slurm: ``sbatch --parsable``, one ``squeue`` for all jobs, ``scancel``.

    A job that has left ``squeue`` (or shows an ended state) is judged by its finish
    tag. Controller outages and QOS submit limits are retried later, never failures.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="Slurm", context_type="LazyLocal", local_root=".")
    >>> job = Job([Task("true", ".")], resources=Resources(1, 4, 1, "gpu", 1))
    >>> print("\\n".join(m.header_lines(job)))
    #!/bin/bash -l
    #SBATCH --nodes 1
    #SBATCH --ntasks-per-node 4
    #SBATCH --gres=gpu:1
    #SBATCH --partition gpu
    """

    state_map = {code: status for code, _, status in SLURM_STATES} | {
        long: status for _, long, status in SLURM_STATES
    }
    transient_patterns = (
        "Socket timed out",
        "Unable to contact slurm controller",
        "Invalid user for SlurmUser",  # a busy controller's transient; 1.1.0 retries it
        "temporarily unable",
        "Resource temporarily unavailable",
        "Zero Bytes were transmitted or received",
        "Transport endpoint is not connected",
        "Communication connection failure",
        "backup controller in standby mode",
        "QOSMaxSubmitJobPerUserLimit",
        "AssocMaxSubmitJobLimit",
        "MaxSubmitJobsPerAccount",
        "Job violates accounting/QOS policy",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: None = not known yet; False once sacct said accounting is disabled
        self._accounting: bool | None = None
        self._explained: set[str] = set()

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """``custom_gpu_line``."""
        from dpdispatcher.arginfo import custom_gpu_line_argument

        return [
            custom_gpu_line_argument(
                "A GPU request line replacing `#SBATCH --gres=gpu:<gpu_per_node>`, e.g. "
                "`#SBATCH --gpus-per-node=a100:2` (inserted verbatim)."
            ),
        ]

    # -- rendering ----------------------------------------------------------------
    def header_lines(self, job: Job) -> list[str]:
        """Shebang, nodes, tasks per node, GPUs, partition, job name (SPEC §5)."""
        res = job.resources
        lines = [
            "#!/bin/bash -l",
            f"#SBATCH --nodes {int(res.number_node)}",
            f"#SBATCH --ntasks-per-node {int(res.cpu_per_node)}",
        ]
        gpu_line = res.kwargs.get("custom_gpu_line")
        if gpu_line:
            lines.append(str(gpu_line))
        elif res.gpu_per_node > 0:
            lines.append(f"#SBATCH --gres=gpu:{int(res.gpu_per_node)}")
        if res.queue_name:
            lines.append(
                f"#SBATCH --partition {directive_value(res.queue_name, 'resources/queue_name')}"
            )
        given = single_task_name(job)
        name = scheduler_job_name(given, job.job_hash) if given else ""
        if name:
            lines.append(f"#SBATCH --job-name {directive_value(name, 'task/task_name')}")
        return lines

    # -- scheduler hooks ------------------------------------------------------------
    def submit_command(self, job: Job, script: str) -> str:
        """``sbatch --parsable [--comment=<submit tag>] <script>``."""
        return f"sbatch --parsable{self._comment(job)} {sh(script)}"

    @staticmethod
    def _comment(job: Job) -> str:
        return f" --comment={sh(job.submit_tag)}" if job.submit_tag else ""

    def find_command(self, tags: Sequence[str]) -> str | None:
        """The user's jobs, recent ones included, with their comments."""
        return "squeue --noheader --states=all --user=\"$(id -un)\" --format='%i|%k'"

    def parse_find_output(self, result: CommandResult, tags: Sequence[str]) -> dict[str, str]:
        """The job id whose comment is each tag."""
        if not result.ok:
            raise SchedulerError(
                f"Slurm: squeue failed (exit code {result.exit_code}): {result.stderr.strip()}"
            )
        return parse_squeue_comments(result.stdout, tags)

    def parse_submit_output(self, stdout: str) -> str:
        """The text before ``;`` in sbatch's answer."""
        return parse_sbatch_output(stdout)

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One ``squeue`` for every job (``--states=all``: ended jobs show how they ended)."""
        ids = ",".join(job_id(job.job_id) for job in jobs)
        return f"squeue --noheader --states=all --format='%i %t' --jobs={sh(ids)}"

    def parse_status_output(self, result: CommandResult, jobs: Sequence[Job]) -> dict[str, str]:
        """State code per job id; an id squeue no longer knows is left out (ended)."""
        if not result.ok:
            if _UNKNOWN_IDS in result.stderr:
                return {}
            raise SchedulerError(
                f"Slurm: squeue failed (exit code {result.exit_code}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        table = parse_squeue_output(result.stdout)
        return {
            job.job_id: combine_states(table[job.job_id], self.state_map)
            for job in jobs
            if job.job_id in table
        }

    def kill_command(self, job_id: str) -> str:
        """``scancel <id>``."""
        return f"scancel {sh(job_id)}"

    # -- why did a job end without its tag? -----------------------------------------
    def settle_terminated(self, jobs: Sequence[Job]) -> None:
        """Log why each job ended without its tag: one ``sacct`` (never again once
        accounting is known to be off)."""
        jobs = [job for job in jobs if job.job_id and job.job_id not in self._explained]
        if not jobs:
            return
        self._explained.update(job.job_id for job in jobs)
        if self._accounting is False:
            return
        ids = ",".join(job_id(job.job_id) for job in jobs)
        result = self.context.run(
            f"sacct --noheader --parsable2 --format=JobID,State,ExitCode --jobs={sh(ids)}",
            idempotent=True,
        )
        if _ACCOUNTING_DISABLED in result.stderr + result.stdout:
            self._accounting = False
            return
        if not result.ok:
            dlog.debug("sacct failed: %s", result.stderr.strip())
            return
        self._accounting = True
        for jid, how in parse_sacct_output(result.stdout).items():
            dlog.info("Slurm job %s ended without its finish tag: %s", jid, how)


# --------------------------------------------------------------------------- arrays
class SlurmJobArray(Slurm):
    """A Slurm job array: ``slurm_job_size`` tasks per array element.

    The ``.run`` body dispatches on ``$SLURM_ARRAY_TASK_ID``. The job has finished when
    every task tag exists; a resubmission lists only the elements with unfinished tasks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: unfinished elements of the jobs about to be resubmitted (prepare_submit)
        self._pending: dict[str, list[int]] = {}

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """``custom_gpu_line`` and ``slurm_job_size``."""
        from dargs import Argument

        return [
            *Slurm.kwargs_subfields(),
            Argument(
                "slurm_job_size",
                int,
                optional=True,
                default=1,
                extra_check=lambda value: value >= 1,
                extra_check_errmsg="slurm_job_size must be greater than or equal to 1",
                doc="Tasks run by each element of the job array.",
            ),
        ]

    @staticmethod
    def job_size(resources: Resources) -> int:
        """Tasks per array element (``kwargs.slurm_job_size``, default 1)."""
        value = resources.kwargs.get("slurm_job_size")
        size = 1 if value is None else int(value)
        if size < 1:
            raise ConfigurationError(f"resources/kwargs/slurm_job_size: expected >= 1, got {size}")
        return size

    def elements(self, job: Job) -> list[list[Task]]:
        """The tasks of each array element."""
        return element_tasks(job.job_task_list, self.job_size(job.resources))

    def header_lines(self, job: Job) -> list[str]:
        """The Slurm header plus ``#SBATCH --array=0-M`` (``0-0`` for one element, as the
        original writes it)."""
        last = len(self.elements(job)) - 1
        return [*super().header_lines(job), f"#SBATCH --array=0-{last}"]

    def gen_run_body(self, job: Job) -> str:
        """``case $SLURM_ARRAY_TASK_ID`` with one branch per element."""
        return render_array_body(job.job_hash, self.elements(job), job.resources)

    def gen_script_end(self, job: Job) -> str:
        """Touch the job tag once every task tag exists; fail if this element's did not."""
        return render_array_end(job.job_hash, job.job_task_list, job.resources)

    def finish_tags(self, jobs: Sequence[Job]) -> list[str] | list[tuple[str, ...]]:
        """Every task tag: an array job has finished when all its tasks have."""
        return [tuple([task_tag_path(task) for task in job.job_task_list]) for job in jobs]

    def unfinished_elements(self, job: Job, done: set[str]) -> list[int]:
        """Indices of the elements with a task whose tag is not in ``done``."""
        return [
            i
            for i, tasks in enumerate(self.elements(job))
            if any(task_tag_path(t) not in done for t in tasks)
        ]

    def prepare_submit(self, jobs: Sequence[Job]) -> None:
        """Before resubmitting, learn which elements are unfinished (one file check)."""
        again = [job for job in jobs if job.job_id or job.fail_count]
        self._pending = {}
        if not again:
            return
        done = self.context.files_exist(
            [task_tag_path(t) for job in again for t in job.job_task_list]
        )
        for job in again:
            self._pending[job.job_hash] = self.unfinished_elements(job, done)

    def submit_command(self, job: Job, script: str) -> str:
        """``sbatch --parsable [--comment=<tag>] [--array=<unfinished>] <script>``.

        A job submitted before (a resubmission) lists only its unfinished elements, as
        found by :meth:`prepare_submit`; the first submission uses the header's range.
        """
        pending = self._pending.get(job.job_hash)
        if pending is None:
            return super().submit_command(job, script)
        indices = format_indices(pending or range(len(self.elements(job))))
        return f"sbatch --parsable{self._comment(job)} --array={indices} {sh(script)}"


def render_array_body(
    job_hash: str, elements: Sequence[Sequence[Task]], resources: Resources
) -> str:
    """The ``.run`` file of an array job: a ``case`` over ``$SLURM_ARRAY_TASK_ID``.

    Each branch runs its element's tasks like a plain job's body, waits for them, and
    records in ``dpd_element_failed`` whether one of them left no tag.
    """
    lines = ['case "$SLURM_ARRAY_TASK_ID" in']
    for index, tasks in enumerate(elements):
        lines.append(f"{index})")
        body = render.render_run_body(job_hash, tasks, resources)
        lines.append(body if body.endswith("wait\n") else body + "wait\n")
        lines[-1] = lines[-1].rstrip("\n")
        lines.append(f"{_all_tags_test(tasks)} || dpd_element_failed=1")
        lines.append(";;")
    lines += [
        "*)",
        '  echo "dpdispatcher: no tasks for array index $SLURM_ARRAY_TASK_ID" >&2',
        "  exit 1",
        "  ;;",
        "esac",
    ]
    return "\n".join(lines) + "\n"


def render_array_end(job_hash: str, tasks: Sequence[Task], resources: Resources) -> str:
    """End of an array element: job tag when all tasks of the job are done; own status."""
    lines = [
        'cd "$REMOTE_ROOT"',
        "wait",
        f"if {_all_tags_test(tasks)}; then",
        f"  : > {render.root_file(names.job_tag_file(job_hash))}",
        "fi",
        'if test "${dpd_element_failed:-0}" -ne 0; then',
        "  exit 1",
        "fi",
        *resources.append_script,
    ]
    return "\n".join(lines) + "\n"


def _all_tags_test(tasks: Sequence[Task]) -> str:
    """A shell test true when every task tag exists (paths from the job root)."""
    tests = [
        f"test -f {render.ROOT}/{sh(task.task_work_path)}/{sh(names.task_tag_file(task.task_hash))}"
        for task in tasks
    ]
    return "{ " + " && ".join(tests) + "; }"
