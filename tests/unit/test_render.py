"""The pure renderer: golden Shell scripts, the header hook contract, quoting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dpdispatcher import Job, Machine, Resources, Task
from dpdispatcher._script import names, render
from dpdispatcher._script.quoting import directive_value, env_value, job_id, sh
from dpdispatcher.errors import ConfigurationError, SchedulerError
from tests.golden import check_golden

GOLDEN = Path(__file__).parent.parent / "fixtures" / "scripts" / "shell"

CASES = {
    "cpu": dict(),
    "para_deg": dict(para_deg=2),
    "cuda": dict(gpu_per_node=2, para_deg=2, strategy={"if_cuda_multi_devices": True}),
    "full_env": dict(
        module_purge=True,
        module_unload_list=["old/1"],
        module_list=["a/1", "b"],
        source_list=["/opt/env.sh"],
        envs={"OMP_NUM_THREADS": 4, "P": ["x", "y"]},
        prepend_script=["ulimit -s unlimited"],
        append_script=["echo done"],
        custom_flags=["# custom flag line"],
    ),
}


def _job(**res):
    tasks = [Task(f"run {i} > out", f"task{i}/", outlog="log", errlog="err") for i in range(5)]
    return Job(tasks, resources=Resources(1, 4, res.pop("gpu_per_node", 0), "", 5, **res))


def _machine(tmp_path):
    m = Machine(
        batch_type="Shell",
        context_type="LocalContext",
        local_root=str(tmp_path),
        remote_root="/remote/root",
    )
    m.context.remote_root = "/remote/root/HASH"
    return m


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_shell_scripts(case, tmp_path):
    job = _job(**CASES[case])
    machine = _machine(tmp_path)
    text = machine.gen_script(job) + "#### run file ####\n" + machine.gen_run_body(job)
    text = text.replace(job.job_hash, "JOBHASH")
    for task in job.job_task_list:
        text = text.replace(task.task_hash, f"TASKHASH_{task.task_work_path.strip('/')}")
    check_golden(GOLDEN / f"{case}.sub", text)


def test_rendering_is_pure(tmp_path):
    job = _job(**CASES["full_env"])
    before = job.resources.serialize()
    machine = _machine(tmp_path)
    assert machine.gen_script(job) == machine.gen_script(job)
    assert machine.gen_run_body(job) == machine.gen_run_body(job)
    assert job.resources.serialize() == before


def test_shebang_first_line(tmp_path):
    assert _machine(tmp_path).gen_script(_job()).startswith("#!/bin/bash -l\n")


def test_header_hook_contract(tmp_path):
    """A batch type only supplies header lines; the rest of the script is common."""

    class Hooked(Machine):
        _abstract = True  # not registered

        def header_lines(self, job):
            return ["#!/bin/bash", "#HOOK --cpus " + str(job.resources.cpu_per_node)]

    m = Hooked.__new__(Hooked)
    m.retry_count = 3
    m.bind_context(_machine(tmp_path).context)
    script = m.gen_script(_job())
    assert script.startswith("#!/bin/bash\n#HOOK --cpus 4\n")
    assert render.render_env("JOBHASH", "/remote/root/HASH", _job().resources) in script.replace(
        _job().job_hash, "JOBHASH"
    )


def test_template_header_replaces_hook(tmp_path):
    tpl = tmp_path / "header.tpl"
    tpl.write_text("#!/bin/zsh\n#X nodes={number_node} cpus={cpu_per_node} q={queue_name}\n")
    job = _job(strategy={"customized_script_header_template_file": str(tpl)})
    script = _machine(tmp_path).gen_script(job)
    assert script.startswith("#!/bin/zsh\n#X nodes=1 cpus=4 q=\n")


def test_template_header_missing_file_is_clear(tmp_path):
    job = _job(strategy={"customized_script_header_template_file": str(tmp_path / "nope")})
    with pytest.raises(ConfigurationError, match="customized_script_header_template_file"):
        _machine(tmp_path).gen_script(job)


def test_cuda_round_robin():
    res = Resources(1, 1, 2, "", 8, para_deg=2, strategy={"if_cuda_multi_devices": True})
    assert [render.cuda_device_for(i, res) for i in range(8)] == [0, 0, 1, 1, 0, 0, 1, 1]
    assert render.wait_period(res) == 4
    bad = Resources(2, 1, 2, "", 8, strategy={"if_cuda_multi_devices": True})
    with pytest.raises(ConfigurationError, match="number_node"):
        render.cuda_device_for(0, bad)


def test_wait_after_each_para_deg_batch():
    res = Resources(1, 1, 0, "", 5, para_deg=2)
    tasks = [Task("true", f"t{i}") for i in range(5)]
    body = render.render_run_body("H", tasks, res)
    assert body.count("fi &\n") == 5 and body.count("\nwait\n") == 2


def test_log_none_omits_redirect():
    body = render.render_task_block(Task("true", "t", outlog=None, errlog=None), "H", None)
    assert "1>>" not in body and "2>>" not in body


HOSTILE = [
    "a b",
    "it's",
    'say "hi"',
    "$(touch PWNED)",
    "`touch PWNED`",
    "x; touch PWNED",
    "line1\nline2",
    "$HOME",
    "\\",
    "*",
    "-n",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_sh_quoting_round_trips_in_bash(value, tmp_path):
    out = subprocess.run(
        ["bash", "-c", f"printf %s {sh(value)}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert out == value and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("value", [v for v in HOSTILE if v != "$HOME"])
def test_env_value_is_literal_except_variable_references(value, tmp_path):
    out = subprocess.run(
        ["bash", "-c", f'export V={env_value(value)}; printf %s "$V"'],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert out == value and not (tmp_path / "PWNED").exists()


def test_env_value_expands_variable_references():
    out = subprocess.run(
        ["bash", "-c", f"X=1; export V={env_value('/opt:$X:${X}')}; echo $V"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "/opt:1:1"


@pytest.mark.parametrize("value", ["a\nb", "a b", " a", "a\r", "x\0"])
def test_directive_values_cannot_inject(value):
    with pytest.raises(ConfigurationError):
        directive_value(value, "resources/queue_name")


@pytest.mark.parametrize("value", ["123", "123.server", "45_[1-3]", "7@cluster"])
def test_job_id_accepts_scheduler_ids(value):
    assert job_id(value) == value


@pytest.mark.parametrize("value", ["", "1; rm -rf /", "$(x)", "1 2", "1\n2"])
def test_job_id_refuses_shell(value):
    with pytest.raises(SchedulerError):
        job_id(value)


def test_env_names_are_validated(tmp_path):
    job = _job(envs={"BAD NAME": "1"})
    with pytest.raises(ConfigurationError, match="BAD NAME"):
        _machine(tmp_path).gen_script(job)


def test_file_names_have_one_home():
    assert names.script_file("h") == ".h.sub" and names.run_file("h") == ".h.sub.run"
    assert names.job_tag_file("h") == "h_job_tag_finished"
    assert names.task_tag_file("t") == "t_task_tag_finished"
    assert names.download_failure_marker("a/*.x") == "tag_failure_download_a__.x"


@pytest.mark.parametrize(
    "path,expected",
    [
        ("~/env.sh", "HOMEDIR/env.sh"),
        ("$HOME/x y.sh", "HOMEDIR/x y.sh"),
        ("/opt/a'b", "/opt/a'b"),
        ("$(touch PWNED)", "$(touch PWNED)"),
    ],
)
def test_source_paths_expand_home_but_nothing_else(path, expected, tmp_path):
    from dpdispatcher._script.quoting import path_value

    env = {"HOME": "HOMEDIR", "PATH": os.environ["PATH"]}
    out = subprocess.run(
        ["bash", "-c", f"printf %s {path_value(path)}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout
    assert out == expected and not (tmp_path / "PWNED").exists()


# Lines observed with the original 1.1.0 (LSF(...).gen_script_env in a throwaway venv).
@pytest.mark.parametrize(
    ("res", "line"),
    [
        (dict(module_list=["gcc/12 openmpi/4"]), "module load gcc/12 openmpi/4"),
        (dict(module_list=["'/module with spaces/1.0'"]), "module load '/module with spaces/1.0'"),
        (dict(module_unload_list=["legacy/1.0"]), "module unload legacy/1.0"),
        (dict(source_list=["/opt/a.sh arg"]), "source /opt/a.sh arg"),
        (dict(source_list=["'/opt/C# [r]/setup.sh' --flag 'a b'"]),
         "source '/opt/C# [r]/setup.sh' --flag 'a b'"),
        (dict(source_list=["'${HOME}/literal.sh'"]), "source '${HOME}/literal.sh'"),
    ],
)  # fmt: skip
def test_module_and_source_entries_are_static_words(res, line):
    from dpdispatcher._script.render import render_env

    text = render_env("h", "/r", _job(**res).resources)
    assert f"\n{line}\n" in text
    assert "source \n" not in render_env("h", "/r", _job(source_list=["", " \t"]).resources)


@pytest.mark.parametrize(
    "res",
    [
        dict(module_list=["safe; touch /tmp/pwned"]),
        dict(module_list=["$(touch /tmp/pwned)"]),
        dict(source_list=["setup.sh | tee out"]),
        dict(source_list=["`touch injected`"]),
        dict(source_list=["setup-*.sh"]),
        dict(source_list=["-p injected"]),
        dict(source_list=['"${HOME}/setup.sh"']),
    ],
)
def test_shell_code_in_module_or_source_entries_is_refused(res):
    from dpdispatcher._script.render import render_env

    with pytest.raises(ConfigurationError, match="prepend_script"):
        render_env("h", "/r", _job(**res).resources)


def test_env_names_and_values_are_validated():
    from dpdispatcher._script.render import render_env
    from dpdispatcher.errors import ConfigurationTypeError

    for bad in ("", "1X", "A-B", "A B", "A\n", "A;b"):
        with pytest.raises(ConfigurationError, match="POSIX environment"):
            render_env("h", "/r", _job(envs={bad: "v"}).resources)
    with pytest.raises(ConfigurationTypeError, match="names must be strings"):
        render_env("h", "/r", _job(envs={1: "v"}).resources)
    for value in ("a\0b", ["ok", "a\0b"]):
        with pytest.raises(ConfigurationError, match="NUL character"):
            render_env("h", "/r", _job(envs={"V": value}).resources)
