"""Jobs of the cloud emulator: really run ``cmd`` on the uploaded archive.

Each job gets a thread that takes the archive from the emulator's own object
store, unpacks it in a scratch directory, runs ``bash -c <cmd>`` there as a
separate process (its own session, so a kill takes the whole tree), and moves the
status 0 (waiting) → 1 (running) → 2 (finished) or -1 (failed, ``exitCode`` set).
The ``outFiles`` and ``logFiles`` patterns are then zipped into an object whose
(pre-signed looking) URL becomes ``resultUrl``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import stat
import subprocess
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .state import HostileKind, State

WAITING, RUNNING, FINISHED, FAILED = 0, 1, 2, -1


@dataclass
class Job:
    job_id: int
    group_id: int
    project_id: Any
    oss_key: str
    cmd: str
    out_files: list[str]
    log_files: list[str]
    body: dict[str, Any]
    workdir: Path
    status: int = WAITING
    exit_code: int | None = None
    result_url: str = ""
    killed: bool = False
    process: subprocess.Popen[bytes] | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def log_path(self) -> Path:
        return self.workdir.parent / f"job_{self.job_id}.log"

    def log_files_info(self, base_url: str) -> list[dict[str, Any]]:
        """``logFiles`` of the log call: the job's ``logFiles`` that exist, then its
        console log (``STDOUTERR``), each with a URL serving its text."""
        out: list[dict[str, Any]] = []
        for pattern in self.log_files:
            if pattern.strip() and not pattern.startswith("/") and self.workdir.is_dir():
                for match in sorted(self.workdir.glob(pattern)):
                    if match.is_file():
                        rel = match.relative_to(self.workdir).as_posix()
                        url = f"{base_url}/logs/{self.job_id}/{rel}"
                        out.append({"name": rel, "url": url, "size": match.stat().st_size})
        if self.log_path.exists():
            url = f"{base_url}/logs/{self.job_id}"
            out.append({"name": "STDOUTERR", "url": url, "size": self.log_path.stat().st_size})
        return out

    def log_file_path(self, name: str) -> Path | None:
        """The file a log URL names (``""``: the console log); None outside the job."""
        if not name:
            return self.log_path
        path = (self.workdir / name).resolve()
        inside = self.workdir.resolve() in path.parents
        return path if inside and any(path.match(p) for p in self.log_files) else None

    def detail(self, base_url: str) -> dict[str, Any]:
        """The ``data`` of ``GET /brm/v1/job/{id}`` (field names of bohrium-sdk's detail)."""
        return {
            "id": self.job_id,
            "jobGroupId": self.group_id,
            "projectId": self.project_id,
            "jobName": self.body.get("jobName", f"job-{self.job_id}"),
            "status": self.status,
            "exitCode": self.exit_code,
            "resultUrl": self.result_url,
            "inputData": json.dumps(self.body),
            "cmd": self.cmd,
            "errorInfo": "" if self.status != FAILED else f"exit code {self.exit_code}",
            "createTime": _iso(self.created),
            "updateTime": _iso(self.updated),
            "spendTime": round(self.updated - self.created, 3),
            "jobFiles": {"logFiles": self.log_files_info(base_url)},
        }


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


class JobRunner:
    """Starts and kills job processes; publishes results to the object store."""

    def __init__(
        self,
        state: State,
        result_url: Callable[[str], str],
        queue_delay: float = 0.05,
    ) -> None:
        self.state = state
        self.result_url = result_url
        self.queue_delay = queue_delay
        self.threads: list[threading.Thread] = []

    def start(self, job: Job) -> None:
        thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        thread.name = f"cloud-emulator-job-{job.job_id}"
        self.threads.append(thread)
        thread.start()

    def _set(self, job: Job, **changes: Any) -> None:
        with self.state.lock:
            for name, value in changes.items():
                setattr(job, name, value)
            job.updated = time.time()

    def _run(self, job: Job) -> None:
        time.sleep(self.queue_delay)
        obj = self.state.get_object(self.state.bucket, job.oss_key)
        with self.state.lock:
            if job.killed:
                return
            if obj is None:
                job.exit_code, job.status = 1, FAILED
                return
        job.workdir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(obj.data)) as archive:
            archive.extractall(job.workdir)
        with open(job.log_path, "wb") as log, self.state.lock:
            if job.killed:
                return
            job.process = subprocess.Popen(
                ["bash", "-c", job.cmd],
                cwd=job.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            job.status, job.updated = RUNNING, time.time()
        code = job.process.wait()
        code = 128 - code if code < 0 else code  # killed by a signal: shell convention
        with self.state.lock:
            forced = self.state.faults.forced_exit
            code = forced.get(job.job_id, forced.get(None, code))
            hostile = self.state.faults.hostile
            kind = hostile.get(job.job_id, hostile.get(None))
        key = f"results/{job.job_id}/result.zip"
        self.state.put_object(self.state.bucket, key, self._result_zip(job, kind))
        self._set(
            job,
            exit_code=code,
            result_url=self.result_url(key),
            status=FINISHED if code == 0 and not job.killed else FAILED,
        )

    def kill(self, job: Job) -> None:
        with self.state.lock:
            job.killed = True
            if job.status == WAITING:
                job.status, job.exit_code, job.updated = FAILED, 137, time.time()
            process = job.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _result_zip(self, job: Job, hostile: HostileKind | None) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            added: set[str] = set()  # a file matched by two patterns is zipped once
            for pattern in [*job.out_files, *job.log_files]:
                if pattern.strip() and not pattern.startswith("/"):
                    for match in sorted(job.workdir.glob(pattern)):
                        rel = match.relative_to(job.workdir).as_posix()
                        _add(archive, job.workdir, rel, added)
            if hostile is not None:
                _add_hostile(archive, hostile)
        return buffer.getvalue()

    def join(self, timeout: float = 5.0) -> None:
        for thread in self.threads:
            thread.join(timeout)


def _add(archive: zipfile.ZipFile, root: Path, rel: str, added: set[str]) -> None:
    path = root / rel
    if path.is_dir():
        for dirpath, _dirs, files in os.walk(path):
            for name in files:
                full = Path(dirpath) / name
                _add(archive, root, full.relative_to(root).as_posix(), added)
    elif path.exists() and rel not in added:
        archive.write(path, rel)
        added.add(rel)


def _add_hostile(archive: zipfile.ZipFile, kind: HostileKind) -> None:
    """Entries a compromised or buggy service could send."""
    if kind == "dotdot":
        archive.writestr("../evil", "escaped via ..\n")
    elif kind == "absolute":
        info = zipfile.ZipInfo("placeholder")
        info.filename = "/tmp/evil-absolute"  # ZipInfo() would strip the leading '/'
        archive.writestr(info, "escaped via an absolute path\n")
    else:
        info = zipfile.ZipInfo("etc_link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc")
