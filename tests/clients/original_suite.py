"""Run the original dpdispatcher 1.1.0 test suite against this package.

The suite is fetched from PyPI at run time (the 1.1.0 sdist, cached by
:func:`tests._venvs.sdist_archive`); nothing of it is kept in this repository. Its
``tests/``, ``examples/`` and ``.github/`` are copied
into a scratch directory next to a symlink ``dpdispatcher -> <this checkout>/dpdispatcher``,
so ``import dpdispatcher`` in the suite (which puts its parent directory first on
``sys.path``) resolves to this package. A ``dpdisp`` wrapper on ``PATH`` and a generated
``.dist-info`` (entry points from our ``pyproject.toml``, as an editable install would
give) make the CLI and dpgui tests see this package too. ``dpgui`` is installed into a
cached throwaway virtual environment with the system site packages (:mod:`tests._venvs`).

Usage::

    python tests/clients/original_suite.py [--keep DIR] [-k EXPR]

prints ``passed / exempt / known failures / failed / skipped`` and exits 1 when a test
fails that is in neither list (``original_suite_exempt.txt``,
``original_suite_known_failures.txt``, both next to this file).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run as a script: the checkout's ``tests`` package must import
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests._venvs import build, sdist_archive

VERSION = "1.1.0"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXEMPT_FILE = HERE / "original_suite_exempt.txt"
KNOWN_FILE = HERE / "original_suite_known_failures.txt"
#: extra packages the original's tests import (its ``test`` extra)
TEST_DEPS = ("dpgui==1.0.1",)


def fetch_sdist() -> Path:
    """The 1.1.0 sdist, downloaded from PyPI once and cached."""
    return sdist_archive(f"dpdispatcher=={VERSION}")


def test_python() -> Path:
    """A venv (with the system site packages, where our dependencies are) plus dpgui."""
    return build("original-suite-deps", [], TEST_DEPS, this_package_deps=False,
                 system_site_packages=True).python  # fmt: skip


def _members(tar: tarfile.TarFile, prefix: str) -> list[tarfile.TarInfo]:
    keep = tuple(f"{prefix}/{d}" for d in ("tests", "examples", ".github"))
    return [m for m in tar.getmembers() if m.name.startswith(keep)]


def prepare(workdir: Path, sdist: Path, package: Path = REPO / "dpdispatcher") -> None:
    """Lay out the suite in ``workdir`` with ``dpdispatcher`` pointing at ``package``."""
    prefix = f"dpdispatcher-{VERSION}"
    with tarfile.open(sdist) as tar:
        tar.extractall(workdir, members=_members(tar, prefix), filter="data")
    root = workdir / prefix
    for item in root.iterdir():
        item.rename(workdir / item.name)
    root.rmdir()
    (workdir / "dpdispatcher").symlink_to(package)
    _write_dist_info(workdir)
    bindir = workdir / "bin"
    bindir.mkdir()
    wrapper = bindir / "dpdisp"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dpdispatcher "$@"\n')
    wrapper.chmod(0o755)


def _write_dist_info(workdir: Path) -> None:
    """Metadata and entry points, as ``pip install -e .`` of this checkout would write."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    from dpdispatcher import __version__

    info = workdir / f"dpdispatcher-{__version__}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: dpdispatcher\nVersion: {__version__}\n"
    )
    lines: list[str] = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    lines.append("[console_scripts]")
    lines += [f"{name} = {target}" for name, target in project.get("scripts", {}).items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@dataclass
class Outcome:
    """Test ids by outcome."""

    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _test_id(case: ET.Element) -> str:
    classname = case.get("classname", "")
    name = case.get("name", "")
    parts = classname.split(".")
    # "tests.test_x.TestClass" -> tests/test_x.py::TestClass::name
    mod_end = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
    module = "/".join(parts[: mod_end + 1]) + ".py"
    rest = parts[mod_end + 1 :]
    if not classname:  # a module that failed to import: "tests.test_x"
        return name.replace(".", "/") + ".py"
    return "::".join([module, *rest, name])


def parse_junit(path: Path) -> Outcome:
    """Outcomes from pytest's junit XML."""
    out = Outcome()
    for case in ET.parse(path).getroot().iter("testcase"):
        tid = _test_id(case)
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skip = case.find("skipped")
        if bad is not None:
            first = (bad.get("message") or "").strip().splitlines()
            out.failed[tid] = first[0][:200] if first else "(no message)"
        elif skip is not None:
            out.skipped[tid] = (skip.get("message") or "")[:200]
        else:
            out.passed.append(tid)
    return out


def read_list(path: Path) -> dict[str, str]:
    """``test id | reason`` lines (``#`` comments and blank lines ignored)."""
    entries: dict[str, str] = {}
    if not path.is_file():
        return entries
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tid, _, reason = line.partition("|")
        entries[tid.strip()] = reason.strip()
    return entries


def run_suite(workdir: Path, extra_args: list[str] | None = None) -> Outcome:
    """Run the suite in ``workdir`` (prepared by :func:`prepare`) and parse the result."""
    python = test_python()
    shared = workdir / "shared-space"
    home = workdir / "home"
    shared.mkdir()
    home.mkdir()
    env = dict(os.environ)
    env.pop("DPDISPATCHER_TEST", None)  # the original's docker-only tests stay off
    env.update(
        PYTHONPATH=str(workdir),
        PATH=f"{workdir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        CI_SHARED_SPACE=str(shared),
        DPDISPATCHER_HOME=str(home / ".dpdispatcher"),
        HOME=str(home),
    )
    report = workdir / "junit.xml"
    cmd = [
        str(python),
        "-m",
        "pytest",
        "tests",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--rootdir",
        str(workdir),
        f"--junitxml={report}",
        "--continue-on-collection-errors",
    ]
    cmd += extra_args or []
    subprocess.run(
        cmd,
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=1200,
        check=False,
    )
    return parse_junit(report)


@dataclass
class Verdict:
    """The outcome set against the two lists."""

    outcome: Outcome
    exempt: dict[str, str]
    known: dict[str, str]

    @property
    def unexpected(self) -> dict[str, str]:
        return {
            t: m
            for t, m in self.outcome.failed.items()
            if t not in self.exempt and t not in self.known
        }

    @property
    def stale(self) -> list[str]:
        """Listed as failing but passed."""
        return [t for t in self.outcome.passed if t in self.known or t in self.exempt]

    def summary(self) -> str:
        failed = self.outcome.failed
        exempt = [t for t in failed if t in self.exempt]
        known = [t for t in failed if t in self.known and t not in self.exempt]
        lines = [
            f"original dpdispatcher {VERSION} suite against this package: "
            f"passed {len(self.outcome.passed)} / exempt {len(exempt)} / "
            f"known failures {len(known)} / failed {len(self.unexpected)} / "
            f"skipped by the original's own guards {len(self.outcome.skipped)}"
        ]
        lines += [f"FAILED {t}: {m}" for t, m in sorted(self.unexpected.items())]
        lines += [f"KNOWN  {t}: {self.known[t]}" for t in sorted(known)]
        lines += [f"STALE  {t}: listed as failing but passed" for t in self.stale]
        return "\n".join(lines)


#: who is fixing the failures of each test module (see the known-failures file)
OWNERS = {
    "hdfs": "newbk (HDFSContext, utils.hdfs_cli)",
    "distributed_shell": "newbk (DistributedShell)",
    "fugaku": "newbk/sched (Fugaku)",
    "JH_UniScheduler": "sched (JH_UniScheduler)",
    "cloud": "cloud (Bohrium/OpenAPI)",
    "dp_cloud_server": "cloud (Bohrium/OpenAPI)",
    "dpcloudserver": "cloud (dpcloudserver client)",
    "bohrium": "cloud (Bohrium/OpenAPI)",
    "continue_after_failed_job": "life (continue_on_failure)",
    "clean_strategy": "life (clean strategies)",
    "download_error_info": "life (error file of failed jobs)",
    "previous_submission_resume": "life (previous_submission_hash)",
    "retry": "life (re-upload on retry)",
    "submission_error_reporting": "life (failure report)",
    "class_submission": "life (Submission binding/serialization)",
    "class_job": "compat (1.x state files)",
    "argcheck": "compat/life (Machine.serialize keys and raw roots)",
    "ssh": "ssh internals",
    "scheduler_status": "sched (status parsing)",
    "script_environment": "sched (script rendering)",
    "slurm": "sched (Slurm scripts)",
    "lsf": "sched (LSF scripts)",
    "optional_scheduler_directives": "sched (headers)",
    "task_scheduler_names": "sched (job names)",
    "local_context": "life (LocalContext upload/download)",
    "archive": "unassigned (1.1.0 module dpdispatcher.utils.archive)",
    "file_manager": "unassigned (1.1.0 module dpdispatcher.file_manager)",
    "hidden_job_scripts": "cloud (openapi_context.zip_file_list)",
    "group_size": "deliberate difference (identical tasks refused)",
    "class_machine_dispatch": "mixed (see message)",
}


def owner_of(tid: str) -> str:
    """The owner label of a test id, from its module name."""
    module = tid.split("::")[0].removeprefix("tests/test_").removesuffix(".py")
    for key, owner in OWNERS.items():
        if key in module:
            return owner
    return "cfg"


def write_known_failures(verdict: Verdict, path: Path = KNOWN_FILE) -> None:
    """Rewrite the known-failures file with the failures outside the exemption list."""
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    blocked = (
        "newbk: tests/context.py imports utils.hdfs_cli, contexts.hdfs_context and "
        "machines.distributed_shell"
    )
    rows = sorted(
        (blocked if m == "collection failure" and owner_of(t) == "cfg" else owner_of(t), t, m)
        for t, m in verdict.outcome.failed.items()
        if t not in verdict.exempt
    )
    lines = header + [f"{t} | {owner}: {m.replace('|', '/')[:160]}" for owner, t, m in rows]
    path.write_text("\n".join(lines) + "\n")


def evaluate(
    workdir: Path, extra_args: list[str] | None = None, package: Path = REPO / "dpdispatcher"
) -> Verdict:
    """Fetch, prepare, run, and compare with the lists."""
    prepare(workdir, fetch_sdist(), package)
    outcome = run_suite(workdir, extra_args)
    return Verdict(outcome, read_list(EXEMPT_FILE), read_list(KNOWN_FILE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="run in this (new) directory and keep it")
    parser.add_argument("-k", dest="expr", help="pytest -k expression")
    parser.add_argument(
        "--package",
        type=Path,
        default=REPO / "dpdispatcher",
        help="the dpdispatcher package directory to test (default: this one)",
    )
    parser.add_argument("--list", action="store_true", help="print every failure's message")
    parser.add_argument(
        "--write-known", action="store_true", help="rewrite the known-failures file from this run"
    )
    args = parser.parse_args(argv)
    extra = ["-k", args.expr] if args.expr else []
    if args.keep:
        workdir = Path(args.keep).resolve()
        workdir.mkdir(parents=True)
        verdict = evaluate(workdir, extra, args.package.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="dpdisp-orig-suite-") as tmp:
            verdict = evaluate(Path(tmp), extra, args.package.resolve())
    print(verdict.summary())
    if args.write_known:
        write_known_failures(verdict)
    if args.list:
        for tid, msg in sorted(verdict.outcome.failed.items()):
            print(f"ALL    {tid}: {msg}")
    return 1 if verdict.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
