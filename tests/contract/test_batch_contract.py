"""The contract every registered batch type keeps (``Machine.canonical_classes()``).

A new scheduler is one module plus, optionally, a fixture folder
``tests/fixtures/scheduler_output/<lower-case class name>/``; it is picked up here
without editing this file. Each batch type must be constructible on a LocalContext
(``cls(context=...)``) so that its pure hooks can be exercised offline.

Checks:
- scripts render for several resources, the shebang is on line 1, bash accepts them,
  rendering is pure;
- a queue name or a task name carrying a newline cannot inject a header line
  (refused with ConfigurationError, or neutralised);
- a hostile job id never reaches the status command as more than one shell word;
- recorded real outputs (``<tool>_<case>.{rc,stdout,stderr}``, optionally ``.expect``):
  every successful submit output yields a plain job id (a case named ``*_rc0`` is a
  refusal the tool reports with exit code 0, and must be refused with SchedulerError);
  every successful status output parses (a parser refusing real output fails), to the
  states an ``.expect`` file records from the source; a failed status command is a
  recognised transient error or an error report (never a guess);
- the ``resources.kwargs`` schema (``resources_subfields()``) round-trips through
  Resources and the dargs documentation.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dargs import Argument

import dpdispatcher  # noqa: F401  (registers the built-in batch types)
from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import quoting
from dpdispatcher.base_context import CommandResult
from dpdispatcher.contexts.local_context import LocalContext
from dpdispatcher.errors import (
    ConfigurationError,
    DPDispatcherError,
    SchedulerError,
    StatusFormatError,
)
from dpdispatcher.machine import NOT_REPORTED

FIXTURE_ROOT = Path(__file__).parent.parent / "fixtures" / "scheduler_output"
BATCH_TYPES = sorted(Machine.canonical_classes())
INJECTED = "#INJECTED --evil"

RESOURCES: dict[str, dict[str, Any]] = {
    "cpu": {},
    "gpu_queue": {"gpu_per_node": 1, "queue_name": "gpu", "para_deg": 2},
    "multi_node": {"number_node": 2, "cpu_per_node": 8, "custom_flags": ["# custom flag"]},
}


def make_machine(name: str, tmp_path: Path) -> Machine:
    cls = Machine.get_class(name)
    ctx = LocalContext(local_root=str(tmp_path), remote_root=str(tmp_path / "remote"))
    ctx.remote_root = str(tmp_path / "remote" / "SUBMISSION")
    try:
        return cls(context=ctx)
    except (ConfigurationError, TypeError) as err:
        pytest.fail(
            f"batch type {name} cannot be built on a LocalContext for the contract checks: {err}"
        )


def make_job(n_tasks: int = 2, task_name: str | None = None, **res: Any) -> Job:
    base = [
        res.pop(k, d)
        for k, d in (
            ("number_node", 1),
            ("cpu_per_node", 2),
            ("gpu_per_node", 0),
            ("queue_name", ""),
        )
    ]
    tasks = [Task(f"echo {i}", f"t{i}", task_name=task_name) for i in range(n_tasks)]
    return Job(tasks, resources=Resources(*base, n_tasks, **res))


# ------------------------------------------------------------------ rendering
@pytest.mark.parametrize("res_case", sorted(RESOURCES))
@pytest.mark.parametrize("name", BATCH_TYPES)
def test_renders_with_shebang_first_and_valid_bash(
    name: str, res_case: str, tmp_path: Path
) -> None:
    machine = make_machine(name, tmp_path)
    job = make_job(**RESOURCES[res_case])
    script = machine.gen_script(job)
    assert script.splitlines()[0].startswith("#!"), f"{name}: line 1 is not a shebang"
    files = machine.job_files(job)
    assert files, f"{name}: job_files() is empty"
    for fname, text in files.items():
        check = subprocess.run(
            ["bash", "-n"], input=text, text=True, capture_output=True, check=False
        )
        assert check.returncode == 0, f"{name}: {fname} is not valid bash: {check.stderr}"
    assert machine.gen_script(job) == script and machine.job_files(job) == files
    assert job.resources.serialize() == make_job(**RESOURCES[res_case]).resources.serialize()


def _header_lines(machine: Machine, job: Job) -> list[str] | None:
    """The header lines, or None when the value was refused."""
    try:
        return machine.gen_script_header(job).splitlines()
    except ConfigurationError:
        return None


@pytest.mark.parametrize("name", BATCH_TYPES)
def test_queue_name_cannot_inject_a_header_line(name: str, tmp_path: Path) -> None:
    machine = make_machine(name, tmp_path)
    job = make_job(queue_name=f"normal\n{INJECTED}")
    lines = _header_lines(machine, job)
    if lines is None:
        return
    assert INJECTED not in lines, f"{name}: a queue name injected a header line"
    assert INJECTED not in machine.gen_script(job).splitlines()


@pytest.mark.parametrize("name", BATCH_TYPES)
def test_task_name_cannot_inject_a_header_line(name: str, tmp_path: Path) -> None:
    machine = make_machine(name, tmp_path)
    job = make_job(n_tasks=1, task_name=f"job\n{INJECTED}")
    lines = _header_lines(machine, job)
    if lines is not None:
        assert INJECTED not in lines, f"{name}: a task name injected a header line"


@pytest.mark.parametrize("name", BATCH_TYPES)
def test_hostile_job_id_stays_one_word_or_is_refused(name: str, tmp_path: Path) -> None:
    machine = make_machine(name, tmp_path)
    hostile = "1; touch PWNED"
    job = make_job()
    job.job_id = hostile
    try:
        cmd = machine.status_command([job])
    except DPDispatcherError:
        return
    assert any(hostile in word for word in shlex.split(cmd)), (
        f"{name}: job id {hostile!r} is not quoted in {cmd!r}"
    )


# ------------------------------------------------------------------ recorded outputs
def _fixtures() -> list[tuple[str, str]]:
    """Every ``<case>.rc`` directly in a batch type's folder (``from_fake/`` is left out:
    outputs of our own fakes are no evidence of the real tools)."""
    pairs = []
    for name in BATCH_TYPES:
        folder = FIXTURE_ROOT / name.lower()
        pairs += [(name, rc.stem) for rc in sorted(folder.glob("*.rc"))]
    return pairs


def _load(name: str, case: str) -> CommandResult:
    folder = FIXTURE_ROOT / name.lower()

    def text(ext: str) -> str:
        path = folder / f"{case}.{ext}"
        return path.read_text() if path.exists() else ""

    return CommandResult(
        int(text("rc").strip() or 0), text("stdout"), text("stderr"), text("cmd").strip()
    )


def _expectation(name: str, case: str) -> dict[str, Any] | None:
    """``{"format": ..., "states": {job id: raw state | "unknown" | "gone"}}`` written by
    hand from the fixture's source, if any."""
    path = FIXTURE_ROOT / name.lower() / f"{case}.expect"
    return json.loads(path.read_text()) if path.exists() else None


