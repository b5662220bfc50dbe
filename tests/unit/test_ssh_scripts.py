"""The remote scripts of SSHContext, run here with a local bash (no SSH needed)."""

from __future__ import annotations

import glob
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from dpdispatcher.contexts import _ssh_scripts as s
from dpdispatcher.contexts import _ssh_transfer as transfer

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def run(
    script: str, stdin: bytes = b"", home: Path | None = None, login_shell: str = "sh"
) -> subprocess.CompletedProcess[bytes]:
    """Run an exec request the way sshd does: ``$SHELL -c <request>``."""
    env = dict(os.environ)
    if home is not None:
        env["HOME"] = str(home)
        env.pop("XDG_CACHE_HOME", None)
    return subprocess.run(
        [login_shell, "-c", s.exec_string(script)],
        input=stdin,
        capture_output=True,
        env=env,
        check=False,
    )


def out(proc: subprocess.CompletedProcess[bytes]) -> bytes:
    return s.strip_marker(proc.stdout)


# -- exec strings ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "script",
    [
        "echo 'single' \"double\" $((1+2))",
        "printf '%s\\n' 'it'\"'\"'s'",
        "echo one\necho two",
        "echo 'bang!'",
        "cat <<'EOF'\n$HOME is literal\nEOF",
    ],
)
def test_exec_string_runs_script_verbatim(script: str) -> None:
    expected = subprocess.run([BASH or "bash", "-c", script], capture_output=True).stdout
    assert out(run(script)) == expected


def test_exec_string_survives_a_csh_login_shell() -> None:
    csh = shutil.which("csh") or shutil.which("tcsh")
    if csh is None:
        pytest.skip("no csh here")
    for script in ("echo a\necho b", "echo 'x!y'", "echo $((2*3))"):
        expected = subprocess.run([BASH or "bash", "-c", script], capture_output=True).stdout
        assert out(run(script, login_shell=csh)) == expected


def test_marker_cuts_off_login_noise() -> None:
    noisy = b"Welcome to the cluster!\nquota: 93%\n"
    assert s.strip_marker(noisy + s.MARKER + b"payload") == b"payload"
    assert s.strip_marker(b"no marker") == b"no marker"


# -- journaled commands ------------------------------------------------------------------
def test_journaled_runs_once_and_records(tmp_path: Path) -> None:
    token = s.new_token()
    script = "echo out; echo err >&2; exit 7"
    proc = run(s.journaled(script, token), home=tmp_path)
    assert proc.returncode == 7
    assert out(proc) == b"out\n" and s.strip_marker(proc.stderr) == b"err\n"
    probe = run(s.journal_probe(token), home=tmp_path)
    assert probe.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(out(probe))) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert files[f"{token}.rc"].strip() == b"7"
    assert files[f"{token}.out"] == b"out\n"
    assert files[f"{token}.err"] == b"err\n"


def test_journal_probe_states(tmp_path: Path) -> None:
    assert run(s.journal_probe("nothing"), home=tmp_path).returncode == s.JOURNAL_ABSENT
    jdir = tmp_path / ".cache/dpdispatcher/ssh-run"
    jdir.mkdir(parents=True)
    (jdir / "tok.started").touch()
    assert run(s.journal_probe("tok"), home=tmp_path).returncode == s.JOURNAL_RUNNING


def test_journal_forget_and_fallback(tmp_path: Path) -> None:
    first = s.new_token()
    run(s.journaled("true", first), home=tmp_path)
    jdir = tmp_path / ".cache/dpdispatcher/ssh-run"
    assert sorted(p.name for p in jdir.iterdir())[0].startswith(first)
    second = s.new_token()
    run(s.journaled("true", second, forget=[first], purge=True), home=tmp_path)
    assert {p.name.split(".")[0] for p in jdir.iterdir()} == {second}
    # a journal that cannot be created: the command still runs, plainly
    shutil.rmtree(jdir)
    jdir.write_text("not a directory")
    proc = run(s.journaled("echo plain", s.new_token()), home=tmp_path)
    assert out(proc) == b"plain\n"


