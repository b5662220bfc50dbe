"""Throwaway virtual environments built from PyPI at test time: the one home for them.

Every test (and benchmark) that needs a package it cannot import from this checkout --
the original dpdispatcher (1.1.0, 1.0.3), DP-GEN, dflow, dpgui, bohrium-sdk -- gets it
here, installed with the ordinary ``pip`` from PyPI. Nothing is vendored.

Everything is cached under ``$DPDISP_TEST_CACHE`` (default ``~/.cache/dpdisp-tests``) in a
directory named after a hash of the Python version and the requirement lists, so a
changed pin builds a fresh one and every test reuses the same build (the original 1.1.0
is installed once, into :func:`original`; once more with its ``bohrium`` extra for the
cloud tests). A build runs under a file lock (concurrent
pytest processes wait for it) and is marked complete only at the end; a half-built
directory (killed build) is removed and rebuilt. Without network access the build
raises, so the test fails: nothing is skipped.

Client environments (:func:`build` with ``this_package_deps=True``) hold the runtime
dependencies of *this* package but not the package itself: :meth:`Venv.env` puts the
checkout under test first on ``PYTHONPATH``, so the client imports the tree being
tested, never a copy.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import venv
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - tomli is a dependency below 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DPDISP_TEST_CACHE", Path.home() / ".cache" / "dpdisp-tests"))
_MARKER = ".dpdisp-complete"


def runtime_requirements() -> list[str]:
    """This package's ``[project] dependencies``, as the client venvs need them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


@dataclass(frozen=True)
class Venv:
    """A built virtual environment."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bindir(self) -> Path:
        return self.root / "bin"

    def env(self, *path_prefix: Path, **extra: str) -> dict[str, str]:
        """Environment for a client process: this checkout importable, venv first on PATH.

        ``python3`` on ``PATH`` is the venv's (dflow's debug mode runs step scripts with
        ``python3``); ``path_prefix`` directories (stand-in programs) come before it.
        """
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
        env["PYTHONPATH"] = str(REPO)
        env["VIRTUAL_ENV"] = str(self.root)
        env["PATH"] = os.pathsep.join(
            [*(str(p) for p in path_prefix), str(self.bindir), env.get("PATH", "")]
        )
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(kind: str, name: str, key_parts: Sequence[str], make: Callable[[Path], None]) -> Path:
    """``CACHE/kind/name-<key>``, made by ``make(dir)`` once under a lock, then reused.

    The key hashes the Python version and ``key_parts``; the directory counts as built
    only once ``make`` returned (a completion marker is written last).
    """
    key_src = "\n".join([sys.version, name, *key_parts])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    root = CACHE / kind / f"{name}-{key}"
    with _locked(CACHE / kind / f".{name}-{key}.lock"):
        if not (root / _MARKER).is_file():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            make(root)
            (root / _MARKER).write_text(key_src)
    return root


def pip(python: Path | str, *args: str) -> None:
    """``python -m pip install -q *args``; raises with pip's output when it fails."""
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def build(
    name: str,
    no_deps: Sequence[str],
    with_deps: Sequence[str],
    *,
    this_package_deps: bool = True,
    system_site_packages: bool = False,
) -> Venv:
    """The cached venv ``name`` with ``no_deps`` installed ``--no-deps`` and ``with_deps``.

    With ``this_package_deps`` this package's runtime dependencies join ``with_deps``.
    """
    deps = [*with_deps, *(runtime_requirements() if this_package_deps else [])]
    parts = [*no_deps, "--", *deps, *(["--system-site-packages"] if system_site_packages else [])]

    def make(root: Path) -> None:
        venv.EnvBuilder(clear=True, with_pip=True,
                        system_site_packages=system_site_packages).create(root)  # fmt: skip
        if no_deps:
            pip(Venv(root).python, "--no-deps", *no_deps)
        pip(Venv(root).python, *deps)

    return Venv(cached("venvs", name, parts, make))


def original(version: str = "1.1.0", extra: str = "") -> Venv:
    """The original ``dpdispatcher==version`` (with its ``extra``, if any), alone in a venv.

    One environment per release and extra serves every test and benchmark that runs the
    original; it is only *run*. The cloud tests ask for the ``bohrium`` extra; the rest
    get the plain install a user gets from ``pip install dpdispatcher`` (with the extra
    present the original imports ``bohrium`` and ``oss2`` at start-up, which would skew
    the benchmarks' import times).
    """
    requirement = f"dpdispatcher[{extra}]=={version}" if extra else f"dpdispatcher=={version}"
    name = f"original-{version}" + (f"-{extra}" if extra else "")
    return build(name, [], [requirement], this_package_deps=False)


def pip_target(requirement: str, name: str) -> Path:
    """A directory holding ``requirement`` (``pip install --target``) for ``sys.path``."""
    return cached("targets", name, [requirement],
                  lambda root: pip(sys.executable, "--target", str(root), requirement))  # fmt: skip


def sdist_archive(requirement: str) -> Path:
    """The source distribution (``.tar.gz``) of ``requirement`` (``name==version``), cached."""
    name, _, version = requirement.partition("==")

    def download(root: Path) -> None:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--no-binary", ":all:", requirement, "-d", str(root)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")

    return next(cached("sdists", f"{name}-{version}", [requirement], download).glob("*.tar.gz"))


def sdist(requirement: str) -> Path:
    """The unpacked source distribution of ``requirement`` (its top directory), cached."""
    archive = sdist_archive(requirement)
    top_name = archive.name.removesuffix(".tar.gz")

    def unpack(root: Path) -> None:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12
                tar.extractall(root, filter="data")
            else:  # pragma: no cover - a PyPI sdist of a pinned release
                tar.extractall(root)

    return cached("unpacked", top_name, [requirement], unpack) / top_name
