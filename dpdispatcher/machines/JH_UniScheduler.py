"""JH UniScheduler (景行资源管理与调度软件): ``jsub`` / ``jjobs`` / ``jctrl kill`` hooks.

UniScheduler's commands follow LSF's: ``jsub < script`` reads ``#JSUB`` directives
from standard input and answers ``Job <N> is submitted to queue <q>.``; ``jjobs id
...`` prints LSF's table (``JOBID USER STAT QUEUE ...``) and keeps ended jobs as
``DONE``/``EXIT`` for a while. So the class derives from :class:`LSF` and keeps its
parsers; the directives, the commands, the kwargs and the state table are its own.

State decisions (the states ``jctrl requeue`` lists in the UniScheduler manual):
``PEND`` and ``PSUSP`` (held before it started, ``jsub -H``) are *waiting*; ``RUN``,
``USUSP`` and ``SSUSP`` (suspended after starting) are *running*; ``DONE`` and
``EXIT`` have ended and the finish tag decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher._reconcile import tag_loop
from dpdispatcher._script.quoting import job_id, sh
from dpdispatcher.machine import Machine  # noqa: F401  (used by the doctest)
from dpdispatcher.machines.lsf import LSF
from dpdispatcher.utils.job_status import JobStatus

if TYPE_CHECKING:
    from dpdispatcher.resources import Resources
    from dpdispatcher.submission import Job

__all__ = ["JH_UNISCHEDULER_STATES", "JH_UniScheduler", "gpu_line"]

#: Every ``jjobs`` STAT code and what it means here.
JH_UNISCHEDULER_STATES: tuple[tuple[str, str, JobStatus], ...] = (
    ("PEND", "pending", JobStatus.waiting),
    ("PSUSP", "held or suspended while pending", JobStatus.waiting),
    ("RUN", "running", JobStatus.running),
    ("USUSP", "suspended by its owner while running", JobStatus.running),
    ("SSUSP", "suspended by the scheduler while running", JobStatus.running),
    ("DONE", "finished with exit code 0", JobStatus.finished),
    ("EXIT", "finished with a non-zero exit code, or killed", JobStatus.terminated),
)


def gpu_line(resources: Resources) -> str | None:
    """``custom_gpu_line`` verbatim if set, else ``#JSUB -gpgpu G`` when G > 0, else None.

    >>> from dpdispatcher import Resources
    >>> gpu_line(Resources(1, 4, 2, "", 1))
    '#JSUB -gpgpu 2'
    >>> gpu_line(Resources(1, 4, 0, "", 1, kwargs={"custom_gpu_line": "#JSUB -gpgpu 1"}))
    '#JSUB -gpgpu 1'
    >>> gpu_line(Resources(1, 4, 0, "", 1)) is None
    True
    """
    custom = resources.kwargs.get("custom_gpu_line")
    if custom:
        return str(custom)
    gpus = int(resources.gpu_per_node)
    return f"#JSUB -gpgpu {gpus}" if gpus > 0 else None


class JH_UniScheduler(LSF):
    """JH UniScheduler: ``jsub < script``, one ``jjobs`` for all jobs, ``jctrl kill``.

    Examples
    --------
    >>> from dpdispatcher import Job, Resources, Task
    >>> m = Machine(batch_type="JH_UniScheduler", context_type="LazyLocal", local_root=".")
    >>> job = Job([Task("true", ".")], resources=Resources(2, 4, 1, "gpu", 1))
    >>> print("\\n".join(m.header_lines(job)))
    #!/bin/bash -l
    #JSUB -e %J.err
    #JSUB -o %J.out
    #JSUB -n 8
    #JSUB -R 'span[ptile=4]'
    #JSUB -q gpu
    #JSUB -gpgpu 1
    """

    state_map = {code: status for code, _, status in JH_UNISCHEDULER_STATES}
    directive = "#JSUB"
    #: the original writes no job name for UniScheduler
    names_jobs = False
    # transient_patterns: LSF's (UniScheduler's client repeats LSF's wording while its
    # master is unreachable)

    @classmethod
    def kwargs_subfields(cls) -> list[Any]:
        """``custom_gpu_line``."""
        from dpdispatcher.arginfo import custom_gpu_line_argument

        return [
            custom_gpu_line_argument(
                "A GPU request line used verbatim instead of `#JSUB -gpgpu <gpu_per_node>`, "
                'e.g. `#JSUB -gpgpu "1 type=NVIDIAA100-PCIE-80GB"`.'
            ),
        ]

    # -- rendering ----------------------------------------------------------------
    def gpu_request(self, resources: Resources) -> str | None:
        """``-gpgpu`` or ``custom_gpu_line`` (:func:`gpu_line`)."""
        return gpu_line(resources)

    # -- scheduler hooks ------------------------------------------------------------
    def submit_command(self, job: Job, script: str) -> str:
        """``jsub [-J <submit tag>] < <script>`` (jsub reads ``#JSUB`` lines only from
        standard input); its reply is parsed as ``bsub``'s."""
        name = f"-J {sh(job.submit_tag)} " if job.submit_tag else ""
        return f"jsub {name}< {sh(script)}"

    #: ``jjobs`` is asked for its plain table (no JSON output is documented)
    status_formats: ClassVar[tuple[str, ...]] = ("text",)

    def status_command(self, jobs: Sequence[Job]) -> str:
        """One ``jjobs`` naming every job (its output is parsed as ``bjobs``'s)."""
        return "jjobs " + " ".join(sh(job_id(job.job_id)) for job in jobs)

    def find_command(self, tags: Sequence[str]) -> str | None:
        """``jjobs -a -J <tag>`` per tag (the manual documents ``-a``, all recent jobs,
        and ``-J``, a job name filter); the table is parsed as ``bjobs``'s."""
        return tag_loop(tags, 'jjobs -a -J "$t"')

    def kill_command(self, job_id: str) -> str:
        """``jctrl kill <id>``."""
        return f"jctrl kill {sh(job_id)}"