# -- batched file operations --------------------------------------------------------------
def test_exists_read_write(tmp_path: Path) -> None:
    root = tmp_path / "job root"
    files = {"a.txt": "A\n", "sub/b.txt": "B", ".hidden": "h", "with space": "s"}
    proc = run(s.write_files_script(str(root)), stdin=transfer.tar_bytes(files))
    assert proc.returncode == 0, proc.stderr
    for name, text in files.items():
        assert (root / name).read_text() == text
    assert not [p for p in root.iterdir() if p.name.startswith(".dpdispatcher-write")]
    names = ["a.txt", "nope", "sub", "with space", "-n"]
    exists = run(s.exists_script(str(root)), stdin=s.nul_list(names))
    assert set(s.split_nul(out(exists))) == {"a.txt", "sub", "with space"}
    read = run(
        s.read_files_script(str(root)), stdin=s.nul_list(["a.txt", "nope", "sub", "with space"])
    )
    with tarfile.open(fileobj=io.BytesIO(out(read))) as tar:
        got = {os.path.normpath(m.name): tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    assert got == {"a.txt": b"A\n", "with space": b"s"}


def test_missing_root_means_nothing_exists(tmp_path: Path) -> None:
    proc = run(s.exists_script(str(tmp_path / "missing")), stdin=s.nul_list(["a"]))
    assert proc.returncode == 0 and out(proc) == b""
    proc = run(s.read_files_script(str(tmp_path / "missing")), stdin=s.nul_list(["a"]))
    assert proc.returncode == 0 and out(proc) == b""


def test_clean_script(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "x").mkdir(parents=True)
    aside = tmp_path / ".r.removing"
    (aside / "left by a killed clean").mkdir(parents=True)
    assert run(s.clean_script(str(root), asynchronous=False)).returncode == 0
    assert not root.exists() and not aside.exists()
    assert run(s.clean_script(str(root), asynchronous=False)).returncode == 0  # nothing left


def test_clean_script_asynchronous_renames_at_once(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "x").mkdir(parents=True)
    assert run(s.clean_script(str(root), asynchronous=True)).returncode == 0
    assert not root.exists()  # gone from its name before the script returns


# -- upload --------------------------------------------------------------------------------
def test_upload_probe_missing_remote_root(tmp_path: Path) -> None:
    proc = run(s.upload_probe(str(tmp_path / "no/job"), str(tmp_path / "no"), False))
    assert proc.returncode == 3
    assert b"create_remote_root" in proc.stderr
    proc = run(s.upload_probe(str(tmp_path / "no/job"), str(tmp_path / "no"), True))
    assert proc.returncode == 0 and s.parse_sha256sum(out(proc).decode()) == (False, {})


def test_upload_probe_checksums_odd_names(tmp_path: Path) -> None:
    names = ["plain", "with space", "back\\slash", "new\nline"]
    for name in names:
        (tmp_path / name).write_text(name)
    proc = run(
        s.upload_probe(str(tmp_path), str(tmp_path.parent), False),
        stdin=s.nul_list("./" + n for n in [*names, "missing"]),
    )
    exists, sums = s.parse_sha256sum(out(proc).decode())
    assert exists
    assert sums == {n: hashlib.sha256(n.encode()).hexdigest() for n in names}


def test_tar_upload_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "t1").mkdir(parents=True)
    (src / "t1/in.txt").write_text("input")
    (src / "common.bin").write_bytes(os.urandom(3 << 20))
    (src / "t1/link").symlink_to("../common.bin")
    entries = transfer.collect(str(src), ["common.bin", "t1"], ["t1", "t2"])
    for compress in (False, True):
        chunks: list[bytes] = []
        transfer.write_tar(entries, transfer.ChunkWriter(chunks.append, compress))
        dest = tmp_path / f"dest{compress}"
        proc = run(s.extract_script(str(dest), compress), stdin=b"".join(chunks))
        assert proc.returncode == 0, proc.stderr
        assert (dest / "t1/in.txt").read_text() == "input"
        assert (dest / "common.bin").read_bytes() == (src / "common.bin").read_bytes()
        assert (dest / "t1/link").read_bytes() == (src / "common.bin").read_bytes()  # followed
        assert (dest / "t2").is_dir()


# -- download --------------------------------------------------------------------------------
PATTERNS = [
    "*.txt",
    "out.txt",
    "missing",
    "sub/*",
    "sub",
    "[ab].dat",
    "*",
    ".hidden",
    "?.dat",
    "$(touch pwned)",
    "a b*",
]


def test_glob_matches_python_glob(tmp_path: Path) -> None:
    task = tmp_path / "task 1"
    (task / "sub").mkdir(parents=True)
    for name in ["out.txt", "log.txt", "a.dat", "b.dat", "c.dat", ".hidden", "a b c", "sub/x"]:
        (task / name).write_text(name)
    requests = [("task 1", p) for p in PATTERNS] + [("nope", "*")]
    proc = run(s.glob_script(str(tmp_path)), stdin=s.encode_requests(requests))
    matches, samples = s.parse_glob_output(out(proc))
    assert samples == []
    for index, (_, pattern) in enumerate(requests[:-1]):
        if glob.has_magic(pattern):
            expected = sorted(os.path.relpath(p, task) for p in glob.glob(str(task / pattern)))
        else:
            expected = [pattern] if os.path.lexists(task / pattern) else []
        assert sorted(matches.get(index, [])) == expected, pattern
    assert len(requests) - 1 not in matches
    assert not (task / "pwned").exists()


def test_glob_samples_large_files(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t/random.bin").write_bytes(os.urandom(s.SAMPLE_MIN_SIZE + 10))
    (tmp_path / "t/text.log").write_text("step energy\n" * 200_000)
    proc = run(s.glob_script(str(tmp_path)), stdin=s.encode_requests([("t", "random.bin")]))
    _, samples = s.parse_glob_output(out(proc))
    assert len(samples) == 1 and not s.should_compress(samples)
    proc = run(s.glob_script(str(tmp_path)), stdin=s.encode_requests([("t", "*.log")]))
    _, samples = s.parse_glob_output(out(proc))
    assert len(samples) == 1 and s.should_compress(samples)


def test_tar_script_gzip_round_trip(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/f").write_text("data")
    for compress in (False, True):
        proc = run(s.tar_script(str(tmp_path), compress), stdin=s.nul_list(["./d/f"]))
        assert proc.returncode == 0
        with tarfile.open(fileobj=io.BytesIO(out(proc)), mode="r|*") as tar:
            assert [os.path.normpath(m.name) for m in tar] == ["d/f"]


def test_should_compress() -> None:
    assert s.should_compress([])
    assert s.should_compress([s.Sample(10 << 20, 1000, 300)])
    assert not s.should_compress([s.Sample(100 << 20, 1000, 990)])
    # a big incompressible file dominates a small compressible one
    assert not s.should_compress([s.Sample(100 << 20, 1000, 1000), s.Sample(2 << 20, 1000, 100)])