def _tool(cmd: str) -> str:
    return Path(shlex.split(cmd)[0]).name


def _ids(result: CommandResult) -> list[str]:
    ids = re.findall(r"\b\d+\b", result.cmd or result.stdout)
    return list(dict.fromkeys(ids))[:50] or ["1"]


def _parse(machine: Machine, result: CommandResult, jobs: list[Job]) -> dict[str, str]:
    """Parse as the machine does in production: the next format when one is refused."""
    while True:
        try:
            return machine.parse_status_output(result, jobs)
        except StatusFormatError:
            if not machine._fall_back(StatusFormatError("contract")):
                raise


@pytest.mark.parametrize(("name", "case"), _fixtures())
def test_recorded_output_parses(name: str, case: str, tmp_path: Path) -> None:
    """Real successful status output must parse (a refusal fails the test), to the states
    its source shows where an ``.expect`` file records them; failed commands are
    recognised as transient or reported as errors (the jobs then stay unknown)."""
    machine = make_machine(name, tmp_path)
    result = _load(name, case)
    tool = case.split("_", 1)[0]
    fresh = make_job()  # never submitted: the plain submit command
    probe = make_job()
    probe.job_id = "1"
    try:
        submit_tool = _tool(machine.submit_command(fresh, "script.sub"))
        status_tool = _tool(machine.status_command([probe]))
    except (DPDispatcherError, NotImplementedError):
        return  # no shell commands (an HTTP API): its fixtures are not command outputs
    if tool == submit_tool:
        if case.endswith("_rc0"):
            with pytest.raises(SchedulerError):
                machine.parse_submit_output(result.stdout)
        elif result.ok:
            found = machine.parse_submit_output(result.stdout)
            assert quoting.job_id(found) == found
        return
    if tool != status_tool:
        return  # another tool (kill, accounting ...): nothing to parse
    if not result.ok and machine.is_transient(result):
        return
    expect = _expectation(name, case)
    if expect is not None:
        machine._format_index = machine.status_formats.index(expect["format"])
    jobs = []
    for jid in list(expect["states"]) if expect else _ids(result):
        job = make_job(1, None, cpu_per_node=len(jobs) % 7 + 1, queue_name=jid)  # distinct
        job.job_id = jid
        jobs.append(job)
    try:
        raw = _parse(machine, result, jobs)
    except SchedulerError as err:
        if result.ok or expect is not None:
            pytest.fail(f"{name}/{case}: the parser rejected real output: {err}")
        return  # a failed command reported as an error: the jobs stay unknown
    unmapped = {code for code in raw.values() if code not in machine.state_map}
    assert unmapped <= {NOT_REPORTED}, f"{name}/{case}: unmapped states {unmapped}"
    if expect is not None:
        wanted = {
            jid: {"unknown": NOT_REPORTED}.get(state, state)
            for jid, state in expect["states"].items()
            if state != "gone"
        }
        assert raw == wanted, f"{name}/{case}: read {raw}, the source shows {wanted}"


