"""Job: a group of tasks submitted together as one scheduler job."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _json_str
from typing import TYPE_CHECKING, Any

from dpdispatcher import _tracked
from dpdispatcher._script import names
from dpdispatcher._script.quoting import scheduler_job_name
from dpdispatcher.dlog import dlog
from dpdispatcher.errors import ConfigurationError, JobFailedError
from dpdispatcher.resources import Resources
from dpdispatcher.task import Task
from dpdispatcher.utils.job_status import JobStatus, state_text

if TYPE_CHECKING:
    from dpdispatcher.machine import Machine


class Job:
    """Tasks sharing one job script, one scheduler job id and one copy of the resources.

    Jobs are made by :meth:`Submission.generate_jobs`; users rarely build them.
    """

    def __init__(
        self,
        job_task_list: list[Task],
        *,
        resources: Resources,
        machine: Machine | None = None,
        copy_resources: bool = False,
    ) -> None:
        # (tracked epoch, JSON of tasks and resources) and (runtime key, whole JSON)
        self._body_cache: tuple[int, str] | None = None
        self._state_cache: tuple[tuple[Any, ...], str, int, str] | None = None
        #: the runtime key of this job in the last state file written (see written_json)
        self._written: tuple[Any, ...] | None = None
        self._set_tasks(job_task_list)  # a new job: nothing cached anywhere is stale
        self._resources: Resources | None = None if copy_resources else resources
        # (resources, their JSON) to copy from when first asked for: see with_copy_of()
        self._copy_from: tuple[Resources, str] | None = (
            (resources, resources.to_json()) if copy_resources else None
        )
        self._init_runtime(machine)

    def _init_runtime(self, machine: Machine | None) -> None:
        self.machine = machine
        self.job_state: JobStatus = JobStatus.unsubmitted
        self.job_id = ""
        self.fail_count = 0
        #: why the job gave up (set when it is marked failed; not persisted)
        self.failure_reason: str | None = None
        self.job_hash = self.get_hash()
        self.script_file_name = names.script_file(self.job_hash)
        # runtime bookkeeping, not persisted
        self.not_before = 0.0
        self.unknown_since: float | None = None
        #: the name/comment this submission attempt carries in the scheduler (set by
        #: the submission from its hash, this job's hash and the attempt: fail_count)
        self.submit_tag = ""

    @property
    def job_task_list(self) -> list[Task]:
        """The tasks of this job (a tracked list: changing it makes cached JSON stale)."""
        return self._tasks

    @job_task_list.setter
    def job_task_list(self, tasks: list[Task]) -> None:
        self._set_tasks(tasks)
        _tracked.changed()

    def _set_tasks(self, tasks: list[Task]) -> None:
        tracked = _tracked.TrackedList(tasks)
        tracked._owner = self
        self._tasks = tracked

    @classmethod
    def with_copy_of(
        cls, job_task_list: list[Task], resources: Resources, machine: Machine | None = None
    ) -> Job:
        """A job owning a copy of ``resources`` as they are now.

        The copy is made when the job's resources are first asked for (rendering its
        script, or a user changing them); until then the job's JSON and hash use the text
        of ``resources`` taken now, so a submission of many jobs copies nothing to hash and
        persist them.
        """
        return cls(job_task_list, resources=resources, machine=machine, copy_resources=True)

    @property
    def resources(self) -> Resources:
        """This job's own copy of the resources."""
        res = self._resources
        if res is None:
            res = self._resources = self._take_copy()
        return res

    @resources.setter
    def resources(self, resources: Resources) -> None:
        self._resources, self._copy_from = resources, None
        _tracked.changed()

    def _take_copy(self) -> Resources:
        assert self._copy_from is not None
        source, text = self._copy_from
        if source.to_json() == text:
            copy = source.copy()
        else:  # the shared resources changed since: rebuild this job's from its snapshot
            copy = Resources.load_from_dict(json.loads(text))
        self._copy_from = None
        return copy

    def _resources_json(self) -> str:
        if self._resources is None:
            assert self._copy_from is not None
            return self._copy_from[1]
        return self._resources.to_json()

    def _touch(self) -> None:
        """The task list changed in place."""
        _tracked.changed()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # copies and unpickled jobs track their task list again
        self.__dict__.update(state)
        self._set_tasks(state["_tasks"])
        self._body_cache = self._state_cache = self._written = None

    def __repr__(self) -> str:
        return (
            f"Job(hash={self.job_hash[:10]}, id={self.job_id!r}, "
            f"state={self.job_state.name}, tasks={len(self.job_task_list)})"
        )

    def __eq__(self, other: object) -> bool:
        """Jobs are equal when their tasks and resources are (runtime fields aside), as in 1.1.0."""
        if not isinstance(other, Job):
            return NotImplemented
        return self is other or self._static_body() == other._static_body()

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by content

    def single_task_name(self) -> str:
        """The ``task_name`` of a job holding exactly one task, else ``""`` (a job name)."""
        return single_task_name(self)

    def get_scheduler_name(
        self, max_length: int, *, require_alpha_prefix: bool = False
    ) -> str | None:
        """The scheduler job name of a job holding exactly one named task, else None.

        Parameters
        ----------
        max_length : int
            The scheduler's limit on a job name (15 for PBS and Torque, 128 otherwise).
        require_alpha_prefix : bool, optional
            Whether the name must start with a letter (PBS, Torque, Grid Engine).

        Returns
        -------
        str or None
            The name as the headers write it (see ``scheduler_job_name``).
        """
        tasks = self.job_task_list
        if len(tasks) != 1 or tasks[0].task_name is None:
            return None
        return scheduler_job_name(
            tasks[0].task_name, self.job_hash, max_length, letter_first=require_alpha_prefix
        )

    def _static_body(self) -> str:
        """The JSON of the tasks and resources without the closing brace, built from their
        cached JSON and kept until any tracked object changes."""
        epoch = _tracked.EPOCH[0]
        cache = self._body_cache
        if cache is not None and cache[0] == epoch:
            return cache[1]
        state = self._state_cache
        if state is not None and state[0][5] == epoch:  # the body is inside the state text
            start = len(_json_str(state[0][4])) + 3  # after '{"<job hash>": '
            return state[1][start : state[2] - len(_STATE_KEY)]
        tasks = ", ".join([task.to_json() for task in self._tasks])
        body = f'{{"job_task_list": [{tasks}], "resources": {self._resources_json()}'
        self._body_cache = (epoch, body)
        return body

    def get_hash(self) -> str:
        """sha1 of the JSON of the tasks and resources."""
        sha = hashlib.sha1(self._static_body().encode("utf-8"))
        sha.update(b"}")
        return sha.hexdigest()

    def serialize(self, if_static: bool = False) -> dict[str, Any]:
        """``{job_hash: {...}}``; runtime fields (state, id, fail count) unless ``if_static``."""
        body: dict[str, Any] = {
            "job_task_list": [t.serialize() for t in self.job_task_list],
            "resources": self.resources.serialize(),
        }
        if not if_static:
            body.update(
                job_state=int(self.job_state),
                job_id=self.job_id,
                fail_count=self.fail_count,
                failure_reason=self.failure_reason,
                task_states=[int(t.task_state) for t in self.job_task_list],
            )
        return {self.job_hash: body}

    def to_json(self, if_static: bool = False) -> str:
        """``json.dumps(self.serialize(if_static))``, assembled from the cached JSON of the
        tasks and resources (nothing is serialised again)."""
        return "".join(self.json_pieces(if_static))

    def json_pieces(self, if_static: bool = False) -> tuple[str, str, str]:
        """:meth:`to_json` in three pieces: the key, the tasks and resources (cached until
        any tracked object changes) and the runtime fields."""
        key = f"{{{_json_str(self.job_hash)}: "
        if if_static:
            return key, self._static_body(), "}}"
        return key, self._static_body(), self._runtime_json()

    def state_json(self) -> str:
        """:meth:`to_json` as the state file holds it, kept until this job's runtime fields
        (state, id, fail count, failure reason), a task's state or a tracked object change.

        Checking it costs a few attribute reads, so a state write after a poll serialises
        only the jobs that changed; a job whose state alone changed (the usual change in a
        poll) is re-assembled from the two cached pieces around its state.
        """
        # int(state): a key of strings and numbers only, which the garbage collector stops
        # tracking (a poll changing thousands of jobs would otherwise feed it thousands)
        key = (
            int(self.job_state),
            self.job_id,
            self.fail_count,
            self.failure_reason,
            self.job_hash,
            _tracked.EPOCH[0],
        )
        cache = self._state_cache
        if cache is not None:
            if cache[0] == key:
                return cache[1]
            if cache[0][1:] == key[1:]:  # only the state changed: keep what surrounds it
                text, head_len, rest = cache[1], cache[2], cache[3]
                text = f"{text[:head_len]}{state_text(key[0])}{rest}"
                self._state_cache = (key, text, head_len, rest)
                return text
        head = f"{{{_json_str(key[4])}: {self._static_body()}{_STATE_KEY}"
        rest = self._rest_json()
        text = f"{head}{state_text(key[0])}{rest}"
        # the text, with where its state starts and what follows it (short); the body of
        # tasks and resources is inside it, so its own cache is dropped: a million-task
        # submission keeps each job's JSON once
        self._state_cache = (key, text, len(head), rest)
        self._body_cache = None
        return text

    def written_json(self) -> str:
        """:meth:`state_json` for a full state write; :meth:`changed_only_in_state` then
        compares with what it held."""
        text = self.state_json()
        assert self._state_cache is not None
        self._written = self._state_cache[0]
        return text

    def changed_only_in_state(self) -> bool:
        """Whether this job differs from its record in the last full state write in
        ``job_state`` alone (same job id, fail count, failure reason, task states and
        tasks and resources): such a change may go to the journal instead."""
        return changed_only_in_state([self])

    def _runtime_json(self) -> str:
        """The runtime fields closing the job's JSON (``, "job_state": ...}}``)."""
        return f', "job_state": {state_text(self.job_state)}{self._rest_json()}'

    def _rest_json(self) -> str:
        """The runtime fields after the state (``, "job_id": ...}}``)."""
        job_id = self.job_id
        job_id_json = _json_str(job_id) if type(job_id) is str else json.dumps(job_id)
        reason = self.failure_reason
        reason_json = "null" if reason is None else json.dumps(reason)
        tasks = self._tasks
        if len(tasks) == 1:
            states = state_text(tasks[0]._task_state)
        else:
            states = ", ".join([state_text(t._task_state) for t in tasks])
        fail_count = self.fail_count
        return (
            f', "job_id": {job_id_json}, '
            f'"fail_count": {fail_count if type(fail_count) is int else int(fail_count)}, '
            f'"failure_reason": {reason_json}, "task_states": [{states}]}}}}'
        )

    @classmethod
    def deserialize(cls, job_dict: dict[str, Any], machine: Machine | None = None) -> Job:
        """Inverse of :meth:`serialize`.

        The job's hash is computed from its content. A recorded hash that differs (state
        files written by 1.x releases hash differently) is logged as a warning and the
        computed one is used, as 1.1.0 does; resuming a run still requires the state file
        to match the submission exactly.
        """
        if not isinstance(job_dict, dict) or len(job_dict) != 1:
            raise ConfigurationError("job: expected a dict with exactly one job hash key")
        ((job_hash, body),) = job_dict.items()
        job = cls(
            [Task.deserialize(t) for t in body["job_task_list"]],
            resources=Resources.deserialize(body["resources"]),
            machine=machine,
        )
        if job.job_hash != job_hash:
            dlog.warning(
                "job %s: its recorded hash does not match its content; using %s",
                job_hash,
                job.job_hash,
            )
        state = body.get("job_state")  # 1.x state files record null before the first check
        job.job_state = JobStatus.unsubmitted if state is None else JobStatus(state)
        job.job_id = str(body.get("job_id", "") or "")
        job.fail_count = int(body.get("fail_count", 0))
        reason = body.get("failure_reason")
        job.failure_reason = None if reason is None else str(reason)
        task_states = body.get("task_states")
        if isinstance(task_states, list) and len(task_states) == len(job.job_task_list):
            for task, value in zip(job.job_task_list, task_states):
                task.task_state = JobStatus(value)
        return job

    def adopt(self, other: Job) -> None:
        """Take over the runtime state of a recovered copy of this job."""
        self.job_state, self.job_id, self.fail_count = (
            other.job_state,
            other.job_id,
            other.fail_count,
        )

    def job_to_json(self) -> str:
        """The serialized job as JSON text."""
        return self.to_json()

    def register_job_id(self, job_id: str) -> None:
        """Record the scheduler's id of this job."""
        self.job_id = job_id

    def _machine(self) -> Machine:
        if self.machine is None:
            raise ConfigurationError(f"job {self.job_hash} is not bound to a machine")
        return self.machine

    def get_job_state(self) -> JobStatus:
        """Ask the machine for this job's state (does not submit anything)."""
        self.job_state = self._machine().check_status(self)
        return self.job_state

    def submit_job(self) -> None:
        """Write the job's files and submit it."""
        self.register_job_id(str(self._machine().do_submit(self)))
        self.job_state = JobStatus.waiting

    def exhausted(self, retry_count: int) -> bool:
        """The give-up rule, in one place: terminated more than ``retry_count`` times."""
        return self.job_state == JobStatus.terminated and self.fail_count > retry_count

    def handle_unexpected_job_state(self, *, continue_on_failure: bool = False) -> None:
        """Submit an unsubmitted job, resubmit a terminated one within the retry budget.

        A job past its budget raises :class:`JobFailedError`, or with
        ``continue_on_failure`` is marked failed (:meth:`mark_failed`). A job already
        failed raises unless ``continue_on_failure``.
        """
        if self.job_state == JobStatus.terminated:
            self.fail_count += 1
            if self.exhausted(self._machine().retry_count):
                reason = (
                    f"job {self.job_hash} {self.job_id} failed {self.fail_count} times "
                    f"(retry_count={self._machine().retry_count}).\n"
                    f"Possible remote error message: {self.get_last_error_message() or ''}"
                )
                if not continue_on_failure:
                    raise JobFailedError(reason)
                self.mark_failed(reason)
                return
            self.submit_job()
        elif self.job_state == JobStatus.failed and not continue_on_failure:
            raise JobFailedError(
                f"job {self.job_hash} {self.job_id} is in failed state: "
                f"{self.failure_reason or 'it exhausted its retries in an earlier run'}"
            )
        elif self.job_state == JobStatus.unsubmitted:
            self.submit_job()

    def mark_failed(self, reason: str) -> None:
        """Give the job up: state ``failed``, with ``reason``; its tasks are failed too,
        except those that finished (their finish tags stay)."""
        self.job_state = JobStatus.failed
        self.failure_reason = reason
        for task in self.job_task_list:
            if task.task_state != JobStatus.finished:
                task.task_state = JobStatus.failed

    _mark_failed = mark_failed  # the name in 1.1.0

    def get_last_error_message(self) -> str | None:
        """The tail of the failing task's error log the job left, if any."""
        return self._machine().get_job_error(self)


#: what comes between a job's resources and its state in the state file
_STATE_KEY = ', "job_state": '


def single_task_name(job: Any) -> str:
    """The ``task_name`` of a job holding exactly one task, else ``""``.

    ``job`` may be any object with ``resources`` only: 1.1.0 callers render a header
    from ``SimpleNamespace(resources=...)``, which names no task.
    """
    tasks = getattr(job, "job_task_list", None)
    if not tasks or len(tasks) != 1:
        return ""
    return str(getattr(tasks[0], "task_name", "") or "")


def changed_only_in_state(jobs: Iterable[Job]) -> bool:
    """:meth:`Job.changed_only_in_state` of every job (one loop for a poll's thousands)."""
    epoch = _tracked.EPOCH[0]
    for job in jobs:
        written = job._written  # (job state, job id, fail count, reason, hash, epoch)
        if (
            written is None
            or written[1] != job.job_id
            or written[2] != job.fail_count
            or written[3] != job.failure_reason
            or written[4] != job.job_hash
            or written[5] != epoch
        ):
            return False
    return True
