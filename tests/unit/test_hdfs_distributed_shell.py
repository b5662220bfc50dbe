"""HDFS (``hadoop fs`` argv), HDFSContext pieces and DistributedShell scripts, offline."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher.contexts.hdfs_context import HDFSContext
from dpdispatcher.errors import ConfigurationError, ContextError, HDFSMissingPathError
from dpdispatcher.machines import distributed_shell
from dpdispatcher.machines.distributed_shell import DistributedShell, yarn_client_command
from dpdispatcher.utils import hdfs_cli
from dpdispatcher.utils.hdfs_cli import HDFS
from tests import golden

SCRIPTS = Path(__file__).parent.parent / "fixtures" / "scripts" / "distributed_shell"
Answer = tuple[int, bytes, bytes]


@pytest.fixture
def hadoop(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every command HDFS runs; answer (0, b"out", b"") unless told otherwise."""
    calls: list[Any] = []
    answers: list[Answer] = []

    def run(cmd: Any, shell: bool = True) -> Answer:
        calls.append((cmd, shell))
        return answers.pop(0) if answers else (0, b"out", b"")

    monkeypatch.setattr(hdfs_cli, "run_cmd_with_all_output", run)
    calls.append(answers)  # the last item lets a test queue answers
    return calls


def test_every_operation_is_one_argv_without_a_shell(hadoop: list[Any]) -> None:
    odd = "hdfs://nn/path with space; touch x"
    assert HDFS.exists(odd) and HDFS.remove(odd) and HDFS.mkdir(odd)
    assert HDFS.copy_from_local("/tmp/a b", odd) == (True, b"out")
    assert HDFS.copy_to_local([odd, "hdfs://nn/$(x)"], "/tmp/dst")
    assert HDFS.read_hdfs_file(odd) == b"out" and HDFS.move(odd, "hdfs://nn/b")
    calls = hadoop[1:]
    assert [c[0][:3] for c in calls] == [
        ["hadoop", "fs", "-test"], ["hadoop", "fs", "-rm"], ["hadoop", "fs", "-mkdir"],
        ["hadoop", "fs", "-copyFromLocal"], ["hadoop", "fs", "-copyToLocal"],
        ["hadoop", "fs", "-text"], ["hadoop", "fs", "-mv"],
    ]  # fmt: skip
    assert all(shell is False for _, shell in calls)
    assert calls[4][0] == ["hadoop", "fs", "-copyToLocal", odd, "hdfs://nn/$(x)", "/tmp/dst"]


def test_exit_codes_and_missing_paths(hadoop: list[Any]) -> None:
    answers = hadoop[0]
    answers += [(1, b"", b""), (255, b"", b"test: connection refused")]
    assert HDFS.exists("/x") is False
    with pytest.raises(ContextError, match="connection refused"):
        HDFS.exists("/x")
    answers.append((1, b"", b"get: `/r/*.tgz': No such file or directory\n"))
    with pytest.raises(HDFSMissingPathError):
        HDFS.copy_to_local("/r/*.tgz", "/tmp")
    answers.append((1, b"", b"copyToLocal: Permission denied: user=me\n"))
    with pytest.raises(ContextError) as other:
        HDFS.copy_to_local("/r/a", "/tmp")
    assert not isinstance(other.value, HDFSMissingPathError)
    assert isinstance(other.value, RuntimeError)  # what the original raised


