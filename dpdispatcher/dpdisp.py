"""The ``dpdisp`` command line: ``submit``, ``submission`` and ``run``."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dpdispatcher._loaders import load_json
from dpdispatcher._state import local_state_dir
from dpdispatcher.dlog import dlog, setup_logging
from dpdispatcher.errors import ConfigurationError, DPDispatcherError
from dpdispatcher.job import Job
from dpdispatcher.machine import Machine
from dpdispatcher.resources import Resources
from dpdispatcher.submission import Submission
from dpdispatcher.task import Task
from dpdispatcher.utils.job_status import JobStatus

SUBMISSION_KEYS = (
    "work_base",
    "machine",
    "resources",
    "task_list",
    "forward_common_files",
    "backward_common_files",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dpdisp``."""
    parser = argparse.ArgumentParser(
        prog="dpdisp",
        description="dpdispatcher: run tasks as HPC batch jobs and bring the results back.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "submit",
        help="run a submission described by a JSON file",
        description="Run a submission described by a JSON file with the keys "
        + ", ".join(SUBMISSION_KEYS)
        + "; wait for it and download the results.",
    )
    p.add_argument("filename", help="the submission JSON file")
    p.add_argument("--dry-run", action="store_true", help="upload only; submit nothing")
    p.add_argument(
        "--exit-on-submit",
        action="store_true",
        help="return once every job is submitted (run again to wait and download)",
    )
    p.add_argument("--no-clean", action="store_true", help="keep the job root afterwards")
    p.add_argument(
        "--check-interval",
        type=float,
        default=30,
        help="longest pause between status checks, in seconds (default 30)",
    )

    p = sub.add_parser(
        "submission",
        help="inspect or act on a submission by its hash",
        description="Show the jobs of a submission from its saved state "
        f"({local_state_dir()}/<hash>.json) and optionally act on it.",
    )
    p.add_argument("submission_hash", help="the submission hash (name of its state file)")
    p.add_argument(
        "--machine",
        help="machine JSON to use instead of the saved one (the saved one holds no password)",
    )
    p.add_argument(
        "--download-terminated-log",
        action="store_true",
        help="download outlog/errlog of the tasks of terminated jobs",
    )
    p.add_argument(
        "--download-finished-task",
        action="store_true",
        help="download the backward files of finished jobs",
    )
    p.add_argument("--clean", action="store_true", help="kill unfinished jobs, remove the job root")
    p.add_argument(
        "--reset-fail-count",
        action="store_true",
        help="set every job's fail count to 0 so a rerun retries them",
    )

    p = sub.add_parser(
        "run",
        help="run a Python script with `# /// script` metadata",
        description="Run a Python script as one task. Its inline metadata block "
        "(`# /// script` ... `# ///`) holds a [tool.dpdispatcher] table with "
        "`machine` and `resources` (and optionally work_base, forward_files, "
        "backward_files, python).",
    )
    p.add_argument("filename", help="the Python script")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dpdisp``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    setup_logging(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        if args.command == "submit":
            return cmd_submit(args)
        if args.command == "submission":
            return cmd_submission(args)
        return cmd_run(args)
    except DPDispatcherError as err:
        print(f"dpdisp: error: {err}", file=sys.stderr)
        return 1


class ProgressLine:
    """Shows job counts on one line of a terminal (or as log lines otherwise)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, counts: dict[str, int]) -> None:
        text = "jobs: " + "  ".join(
            f"{name} {counts.get(name, 0)}"
            for name in ("unsubmitted", "waiting", "running", "terminated", "finished")
            if counts.get(name) or name in ("waiting", "running", "finished")
        )
        if getattr(self.stream, "isatty", lambda: False)():
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if getattr(self.stream, "isatty", lambda: False)():
            self.stream.write("\n")


def submission_from_dict(data: dict[str, Any]) -> Submission:
    """Build a submission from the ``dpdisp submit`` JSON layout, validated strictly."""
    if not isinstance(data, dict):
        raise ConfigurationError("submission: expected a JSON object")
    unknown = sorted(set(data) - set(SUBMISSION_KEYS))
    if unknown:
        raise ConfigurationError(f"submission: unknown keys {unknown} (valid: {SUBMISSION_KEYS})")
    for key in ("work_base", "machine", "resources", "task_list"):
        if key not in data:
            raise ConfigurationError(f"submission/{key} is required")
    tasks = data["task_list"]
    if not isinstance(tasks, list):
        raise ConfigurationError("submission/task_list: expected a list of task objects")
    return Submission(
        data["work_base"],
        Machine.load_from_dict(data["machine"]),
        Resources.load_from_dict(data["resources"]),
        forward_common_files=data.get("forward_common_files", []),
        backward_common_files=data.get("backward_common_files", []),
        task_list=[Task.load_from_dict(t) for t in tasks],
    )


def _run_with_progress(submission: Submission, **kwargs: Any) -> dict[str, Any]:
    progress = ProgressLine()
    submission.progress = progress
    try:
        return submission.run_submission(**kwargs)
    finally:
        progress.close()


def cmd_submit(args: argparse.Namespace) -> int:
    """``dpdisp submit``."""
    submission = submission_from_dict(load_json(args.filename))
    _run_with_progress(
        submission,
        dry_run=args.dry_run,
        exit_on_submit=args.exit_on_submit,
        clean=not args.no_clean,
        check_interval=args.check_interval,
    )
    print(
        f"submission {submission.submission_hash}: "
        + (
            "uploaded (dry run)"
            if args.dry_run
            else "submitted"
            if args.exit_on_submit
            else "finished"
        )
    )
    return 0


def cmd_submission(args: argparse.Namespace) -> int:
    """``dpdisp submission HASH``."""
    path = local_state_dir() / f"{args.submission_hash}.json"
    if not path.is_file():
        raise ConfigurationError(f"no saved state for submission {args.submission_hash} ({path})")
    data = load_json(path)
    machine = Machine.load_from_json(args.machine) if args.machine else None
    submission = Submission.deserialize(data, machine=machine)
    submission.submission_hash = args.submission_hash
    ctx = submission._bound_machine().context
    ctx.bind_submission(submission)
    submission.update_submission_state()
    for job in submission.belonging_jobs:
        print(
            f"{job.job_hash}  id={job.job_id or '-':<12} {job.job_state.name:<12} "
            f"fail_count={job.fail_count}  tasks={len(job.job_task_list)}"
        )
    if args.download_terminated_log:
        _download_subset(submission, JobStatus.terminated, logs_only=True)
    if args.download_finished_task:
        _download_subset(submission, JobStatus.finished, logs_only=False)
    if args.reset_fail_count:
        for job in submission.belonging_jobs:
            job.fail_count = 0
        submission.submission_to_json()
    if args.clean:
        submission.clean_all_jobs()
        submission.clean_jobs()
    return 0


def _download_subset(submission: Submission, state: JobStatus, logs_only: bool) -> None:
    view = copy.copy(submission)
    jobs = [j for j in submission.belonging_jobs if j.job_state == state]
    if logs_only:
        jobs = [Job([_logs_task(t) for t in j.job_task_list], resources=j.resources) for j in jobs]
    view.belonging_jobs = jobs
    view.backward_common_files = []
    submission._bound_machine().context.download(view, check_exists=True, mark_failure=False)
    print(f"downloaded {'logs of' if logs_only else 'results of'} {len(jobs)} {state.name} job(s)")


def _logs_task(task: Task) -> Task:
    logs = [log for log in (task.outlog, task.errlog) if log is not None]
    return Task(
        task.command,
        task.task_work_path,
        backward_files=logs,
        outlog=task.outlog,
        errlog=task.errlog,
    )


def read_script_metadata(text: str) -> dict[str, Any]:
    """The ``[tool.dpdispatcher]`` table of a script's ``# /// script`` block."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found]
    body = _metadata_block(text.splitlines())
    try:
        meta = tomllib.loads(body)
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(f"script metadata is not valid TOML: {err}") from err
    table = meta.get("tool", {}).get("dpdispatcher")
    if not isinstance(table, dict):
        raise ConfigurationError("script metadata has no [tool.dpdispatcher] table")
    return dict(table)


def _metadata_block(lines: list[str]) -> str:
    """The TOML inside ``# /// script`` ... ``# ///`` (PEP 723), comment marks removed."""
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "# /// script")
    except StopIteration:
        raise ConfigurationError("no `# /// script` metadata block found in the script") from None
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.rstrip() == "# ///":
            return "\n".join(body) + "\n"
        if not line.startswith("#"):
            break
        body.append(line[2:] if line.startswith("# ") else line[1:])
    raise ConfigurationError("the `# /// script` block is not closed by a `# ///` line")


def cmd_run(args: argparse.Namespace) -> int:
    """``dpdisp run script.py``."""
    script = Path(args.filename)
    table = read_script_metadata(script.read_text(encoding="utf-8"))
    allowed = {"machine", "resources", "work_base", "forward_files", "backward_files", "python"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigurationError(
            f"[tool.dpdispatcher]: unknown keys {unknown} (valid: {sorted(allowed)})"
        )
    for key in ("machine", "resources"):
        if key not in table:
            raise ConfigurationError(f"[tool.dpdispatcher] needs a `{key}` table")
    python = str(table.get("python", "python3"))
    task = Task(
        command=f"{python} {script.name}",
        task_work_path=".",
        forward_files=[script.name, *table.get("forward_files", [])],
        backward_files=list(table.get("backward_files", [])),
    )
    submission = Submission(
        str(table.get("work_base", ".")),
        Machine.load_from_dict(table["machine"]),
        Resources.load_from_dict(table["resources"]),
        task_list=[task],
    )
    _run_with_progress(submission)
    dlog.info("finished %s", json.dumps(submission.submission_hash))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
