"""1.x API details other programs rely on: records, retry, rsync, schema errors, $ref."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from dargs.dargs import ArgumentKeyError, ArgumentValueError

from dpdispatcher import Machine, Resources, Submission, Task
from dpdispatcher.contexts.local_context import LocalContext
from dpdispatcher.entrypoints.gui import start_dpgui
from dpdispatcher.errors import ConfigurationError
from dpdispatcher.machines.pbs import PBS
from dpdispatcher.utils import utils
from dpdispatcher.utils.record import record


def _submission(tmp_path: Path) -> Submission:
    (tmp_path / "work" / "t").mkdir(parents=True)
    machine = Machine.load_from_dict(
        {
            "batch_type": "Shell",
            "context_type": "LocalContext",
            "local_root": str(tmp_path),
            "remote_root": str(tmp_path / "r"),
        }
    )
    sub = Submission("work", machine, Resources(1, 1, 0, "", 1), task_list=[Task("true", "t")])
    sub.generate_jobs()
    return sub


def test_record_round_trip(tmp_path: Path) -> None:
    sub = _submission(tmp_path)
    assert sub.submission_hash not in record.get_submissions()
    with pytest.raises(FileNotFoundError):
        record.get_submission(sub.submission_hash)
    path = record.write(sub)
    assert record.get_submission(sub.submission_hash) == path
    assert json.loads(path.read_text()) == json.loads(json.dumps(sub.serialize()))
    assert sub.submission_hash in record.get_submissions()
    record.remove(sub.submission_hash)
    assert not path.exists() and sub.submission_hash not in record.get_submissions()


def test_deserialize_binds_the_context_unless_asked_not_to(tmp_path: Path) -> None:
    sub = _submission(tmp_path)
    data = json.loads(json.dumps(sub.serialize()))
    fresh = Machine.load_from_dict(sub.machine.serialize())  # type: ignore[union-attr]
    unbound = Submission.deserialize(data, machine=fresh, bind_context=False)
    assert unbound.machine.context.submission is None  # type: ignore[union-attr]
    bound = Submission.deserialize(data, bind_context=True)
    assert bound.machine.context.submission is bound  # type: ignore[union-attr]
    assert bound.machine.context.remote_root.endswith(bound.submission_hash)  # type: ignore[union-attr]


def test_retry_gives_up_with_a_runtime_error() -> None:
    calls: list[int] = []

    @utils.retry(max_retry=3, sleep=0)
    def always() -> None:
        calls.append(1)
        raise utils.RetrySignal("nope")

    with pytest.raises(RuntimeError, match="failed 3 times; last error: nope"):
        always()
    assert len(calls) == 3


def test_rsync_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake(cmd: Any, shell: bool = True) -> tuple[int, bytes, bytes]:
        seen.append(cmd)
        return (23, b"", b"rsync: chown failed") if len(seen) > 1 else (0, b"", b"")

    monkeypatch.setattr(utils, "run_cmd_with_all_output", fake)
    utils.rsync(
        "a.txt", "me@host:/x/a.txt", port=2222, key_filename="k", proxy_command="ssh -W %h:%p jump"
    )
    cmd = seen[0]
    assert cmd[:2] == ["rsync", "-rlptDz"] and cmd[-2:] == ["a.txt", "me@host:/x/a.txt"]
    ssh = shlex.split(cmd[cmd.index("-e") + 1])
    assert ssh[0] == "ssh" and "2222" in ssh and "k" in ssh
    assert "ProxyCommand=ssh -W %h:%p jump" in ssh
    with pytest.raises(RuntimeError, match="chown failed"):
        utils.rsync("a.txt", "b.txt")


def test_schema_errors_are_also_dargs_errors() -> None:
    with pytest.raises(ArgumentKeyError):
        Machine.load_from_dict({})
    with pytest.raises(ArgumentValueError):
        Machine.load_from_dict({"batch_type": "PBS", "context_type": "foo", "local_root": "."})
    with pytest.raises(ConfigurationError, match="group_size"):
        Resources.load_from_dict({"group_size": "1"})


def test_load_from_dict_with_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "machine.json").write_text(
        json.dumps({"batch_type": "Shell", "context_type": "LazyLocalContext", "local_root": "."})
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        Machine.load_from_dict({"$ref": "machine.json"})
    assert type(Machine.load_from_dict({"$ref": "machine.json"}, allow_ref=True)).__name__ == (
        "Shell"
    )


def test_machine_built_in_code_equals_the_same_machine_loaded(tmp_path: Path) -> None:
    pbs = PBS(context=LocalContext(local_root=str(tmp_path), remote_root=str(tmp_path / "r")))
    assert pbs == Machine.load_from_dict(pbs.serialize())
    assert pbs.serialize()["remote_profile"] == {"symlink": True}


def test_gui_without_dpgui_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "dpgui", None)
    with pytest.raises(ConfigurationError, match="pip install dpgui"):
        start_dpgui(port=6042, bind_all=False)
