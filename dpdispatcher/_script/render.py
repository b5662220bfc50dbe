"""Pure renderers for the job script and its ``.run`` body (SPEC §5).

Nothing here does I/O or mutates its inputs: rendering twice gives the same text.
The header comes from the batch type (a list of lines); the rest is common.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dpdispatcher._script import names
from dpdispatcher._script.quoting import env_name, env_value, sh, source_line, static_words
from dpdispatcher.errors import ConfigurationError

if TYPE_CHECKING:
    from dpdispatcher.resources import Resources
    from dpdispatcher.task import Task

ROOT = '"$REMOTE_ROOT"'


def root_file(name: str) -> str:
    """A path to ``name`` inside the job root, for use in the rendered script."""
    return f"{ROOT}/{sh(name)}"


def _module_lines(verb: str, modules: Sequence[str]) -> list[str]:
    """``module <verb> <names>`` per entry; an entry may name several modules (static
    words, each quoted), shell code is refused."""
    out = []
    for entry in modules:
        words = static_words(entry, f"resources/module_{verb}_list".replace("_load", ""))
        if words:
            out.append(f"module {verb} " + " ".join(sh(w) for w in words))
    return out


def root_lines(job_hash: str, job_root: str) -> list[str]:
    """Resolve ``$REMOTE_ROOT`` and clear the fail flag; fail closed (exit 1 before any
    task runs, and before the job tag could be written) when the job root is missing."""
    flag = names.fail_flag_file(job_hash)
    return [
        f"REMOTE_ROOT=$(readlink -f {sh(job_root)})",
        'if [ ! -d "$REMOTE_ROOT" ]; then',
        f"  echo 1 > {sh(job_root)}/{sh(flag)} 2>/dev/null",
        f"  printf 'dpdispatcher: job root %s not found\\n' {sh(job_root)} >&2",
        "  exit 1",
        "fi",
        f"echo 0 > {root_file(flag)}",
    ]


def module_lines(resources: Resources) -> list[str]:
    """``module purge``, then the unloads and loads."""
    lines = ["module purge"] if resources.module_purge else []
    return (
        lines
        + _module_lines("unload", resources.module_unload_list)
        + _module_lines("load", resources.module_list)
    )


def source_lines(resources: Resources) -> list[str]:
    """One ``source`` line per non-blank ``source_list`` entry."""
    return [line for line in map(source_line, resources.source_list) if line]


def resource_exports(resources: Resources) -> list[str]:
    """``DPDISPATCHER_NUMBER_NODE`` and the other job sizes, for the tasks to read."""
    return [
        f"export DPDISPATCHER_NUMBER_NODE={resources.number_node}",
        f"export DPDISPATCHER_CPU_PER_NODE={resources.cpu_per_node}",
        f"export DPDISPATCHER_GPU_PER_NODE={resources.gpu_per_node}",
        f"export DPDISPATCHER_QUEUE_NAME={sh(resources.queue_name)}",
        f"export DPDISPATCHER_GROUP_SIZE={resources.group_size}",
    ]


def env_exports(resources: Resources) -> list[str]:
    """One ``export`` per ``envs`` value (a list value exports each item in turn)."""
    lines = []
    for key, value in resources.envs.items():
        values = value if isinstance(value, list) else [value]
        lines += [f"export {env_name(key)}={env_value(v)}" for v in values]
    return lines


def render_env(job_hash: str, job_root: str, resources: Resources) -> str:
    """The env section: job root, fail flag, modules, sources, exports, prepend_script."""
    lines = [
        *root_lines(job_hash, job_root),
        *module_lines(resources),
        *source_lines(resources),
        *resource_exports(resources),
        *env_exports(resources),
        *resources.prepend_script,
    ]
    return "\n".join(lines) + "\n"


def render_run_line(job_hash: str) -> str:
    """The lines of the job script that run the per-task body.

    If the body cannot be read, the fail flag is set and the script exits 1 with a
    message in the last-error file, so the job never counts as finished.
    """
    run = names.run_file(job_hash)
    return (
        f"source {root_file(run)} || {{\n"
        f"  echo 1 > {root_file(names.fail_flag_file(job_hash))}\n"
        f"  echo {sh('dpdispatcher: cannot read the task body ' + run)} "
        f"| tee {root_file(names.last_err_file(job_hash))} >&2\n"
        "  exit 1\n"
        "}\n"
    )


def render_end(job_hash: str, resources: Resources) -> str:
    """Wait for every task, then touch the job tag only if none failed."""
    flag = root_file(names.fail_flag_file(job_hash))
    lines = [
        'cd "$REMOTE_ROOT"',
        "wait",
        f"read -r dpdispatcher_task_fail < {flag}",
        'if test "$dpdispatcher_task_fail" -eq 0; then',
        f"  : > {root_file(names.job_tag_file(job_hash))}",
        "else",
        "  exit 1",
        "fi",
        *resources.append_script,
    ]
    return "\n".join(lines) + "\n"


def _redirects(task: Task, background: bool = True) -> str:
    # a background job reads /dev/null (bash does so); a task in the foreground is told
    parts = [] if background else ["</dev/null"]
    if task.outlog is not None:
        parts.append(f"1>>{sh(task.outlog)}")
    if task.errlog is not None:
        parts.append(f"2>>{sh(task.errlog)}")
    return " ".join(parts)


def render_task_block(
    task: Task, job_hash: str, cuda_device: int | None, background: bool = True
) -> str:
    """One task: enter its directory, run it unless its tag exists, record the outcome.

    With ``background`` the block runs as a background job (tasks running in parallel,
    ``para_deg`` > 1), else in the job's shell; either way the command runs in a subshell
    with its standard input from ``/dev/null``.
    """
    tag = sh(names.task_tag_file(task.task_hash))
    log = task.errlog if task.errlog is not None else task.outlog
    tail = f"tail -c 4000 {sh(log)} 2>/dev/null; " if log is not None else ""
    cuda = f"  export CUDA_VISIBLE_DEVICES={cuda_device};\n" if cuda_device is not None else ""
    return (
        'cd "$REMOTE_ROOT"\n'
        f"cd {sh(task.task_work_path)} || exit 1\n"
        f"if [ ! -f {tag} ]; then\n"
        f"{cuda}"
        "  (\n"
        f"{task.command}\n"
        f"  ) {_redirects(task, background)}\n"
        "  dpdispatcher_rc=$?\n"
        f"  if test $dpdispatcher_rc -eq 0; then : > {tag}; else\n"
        f"    echo 1 > {root_file(names.fail_flag_file(job_hash))}\n"
        f"    {{ printf 'task %s failed with exit code %s\\n' {sh(task.task_work_path)} "
        f'"$dpdispatcher_rc"; {tail}}} > {root_file(names.last_err_file(job_hash))}\n'
        "  fi\n" + ("fi &\n" if background else "fi\n")
    )


def cuda_device_for(index: int, resources: Resources) -> int | None:
    """The CUDA device of the ``index``-th task, or None without ``if_cuda_multi_devices``."""
    if not resources.strategy.get("if_cuda_multi_devices", False):
        return None
    if resources.gpu_per_node < 1 or resources.number_node != 1:
        raise ConfigurationError(
            "resources/strategy/if_cuda_multi_devices needs gpu_per_node >= 1 and "
            f"number_node == 1 (got gpu_per_node={resources.gpu_per_node}, "
            f"number_node={resources.number_node})"
        )
    return (index // resources.para_deg) % resources.gpu_per_node


def wait_period(resources: Resources) -> int:
    """How many task blocks run in the background before a ``wait``."""
    if resources.strategy.get("if_cuda_multi_devices", False):
        return resources.gpu_per_node * resources.para_deg
    return resources.para_deg


def render_run_body(job_hash: str, tasks: Sequence[Task], resources: Resources) -> str:
    """The ``.run`` file: every task block, with a ``wait`` after each batch."""
    period = wait_period(resources)
    chunks = []
    for index, task in enumerate(tasks):
        cuda = cuda_device_for(index, resources)
        if period == 1 and cuda is None:  # one at a time: no background job to wait for
            chunks.append(render_task_block(task, job_hash, None, background=False))
            continue
        chunks.append(render_task_block(task, job_hash, cuda))
        if (index + 1) % period == 0:
            chunks.append("wait\n")
    return "".join(chunks)


def render_script(
    header: str,
    job_hash: str,
    job_root: str,
    resources: Resources,
    run_line: str | None = None,
    end: str | None = None,
    env: str | None = None,
) -> str:
    """Assemble header, custom flags, env, run line and end into the job script.

    ``run_line``, ``end`` and ``env`` replace the default sections (a batch type with its
    own notion of "all tasks done", such as job arrays, renders its own end; one whose
    inputs must be fetched first, its own env).
    """
    flags = "".join(f"{flag}\n" for flag in resources.custom_flags)
    parts = [
        header.rstrip("\n") + "\n",
        flags,
        "\n",
        env if env is not None else render_env(job_hash, job_root, resources),
        "\n",
        run_line if run_line is not None else render_run_line(job_hash),
        "\n",
        end if end is not None else render_end(job_hash, resources),
    ]
    return "".join(parts)