def test_every_batch_type_with_status_commands_has_real_fixtures() -> None:
    """PBS, Torque, LSF, SGE and Slurm are judged on real outputs (not only fakes')."""
    for name in ("PBS", "Torque", "LSF", "SGE", "Slurm"):
        if name not in BATCH_TYPES:
            continue
        real = [case for n, case in _fixtures() if n == name]
        assert real, f"{name}: no real fixture in {FIXTURE_ROOT / name.lower()}"
        expected = list((FIXTURE_ROOT / name.lower()).glob("*.expect"))
        assert expected or name == "Slurm", f"{name}: no .expect file pins a parsed state"


# ------------------------------------------------------------------ schema
@pytest.mark.parametrize("name", BATCH_TYPES)
def test_resources_subfields_schema_round_trips(name: str) -> None:
    cls = Machine.get_class(name)
    # 1.1.0's shape: one optional ``kwargs`` dict argument holding the fields
    (wrapper,) = cls.resources_subfields()
    assert wrapper.name == "kwargs" and wrapper.optional
    fields = cls.kwargs_fields()
    assert [f.name for f in fields] == [f.name for f in cls.kwargs_subfields()]
    assert all(isinstance(f, Argument) for f in fields)
    assert all(f.doc for f in fields), f"{name}: every kwargs field needs a doc"
    kwargs_arg = Argument("kwargs", dict, fields, optional=True, default={})
    defaults = kwargs_arg.normalize_value({}, trim_pattern="_*")
    kwargs_arg.check_value(defaults, strict=True)
    given = {k: v for k, v in defaults.items() if v is not None}
    res = Resources.load_from_dict({"batch_type": name, "group_size": 1, "kwargs": given})
    again = Resources.load_from_dict({"batch_type": name, **res.serialize()})
    assert again == res and again.serialize() == res.serialize()
    assert name in Resources.arginfo().gen_doc()


@pytest.mark.parametrize("name", BATCH_TYPES)
def test_machine_dict_round_trips(name: str, tmp_path: Path) -> None:
    make_machine(name, tmp_path)  # constructible on a LocalContext
    data = {
        "batch_type": name.upper(),
        "context_type": "LocalContext",
        "local_root": str(tmp_path),
        "remote_root": str(tmp_path / "r"),
    }
    machine = Machine.load_from_dict(data)
    assert type(machine).__name__ == name
    assert Machine.deserialize(machine.serialize()).serialize() == machine.serialize()
