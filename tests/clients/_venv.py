"""Throwaway virtual environments for the real-client tests, built from PyPI at test time.

A client (DP-GEN, dflow) is installed ``--no-deps`` into its own virtual environment
together with the few light packages its import needs and the runtime dependencies of
*this* package (read from ``pyproject.toml``). This package itself is **not** installed
there: :meth:`ClientVenv.env` puts the checkout under test first on ``PYTHONPATH``, so
the client imports the tree being tested, never a copy.

Environments are cached under ``$DPDISP_TEST_CACHE`` (default ``~/.cache/dpdisp-tests``)
in a directory named after a hash of the Python version and the requirement lists, so a
changed pin builds a fresh one. A build runs under a file lock and is marked complete
only at the end; a half-built environment (killed build) is removed and rebuilt.
Nothing is vendored and nothing is skipped: without network access the build fails.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - tomli is a dependency below 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("DPDISP_TEST_CACHE", Path.home() / ".cache" / "dpdisp-tests"))
_MARKER = ".dpdisp-complete"


def runtime_requirements() -> list[str]:
    """This package's ``[project] dependencies``, as the client venvs need them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


@dataclass(frozen=True)
class ClientVenv:
    """A built virtual environment holding one client."""

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


def _pip(python: Path, *args: str) -> None:
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def build(name: str, no_deps: Sequence[str], with_deps: Sequence[str]) -> ClientVenv:
    """The cached venv ``name`` with ``no_deps`` installed ``--no-deps`` and ``with_deps``.

    This package's runtime dependencies are added to ``with_deps``.
    """
    deps = [*with_deps, *runtime_requirements()]
    key_src = "\n".join([sys.version, name, *no_deps, "--", *deps])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    root = CACHE / "venvs" / f"{name}-{key}"
    with _locked(CACHE / "venvs" / f".{name}-{key}.lock"):
        if not (root / _MARKER).is_file():
            shutil.rmtree(root, ignore_errors=True)
            venv.EnvBuilder(clear=True, with_pip=True).create(root)
            made = ClientVenv(root)
            if no_deps:
                _pip(made.python, "--no-deps", *no_deps)
            _pip(made.python, *deps)
            (root / _MARKER).write_text(key_src)
    return ClientVenv(root)


def sdist(requirement: str, subdir: str) -> Path:
    """Unpacked source distribution of ``requirement`` (``name==version``), cached.

    Returns the top directory of the unpacked sdist.
    """
    name, _, version = requirement.partition("==")
    target = CACHE / "sdists" / subdir
    with _locked(CACHE / "sdists" / f".{subdir}.lock"):
        top = target / f"{name}-{version}"
        if not (target / _MARKER).is_file():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--no-binary", ":all:", requirement, "-d", str(target)]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                  check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
            archive = next(target.glob(f"{name}-{version}.tar.gz"))
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12
                    tar.extractall(target, filter="data")
                else:  # pragma: no cover - a PyPI sdist of a pinned release
                    tar.extractall(target)
            (target / _MARKER).write_text(requirement)
        return top