@pytest.mark.parametrize("bad", ["", "-Dfs.defaultFS=evil", "a\0b", 12])
def test_unsafe_operands_are_refused_before_hadoop_runs(hadoop: list[Any], bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        HDFS.exists(bad)
    with pytest.raises(ValueError):
        HDFS.copy_to_local([], "/tmp")
    assert len(hadoop) == 1  # nothing ran
    assert HDFS.exists("hdfs://nn/-a-dash-inside-is-data")


def test_write_file_leaves_no_local_copy(hadoop: list[Any], tmp_path: Path) -> None:
    ctx = HDFSContext(local_root=str(tmp_path), remote_root="hdfs://nn/r")
    ctx.remote_root = "hdfs://nn/r/SUB"
    assert ctx.write_file("state.json", "{}") == "hdfs://nn/r/SUB/state.json"
    cmd = hadoop[1][0]
    assert cmd[:4] == ["hadoop", "fs", "-copyFromLocal", "-f"] and not os.path.exists(cmd[4])


def make_job(task_paths: tuple[str, ...] = ("task1/", "task two/"), **kw: Any) -> Job:
    res = Resources(1, 8, 0, "default", len(task_paths), kwargs=kw,
                    module_list=["new/module"], envs={"TEST_ENV": "value with space"},
                    append_script=["echo after"])  # fmt: skip
    return Job([Task(f"echo {i}", p) for i, p in enumerate(task_paths)], resources=res)


def ds_machine(tmp_path: Path) -> DistributedShell:
    m = Machine(batch_type="DistributedShell", context_type="HDFSContext",
                local_root=str(tmp_path), remote_root="hdfs://nn/root")  # fmt: skip
    m.context.remote_root = "hdfs://nn/root/SUBMISSION"
    assert isinstance(m, DistributedShell)
    return m


def test_script_fetches_inputs_and_puts_results_back(tmp_path: Path) -> None:
    job = make_job()
    script = ds_machine(tmp_path).gen_script(job)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert script.startswith("#!/bin/bash -l\nset -x\n")
    # 1.1.0's staging and quoting (its gen_script_env on the same job)
    assert "(set -f; hadoop fs -get hdfs://nn/root/SUBMISSION/*.tgz .)" in script
    assert "tar -xzf SUBMISSION_upload.tgz" in script
    assert f"hadoop fs -get -f hdfs://nn/root/SUBMISSION/.{job.job_hash}.sub.run ." in script
    assert "export TEST_ENV='value with space'" in script
    assert "DPDISPATCHER_NUMBER_NODE" not in script
    assert f"-czf SUBMISSION_{job.job_hash}_download.tar.gz task1/ 'task two/'" in script
    assert f"hadoop fs -touchz hdfs://nn/root/SUBMISSION/{job.job_hash}_job_tag_finished" in script
    assert script.rstrip().endswith("echo after")


def test_golden_script(tmp_path: Path) -> None:
    text, _, _ = golden.render(ds_machine(tmp_path), golden.make_job(3, None, {"para_deg": 2}))
    golden.check_golden(SCRIPTS / "para_deg.sub", text)


def test_yarn_client_command_and_jar_lookup(tmp_path: Path) -> None:
    job = make_job(img_name="img:1", mem_limit=2)
    cmd = yarn_client_command(job, "/y/hadoop-yarn-applications-distributedshell-3.jar", ".h.sub")
    for part in (
        "-queue default",
        f"-appname distributedshell_dpgen_{job.job_hash}",
        "-shell_env YARN_CONTAINER_RUNTIME_DOCKER_IMAGE=img:1",
        "-container_resources memory-mb=2048,vcores=8",
        "-shell_script .h.sub",
    ):
        assert part in cmd  # fmt: skip
    assert cmd.startswith("setsid nohup hadoop jar ") and cmd.endswith("& echo $!")
    assert "DOCKER" not in yarn_client_command(make_job(), "/y/d.jar", ".h.sub")
    with pytest.raises(ConfigurationError, match="yarn_path"):
        distributed_shell.find_jar(make_job(yarn_path=str(tmp_path)).resources)


def test_download_refuses_a_missing_archive_unless_check_exists(
    hadoop: list[Any], tmp_path: Path
) -> None:
    from dpdispatcher import Submission

    work = tmp_path / "work"
    (work / "t0").mkdir(parents=True)
    m = ds_machine(tmp_path)
    sub = Submission("work", m, Resources(1, 1, 0, "", 1), task_list=[
        Task("true", "t0/", backward_files=["out"])])  # fmt: skip
    sub.generate_jobs()
    m.context.bind_submission(sub)
    hadoop[0].append((1, b"", b"get: `x': No such file or directory"))
    with pytest.raises(HDFSMissingPathError):
        m.context.download(sub)
    hadoop[0].append((1, b"", b"get: `x': No such file or directory"))
    m.context.download(sub, check_exists=True, mark_failure=True)
    assert (work / "t0" / "tag_failure_download_out").exists()
    assert not [p for p in os.listdir(work) if p.startswith(".dpdisp-hdfs-")]


def test_results_are_extracted_safely(hadoop: list[Any], tmp_path: Path) -> None:
    from dpdispatcher import Submission

    work = tmp_path / "work"
    (work / "t0").mkdir(parents=True)
    (work / "t0" / "out").write_text("stale")
    m = ds_machine(tmp_path)
    sub = Submission("work", m, Resources(1, 1, 0, "", 1),
                     task_list=[Task("true", "t0/", backward_files=["out"])])  # fmt: skip
    sub.generate_jobs()
    m.context.bind_submission(sub)
    src = tmp_path / "src"
    (src / "t0").mkdir(parents=True)
    (src / "t0" / "out").write_text("fresh")

    def fake_copy(_uri: Any, dest: str) -> bool:
        with tarfile.open(os.path.join(dest, "S_J_download.tar.gz"), "w:gz") as tar:
            tar.add(src / "t0", "t0")
            info = tarfile.TarInfo("../escape")
            tar.addfile(info)
        return True

    HDFS_copy = HDFS.copy_to_local
    try:
        HDFS.copy_to_local = staticmethod(fake_copy)  # type: ignore[assignment]
        m.context.download(sub)
    finally:
        HDFS.copy_to_local = HDFS_copy  # type: ignore[method-assign]
    assert (work / "t0" / "out").read_text() == "fresh"
    assert not (tmp_path / "escape").exists()


def test_kill_finds_the_application_in_the_real_client_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixtures = Path(__file__).parent.parent / "fixtures" / "scheduler_output"
    golden_log = fixtures / "distributedshell" / "client_success.stderr"
    m = ds_machine(tmp_path)
    job = make_job()
    job.job_id = "4242"
    (tmp_path / f"{job.job_hash}.out").write_text(golden_log.read_text())
    ran: list[str] = []
    monkeypatch.setattr(distributed_shell, "run_cmd_with_all_output",
                        lambda cmd, shell=True: (ran.append(cmd), (0, b"", b""))[1])  # fmt: skip
    m.kill(job)
    assert ran == ["yarn application -kill application_1545380789810_0003", "kill -- -4242"]


def test_missing_path_wording_of_the_real_fs_shell(hadoop: list[Any]) -> None:
    fixtures = Path(__file__).parent.parent / "fixtures" / "scheduler_output"
    missing = (fixtures / "distributedshell" / "hadoop_fs_ls_missing.stderr").read_bytes()
    hadoop[0].append((1, b"", missing))
    with pytest.raises(HDFSMissingPathError):
        HDFS.read_hdfs_file(".")


def test_bad_setups_are_refused_before_anything_is_uploaded(tmp_path: Path) -> None:
    from dpdispatcher import Submission

    (tmp_path / "work" / "t0").mkdir(parents=True)
    no_jar = Resources(1, 1, 0, "", 1, kwargs={"yarn_path": str(tmp_path)})
    sub = Submission("work", ds_machine(tmp_path), no_jar, task_list=[Task("true", "t0/")])
    with pytest.raises(ConfigurationError, match="yarn_path"):
        sub.run_submission()
    local = Machine(batch_type="DistributedShell", context_type="LocalContext",
                    local_root=str(tmp_path), remote_root=str(tmp_path / "r"))  # fmt: skip
    with pytest.raises(ConfigurationError, match="HDFSContext"):
        local.check_resources(no_jar)
    assert not (tmp_path / "r").exists()


def test_one_listing_tells_which_job_root_files_exist(hadoop: list[Any], tmp_path: Path) -> None:
    from dpdispatcher.utils.hdfs_cli import parse_ls

    fixtures = Path(__file__).parent.parent / "fixtures" / "scheduler_output"
    public = (fixtures / "distributedshell" / "hadoop_fs_ls.stdout").read_text()
    assert [p.rsplit("/", 1)[-1] for p in parse_ls(public)] == [
        "_SUCCESS", "_logs", "part-00000", "part-00001"]  # fmt: skip
    ctx = HDFSContext(local_root=str(tmp_path), remote_root="/tmp/RtmpUzjoWy")
    ctx.remote_root = "/tmp/RtmpUzjoWy/file1c7dbd916e7"
    hadoop[0].append((0, public.encode(), b""))
    assert ctx.files_exist(["_SUCCESS", "part-00001", "absent"]) == {"_SUCCESS", "part-00001"}
    assert [c[0][2] for c in hadoop[1:]] == ["-ls"]  # one command for all of them


def test_alive_command_counts_only_the_live_client_of_the_job() -> None:
    job = make_job()
    client = subprocess.Popen(  # a process whose argv names the job's application
        ["bash", "-c", f"sleep 30; true distributedshell_dpgen_{job.job_hash}"]
    )
    try:
        job.job_id = str(client.pid)
        live = subprocess.run(distributed_shell.alive_command(job), shell=True,
                              capture_output=True, text=True)  # fmt: skip
        assert (live.returncode, live.stdout.strip()) == (0, "1")
        other = make_job(("other/",))
        other.job_id = str(client.pid)  # same pid, another application: not our client
        dead = subprocess.run(distributed_shell.alive_command(other), shell=True,
                              capture_output=True, text=True)  # fmt: skip
        assert (dead.returncode, dead.stdout.strip(), dead.stderr) == (1, "0", "")
    finally:
        client.kill()
        client.wait()


def test_one_job_status_tag_then_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m, job = ds_machine(tmp_path), make_job()
    assert m.check_status(job).name == "unsubmitted"
    job.job_id = "123"
    answers: list[Any] = []
    monkeypatch.setattr(distributed_shell, "run_cmd_with_all_output", lambda cmd: answers.pop(0))
    tag = {"there": True}
    monkeypatch.setattr(m.context, "check_file_exists", lambda f: tag["there"])
    expected = [((0, b"1\n", b""), True, "finished"), ((0, b"1\n", b""), False, "running"),
                ((1, b"0\n", b""), False, "terminated")]  # fmt: skip
    for answer, there, state in expected:
        answers.append(answer)
        tag["there"] = there
        assert m.check_status(job).name == state
    answers.append((1, b"", b"ps: bad pid"))
    with pytest.raises(RuntimeError, match="ps: bad pid"):
        m.check_status(job)


def test_do_submit_writes_script_and_body_and_returns_the_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m, job = ds_machine(tmp_path), make_job(yarn_path="/opt/yarn")
    written: list[tuple[str, str]] = []
    monkeypatch.setattr(m.context, "write_file", lambda fname, write_str: written.append(
        (fname, write_str)) or fname)  # fmt: skip
    commands: list[str] = []
    monkeypatch.setattr(distributed_shell, "run_cmd_with_all_output",
                        lambda cmd: commands.append(cmd) or (0, b"321\n", b""))  # fmt: skip
    assert m.do_submit(job) == 321
    assert [f for f, _ in written] == [job.script_file_name, job.script_file_name + ".run",
                                       f"{job.job_hash}_job_id"]  # fmt: skip
    assert written[2][1] == "321"
    cmd = commands[0]
    assert "ls -1 /opt/yarn/hadoop-yarn-applications-distributedshell-*.jar" in cmd
    assert f"hadoop fs -get -f hdfs://nn/root/SUBMISSION/{job.script_file_name} " in cmd
    assert 'hadoop jar "$jar" ' in cmd
    monkeypatch.setattr(distributed_shell, "run_cmd_with_all_output",
                        lambda cmd: (2, b"", b"no jar"))  # fmt: skip
    with pytest.raises(RuntimeError, match="no jar"):
        m.do_submit(job)


def test_custom_header_template(tmp_path: Path) -> None:
    template = tmp_path / "header.in"
    template.write_text("#!/bin/bash\n# queue {queue_name} cpus {cpu_per_node}\n")
    job = make_job()
    job.resources.strategy["customized_script_header_template_file"] = str(template)
    header = ds_machine(tmp_path).gen_script_header(job)
    assert header == "#!/bin/bash\n# queue default cpus 8\n"
