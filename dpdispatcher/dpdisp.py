"""The ``dpdisp`` command line: ``submit``, ``submission``, ``run`` and ``gui``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from dpdispatcher._state import local_state_dir
from dpdispatcher.dlog import dlog, setup_logging
from dpdispatcher.entrypoints.submit import (
    SUBMISSION_KEYS,
    load_submission_from_json,
    submission_from_dict,
)
from dpdispatcher.errors import DPDispatcherError
from dpdispatcher.submission import Submission

__all__ = ["build_parser", "main", "main_parser", "parse_args", "submission_from_dict"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dpdisp``."""
    from dpdispatcher import __version__

    parser = argparse.ArgumentParser(
        prog="dpdisp",
        description="dpdispatcher: run tasks as HPC batch jobs and bring the results back.",
    )
    parser.add_argument("--version", action="version", version=f"dpdisp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_submit(sub)
    _add_submission(sub)
    p = sub.add_parser(
        "run",
        help="run a Python script with `# /// script` metadata",
        description="Run a Python script as a submission. Its inline metadata block "
        "(`# /// script` ... `# ///`) holds a [tool.dpdispatcher] table with the keys of a "
        "`dpdisp submit` file (machine, resources, task_list, work_base, ...); each task "
        'runs `<command> "$REMOTE_ROOT"/script_<sha1>.py`.',
    )
    p.add_argument("filename", help="the Python script")
    p.add_argument("--allow-ref", action="store_true", help="let $ref entries load files")
    p = sub.add_parser("gui", help="serve DP-GUI for the parameter files (needs dpgui)")
    p.add_argument("-p", "--port", type=int, default=6042, help="port (default 6042)")
    p.add_argument("--bind_all", action="store_true", help="listen on every interface")
    return parser


#: the name 1.x gave :func:`build_parser`
main_parser = build_parser


def _add_submit(sub: Any) -> None:
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
    p.add_argument(
        "--no-clean", dest="clean", action="store_false", help="keep the job root afterwards"
    )
    p.add_argument(
        "--continue-on-failure",
        action="store_true",
        help="keep running the other jobs when one fails for good",
    )
    p.add_argument("--allow-ref", action="store_true", help="let $ref entries load files")
    p.add_argument(
        "--strict", action="store_true", help="refuse unknown keys instead of warning about them"
    )
    p.add_argument(
        "--check-interval",
        type=float,
        default=30,
        help="longest pause between status checks, in seconds (default 30)",
    )


def _add_submission(sub: Any) -> None:
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


def parse_args(args: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``dpdisp`` arguments."""
    return build_parser().parse_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dpdisp``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    setup_logging(logging.DEBUG if args.verbose else None)
    try:
        if args.command == "submit":
            return cmd_submit(args)
        if args.command == "submission":
            return cmd_submission(args)
        if args.command == "gui":
            from dpdispatcher.entrypoints.gui import start_dpgui

            start_dpgui(port=args.port, bind_all=args.bind_all)
            return 0
        return cmd_run(args)
    except DPDispatcherError as err:
        print(f"dpdisp: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"dpdisp: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dpdisp: interrupted", file=sys.stderr)
        return 130


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


def _run_with_progress(submission: Submission, **kwargs: Any) -> dict[str, Any]:
    progress = ProgressLine()
    submission.progress = progress
    try:
        return submission.run_submission(**kwargs)
    finally:
        progress.close()


def cmd_submit(args: argparse.Namespace) -> int:
    """``dpdisp submit``."""
    submission = load_submission_from_json(
        args.filename, allow_ref=args.allow_ref, strict=args.strict
    )
    options: dict[str, Any] = {
        "dry_run": args.dry_run,
        "exit_on_submit": args.exit_on_submit,
        "clean": args.clean,
        "check_interval": args.check_interval,
    }
    if args.continue_on_failure:
        options["continue_on_failure"] = True
    _run_with_progress(submission, **options)
    if args.dry_run:
        print(
            f"submission succeeded: {submission.submission_hash} (dry run: uploaded, "
            "nothing submitted)"
        )
    else:
        state = "submitted" if args.exit_on_submit else "finished"
        print(f"submission {submission.submission_hash}: {state}")
    return 0


def cmd_submission(args: argparse.Namespace) -> int:
    """``dpdisp submission HASH``: show the jobs, then do the actions asked for."""
    from dpdispatcher.entrypoints.submission import handle_submission, load_recorded
    from dpdispatcher.machine import Machine

    machine = Machine.load_from_json(args.machine) if args.machine else None
    submission = load_recorded(args.submission_hash, machine)
    submission.update_submission_state()
    for job in submission.belonging_jobs:
        print(
            f"{job.job_hash}  id={job.job_id or '-':<12} {job.job_state.name:<12} "
            f"fail_count={job.fail_count}  tasks={len(job.job_task_list)}"
        )
    actions = ("download_terminated_log", "download_finished_task", "clean", "reset_fail_count")
    if any(getattr(args, a) for a in actions):
        handle_submission(
            submission_hash=args.submission_hash,
            machine=machine,
            **{a: getattr(args, a) for a in actions},
        )
    return 0


def read_script_metadata(text: str) -> dict[str, Any]:
    """The ``[tool.dpdispatcher]`` table of a script's ``# /// script`` block."""
    from dpdispatcher.errors import ConfigurationError
    from dpdispatcher.run import read_pep723

    table = read_pep723(text)
    if table is None:
        raise ConfigurationError("no `# /// script` block with a [tool.dpdispatcher] table")
    return table


def cmd_run(args: argparse.Namespace) -> int:
    """``dpdisp run script.py``."""
    from dpdispatcher.entrypoints.run import run

    run(filename=args.filename, allow_ref=args.allow_ref)
    dlog.info("finished %s", args.filename)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
