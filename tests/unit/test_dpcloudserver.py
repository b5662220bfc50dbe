"""Tests of ``dpdispatcher.dpcloudserver`` (retcode, config, zip_file, api).

The API tests talk HTTP to the local emulator in ``tests/cloud_emulator`` (a real
server on 127.0.0.1 with an OSS-compatible store that ``oss2`` uploads to).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:  # make ``tests.cloud_emulator`` importable under plain ``pytest``
    sys.path.insert(0, _REPO)

from dpdispatcher.dpcloudserver import api, config  # noqa: E402
from dpdispatcher.dpcloudserver.api import Client, CloudAPIError, CloudAuthError  # noqa: E402
from dpdispatcher.dpcloudserver.retcode import RETCODE, explain, is_ok  # noqa: E402
from dpdispatcher.dpcloudserver.zip_file import unzip_file, zip_file_list  # noqa: E402
from dpdispatcher.errors import UnsafeArchiveError  # noqa: E402
from tests.cloud_emulator.server import CloudEmulator  # noqa: E402

pytest_plugins = ["tests.cloud_emulator.fixture"]

EXPECTED_CODES = {
    "OK": "0000",
    "DBERR": "2000",
    "THIRDERR": "2001",
    "DATAERR": "2002",
    "IOERR": "2003",
    "LOGINERR": "2100",
    "PARAMERR": "2101",
    "USERERR": "2102",
    "ROLEERR": "2103",
    "PWDERR": "2104",
    "VERIFYERR": "2105",
    "REQERR": "2200",
    "NODATA": "2300",
    "UNDERDEBUG": "2301",
    "UNKOWNERR": "2400",
}


# --------------------------------------------------------------------- retcode
def test_retcode_has_exactly_the_reference_constants() -> None:
    public = {k: v for k, v in vars(RETCODE).items() if not k.startswith("_")}
    assert public == EXPECTED_CODES


@pytest.mark.parametrize("code", sorted(EXPECTED_CODES.values()))
def test_every_code_is_explained(code: str) -> None:
    text = explain(code)
    assert text and "unknown code" not in text
    assert explain(int(code)) == text


def test_explanations_name_the_fix() -> None:
    assert "`password`" in explain(RETCODE.PWDERR)
    assert "remote_profile" in explain(RETCODE.PWDERR)
    assert "`program_id`" in explain(RETCODE.ROLEERR)
    assert "BOHR_TICKET" in explain(RETCODE.LOGINERR)
    assert "9999" in explain("9999")
    assert is_ok("0000") and is_ok(0) and is_ok("0") and not is_ok("2104")


# ---------------------------------------------------------------------- config
def test_config_is_read_from_the_environment_at_call_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "DPDISPATCHER_LEBESGUE_API_HOST",
        "DPDISPATCHER_LEBESGUE_ALI_STS_ENDPOINT",
        "DPDISPATCHER_LEBESGUE_ALI_STS_BUCKET_NAME",
        "DPDISPATCHER_LEBESGUE_ALI_OSS_BUCKET_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    assert config.API_HOST == config.api_host() == "https://bohrium.dp.tech/"
    assert config.ALI_STS_ENDPOINT == "http://oss-cn-shenzhen.aliyuncs.com"
    assert config.ALI_STS_BUCKET_NAME == "dpcloudserver"
    assert config.ALI_OSS_BUCKET_URL == "https://dpcloudserver.oss-cn-shenzhen.aliyuncs.com/"
    monkeypatch.setenv("DPDISPATCHER_LEBESGUE_API_HOST", "http://10.0.0.1:8080/")
    monkeypatch.setenv("DPDISPATCHER_LEBESGUE_ALI_STS_BUCKET_NAME", "mine")
    monkeypatch.setenv("DPDISPATCHER_LEBESGUE_ALI_OSS_BUCKET_URL", "http://b/")
    assert config.API_HOST == "http://10.0.0.1:8080/"
    assert config.ali_sts_bucket_name() == "mine"
    assert config.ALI_OSS_BUCKET_URL == "http://b/"
    with pytest.raises(AttributeError):
        _ = config.NOT_A_SETTING  # type: ignore[attr-defined]


def test_importing_the_package_imports_neither_requests_nor_oss2() -> None:
    code = (
        "import sys, dpdispatcher.dpcloudserver.api, dpdispatcher.dpcloudserver.zip_file;"
        "bad = {'requests', 'oss2'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_REPO)


# -------------------------------------------------------------------- zip_file
def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_zip_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "task1" / "sub").mkdir(parents=True)
    (src / "task1" / "in.txt").write_text("one")
    (src / "task1" / "sub" / "deep.bin").write_bytes(os.urandom(1000))
    (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "run.sh").chmod(0o755)
    (src / "ignored.txt").write_text("not listed")
    archive = zip_file_list(str(src), "job.zip", file_list=["task1", "run.sh"])
    assert archive == str(src / "job.zip")
    out = tmp_path / "out"
    names = unzip_file(archive, str(out))
    expected = _tree(src)
    del expected["ignored.txt"], expected["job.zip"]
    assert _tree(out) == expected
    assert names == set(expected)  # the files extracted, as 1.1.0 returns them
    assert os.stat(out / "run.sh").st_mode & stat.S_IXUSR


def test_zip_of_everything_does_not_contain_itself(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("b")
    archive = zip_file_list(tmp_path, "all.zip")
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert {"a.txt", "d/b.txt"} <= names
    assert not any(n.endswith("all.zip") for n in names)


@pytest.mark.parametrize("bad", ["../outside.txt", "/etc/passwd", "a/../../x"])
def test_zip_file_list_refuses_names_that_climb_out(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UnsafeArchiveError):
        zip_file_list(tmp_path, "x.zip", file_list=[bad])


def _zip_with(path: Path, *entries: tuple[str, str, bool]) -> Path:
    """Write a zip of ``(name, content, is_symlink)`` entries, names kept verbatim."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("good.txt", "fine")
        for name, content, link in entries:
            info = zipfile.ZipInfo("placeholder")
            info.filename = name  # ZipInfo() would sanitise a leading '/'
            if link:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, content)
    return path


HOSTILE = {
    "dotdot": [("../evil", "x", False)],
    "nested-dotdot": [("a/b/../../../evil", "x", False)],
    "absolute": [("/tmp/evil-abs", "x", False)],
    "backslash-dotdot": [("..\\evil", "x", False)],
    "symlink-to-etc": [("etc_link", "/etc", True)],
    "symlink-relative-escape": [("sub/up", "../../..", True)],
    "symlink-chain": [("d/parent", "..", True), ("escape", "d/parent/..", True)],
    "write-through-link": [("inner", "good.txt", True), ("inner/x", "x", False)],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_zip_member_is_skipped_with_a_warning(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One rule for every archive (``_archive``, B8): the unsafe member is skipped and
    named in a WARNING; the rest is extracted; nothing is written outside."""
    archive = _zip_with(tmp_path / "bad.zip", *HOSTILE[kind])
    jail = tmp_path / "jail"
    jail.mkdir()
    with caplog.at_level(logging.WARNING):
        unzip_file(archive, jail / "out")
    assert (jail / "out" / "good.txt").read_text() == "fine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "jail"]
    assert sorted(p.name for p in jail.iterdir()) == ["out"]
    assert not Path("/tmp/evil-abs").exists()
    assert "skipped" in caplog.text
    for path in (jail / "out").rglob("*"):
        assert os.path.realpath(path).startswith(os.path.realpath(jail / "out")), path


def test_safe_symlinks_inside_are_kept(tmp_path: Path) -> None:
    archive = _zip_with(tmp_path / "ok.zip", ("d/link", "../good.txt", True))
    unzip_file(archive, tmp_path / "out")
    link = tmp_path / "out" / "d" / "link"
    assert link.is_symlink() and link.read_text() == "fine"


def test_existing_symlink_in_target_is_replaced_not_followed(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "good.txt").symlink_to(precious)
    unzip_file(_zip_with(tmp_path / "ok.zip"), out)
    assert precious.read_text() == "keep me"
    assert not (out / "good.txt").is_symlink() and (out / "good.txt").read_text() == "fine"


# ------------------------------------------------------------------ api: setup
@pytest.fixture(autouse=True)
def _fresh_default_client() -> Iterator[None]:
    api.set_default_client(None)
    yield
    api.set_default_client(None)


class _Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> _Sleeps:
    return _Sleeps()


@pytest.fixture
def client(cloud_emulator: CloudEmulator, sleeps: _Sleeps) -> Iterator[Client]:
    c = Client(
        email=CloudEmulator.EMAIL,
        password=CloudEmulator.PASSWORD,
        timeout=(5.0, 10.0),
        backoff=0.25,
        sleep=sleeps,
    )
    yield c
    c.close()


def _upload_job(client: Client, tmp_path: Path, script: str, key: str = "program/7/u/j.zip") -> str:
    work = tmp_path / "work"
    (work / "task").mkdir(parents=True, exist_ok=True)
    (work / "task" / "input.dat").write_text("21\n")
    (work / "run.sh").write_text(script)
    client.upload_file(zip_file_list(work, tmp_path / "job.zip", ["task", "run.sh"]), key)
    return key


# ------------------------------------------------------------------ api: login
@pytest.mark.parametrize("identity", ["email", "phone"])
def test_login_then_authenticated_call_uses_jwt(
    cloud_emulator: CloudEmulator, identity: str
) -> None:
    who = {"email": CloudEmulator.EMAIL, "phone": CloudEmulator.PHONE}[identity]
    client = Client(**{identity: who}, password=CloudEmulator.PASSWORD)  # type: ignore[arg-type]
    client.login()
    assert client.token
    client.sts_token()
    assert cloud_emulator.auth_seen == [("GET /data/get_sts_token", "jwt")]
    assert cloud_emulator.calls["POST /account/login"] == 1


def test_wrong_password_names_the_fix_and_hides_the_password(
    cloud_emulator: CloudEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hunter2-not-the-password"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CloudAuthError) as info:
        api.login(secret, email=CloudEmulator.EMAIL)
    err = info.value
    assert err.code == RETCODE.PWDERR
    assert "`password`" in str(err) and "remote_profile" in str(err)
    assert secret not in str(err) and secret not in repr(err.args)
    assert secret not in caplog.text


def test_unknown_user_and_missing_credentials(cloud_emulator: CloudEmulator) -> None:
    with pytest.raises(CloudAuthError) as info:
        Client(email="nobody@example.com", password="x").login()
    assert info.value.code == RETCODE.USERERR and "`email`" in str(info.value)
    with pytest.raises(CloudAuthError, match="BOHR_TICKET"):
        Client().sts_token()


@pytest.mark.parametrize("mode", ["http", "code"])
def test_expired_token_triggers_one_transparent_relogin(
    cloud_emulator: CloudEmulator, client: Client, mode: str
) -> None:
    client.login()
    old = client.token
    cloud_emulator.expire_tokens(mode=mode)  # type: ignore[arg-type]
    client.sts_token(refresh=True)
    assert client.token != old
    assert cloud_emulator.calls["POST /account/login"] == 2
    assert cloud_emulator.calls["GET /data/get_sts_token"] == 2


def test_rejected_ticket_without_credentials_fails_without_looping(
    cloud_emulator: CloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOHR_TICKET", cloud_emulator.issue_ticket())
    client = Client()
    client.sts_token()
    cloud_emulator.expire_tokens(tickets=True)
    with pytest.raises(CloudAuthError) as info:
        client.sts_token(refresh=True)
    assert info.value.http_status == 401 and "BOHR_TICKET" in str(info.value)
    assert cloud_emulator.calls["GET /data/get_sts_token"] == 2


def test_bohr_ticket_is_sent_as_brm_ticket(
    cloud_emulator: CloudEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ticket = cloud_emulator.issue_ticket()
    monkeypatch.setenv("BOHR_TICKET", ticket)
    created = api.job_create(
        "container",
        _upload_job(api.default_client(), tmp_path, "true\n"),
        {"cmd": "bash run.sh", "program_id": 7, "job_name": "via-ticket"},
    )
    body = cloud_emulator.service.jobs[created["jobId"]].body
    assert body["jobType"] == "container" and body["jobName"] == "via-ticket"
    assert body["projectId"] == 7 and body["cmd"] == "bash run.sh"
    assert api.get_jobs()["total"] == 1
    tasks = api.get_tasks(created["jobGroupId"])["items"]
    assert [t["id"] for t in tasks] == [created["jobId"]]
    assert cloud_emulator.calls["POST /account/login"] == 0
    assert {scheme for _route, scheme in cloud_emulator.auth_seen} == {"ticket"}


# ---------------------------------------------------------------- api: retries
def test_5xx_burst_is_retried_with_exponential_backoff(
    cloud_emulator: CloudEmulator, client: Client, sleeps: _Sleeps
) -> None:
    client.login()
    cloud_emulator.fail_next(2, status=502, path_prefix="/data/")
    client.sts_token()
    assert cloud_emulator.calls["GET /data/get_sts_token"] == 3
    assert sleeps == [0.25, 0.5]


def test_persistent_5xx_gives_up_after_max_retries(
    cloud_emulator: CloudEmulator, client: Client, sleeps: _Sleeps
) -> None:
    client.login()
    cloud_emulator.fail_next(100, status=503, path_prefix="/data/")
    with pytest.raises(CloudAPIError) as info:
        client.sts_token()
    assert info.value.http_status == 503
    assert cloud_emulator.calls["GET /data/get_sts_token"] == client.max_retries + 1
    assert len(sleeps) == client.max_retries


def test_job_add_is_retried_on_503_but_created_once(
    cloud_emulator: CloudEmulator, client: Client, tmp_path: Path
) -> None:
    key = _upload_job(client, tmp_path, "true\n")
    cloud_emulator.fail_next(2, status=503, path_prefix="/brm/v2/job/add")
    client.create_job(project_id=7, oss_path=key, cmd="bash run.sh")
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 3
    assert len(cloud_emulator.service.jobs) == 1


def test_job_add_is_not_retried_on_500(
    cloud_emulator: CloudEmulator, client: Client, tmp_path: Path
) -> None:
    key = _upload_job(client, tmp_path, "true\n")
    cloud_emulator.fail_next(1, status=500, path_prefix="/brm/v2/job/add")
    with pytest.raises(CloudAPIError) as info:
        client.create_job(project_id=7, oss_path=key, cmd="bash run.sh")
    assert info.value.http_status == 500
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 1


def test_slow_answer_times_out_and_is_retried(cloud_emulator: CloudEmulator) -> None:
    client = Client(
        email=CloudEmulator.EMAIL,
        password=CloudEmulator.PASSWORD,
        timeout=(2.0, 0.3),
        sleep=lambda _s: None,
    )
    client.login()
    cloud_emulator.delay_next(1.0, path_prefix="/data/")
    client.sts_token()
    assert cloud_emulator.calls["GET /data/get_sts_token"] == 2


def test_unreachable_service_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPDISPATCHER_LEBESGUE_API_HOST", "http://127.0.0.1:9/")
    client = Client(email="a@b.c", password="pw-secret", max_retries=1, sleep=lambda _s: None)
    with pytest.raises(CloudAPIError, match="DPDISPATCHER_LEBESGUE_API_HOST") as info:
        client.login()
    assert "pw-secret" not in str(info.value)


# -------------------------------------------------------------------- api: OSS
def test_small_and_multipart_upload_and_download_round_trip(
    cloud_emulator: CloudEmulator, client: Client, tmp_path: Path
) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(5000))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(250 * 1024))
    client.upload_file(small, "k/small.bin")
    client.upload_file(big, "k/big.bin", multipart_threshold=100 * 1024, part_size=100 * 1024)
    calls = cloud_emulator.calls
    assert calls["OSS PutObject"] == 1
    assert calls["OSS InitiateMultipartUpload"] == 1
    assert calls["OSS UploadPart"] == 3
    assert calls["OSS CompleteMultipartUpload"] == 1
    for src in (small, big):
        back = client.download_file(f"k/{src.name}", tmp_path / "back" / src.name)
        assert (
            hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
        )
    assert calls["GET /data/get_sts_token"] == 1  # STS credentials are cached


def test_failed_part_is_retried_alone(
    cloud_emulator: CloudEmulator, client: Client, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(250 * 1024))
    client.sts_token()
    # let the initiation and part 1 through, fail part 2 once
    cloud_emulator.fail_next(1, status=503, path_prefix=f"/{cloud_emulator.bucket}/k/", skip=2)
    client.upload_file(big, "k/big.bin", multipart_threshold=1, part_size=100 * 1024)
    assert cloud_emulator.get_object("k/big.bin") == big.read_bytes()
    calls = cloud_emulator.calls
    assert calls["OSS InitiateMultipartUpload"] == 1
    assert calls["OSS UploadPart"] == 4  # parts 1, 2 (503), 2 again, 3
    assert calls["OSS CompleteMultipartUpload"] == 1


def test_module_functions_upload_and_download(
    cloud_emulator: CloudEmulator, tmp_path: Path
) -> None:
    token = api.login(CloudEmulator.PASSWORD, email=CloudEmulator.EMAIL)
    assert token
    src = tmp_path / "job.zip"
    src.write_bytes(b"PK-not-really")
    api.upload("a/b/job.zip", str(src), config.ali_sts_endpoint(), config.ali_sts_bucket_name())
    saved = api.download("a/b/job.zip", str(tmp_path / "j.zip"), None, None)
    assert Path(saved).read_bytes() == b"PK-not-really"
    assert api.get("/data/get_sts_token", None)["AccessKeyId"].startswith("STS.")


# ------------------------------------------------------------------- api: jobs
def test_job_lifecycle_runs_for_real(
    cloud_emulator: CloudEmulator, client: Client, tmp_path: Path
) -> None:
    script = "cd task && echo $(( $(cat input.dat) * 2 )) > out.txt && echo done >&2\n"
    key = _upload_job(client, tmp_path, script)
    job = client.create_job(
        project_id=7,
        oss_path=key,
        cmd="bash run.sh",
        out_files=["task/out.txt"],
        log_files=["task/*.log"],
        input_data={"job_name": "double", "scass_type": "c2_m4_cpu", "image_name": "ubuntu"},
    )
    body = cloud_emulator.service.jobs[int(job.job_id)].body
    assert body["jobName"] == "double" and body["scassType"] == "c2_m4_cpu"
    assert body["outFiles"] == ["task/out.txt"] and body["projectId"] == 7
    cloud_emulator.wait_for_job(int(job.job_id))
    detail = client.job_detail(job.job_id)
    assert (detail.status, detail.exit_code) == (2, 0)
    assert "done" in client.job_log(job.job_id)
    result = client.download_result(detail.result_url, tmp_path / "result.zip")
    unzip_file(result, tmp_path / "back")
    assert (tmp_path / "back" / "task" / "out.txt").read_text() == "42\n"
    assert cloud_emulator.calls["POST /brm/v2/job/add"] == 1
    listing = client.list_jobs(job_group_id=job.job_group_id)
    assert [item["id"] for item in listing["items"]] == [job.job_id]


def test_result_download_carries_the_jwt_as_the_original_does(
    cloud_emulator: CloudEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dpdispatcher 1.1.0 fetches ``resultUrl`` with ``Authorization: jwt <token>``
    (tests/cloud_emulator/evidence); the result host may differ from the API host."""
    api_host = cloud_emulator.base_url.replace("127.0.0.1", "localhost") + "/"
    monkeypatch.setenv("DPDISPATCHER_LEBESGUE_API_HOST", api_host)
    client = Client(email=CloudEmulator.EMAIL, password=CloudEmulator.PASSWORD)
    key = _upload_job(client, tmp_path, "echo ok > task/out.txt\n")
    job = client.create_job(project_id=7, oss_path=key, cmd="bash run.sh", out_files=["task"])
    cloud_emulator.wait_for_job(int(job.job_id))
    cloud_emulator.reset_calls()
    client.download_result(client.job_detail(job.job_id).result_url, tmp_path / "r.zip")
    assert cloud_emulator.calls["OSS GetObject"] == 1
    assert cloud_emulator.auth_seen == [("GET /brm/v1/job/{id}", "jwt"), ("OSS GetObject", "jwt")]


def test_failed_and_forced_exit_codes(
    cloud_emulator: CloudEmulator, client: Client, tmp_path: Path
) -> None:
    key = _upload_job(client, tmp_path, "exit 3\n")
    failed = client.create_job(project_id=7, oss_path=key, cmd="bash run.sh")
    cloud_emulator.wait_for_job(int(failed.job_id))
    detail = client.job_detail(failed.job_id)
    assert (detail.status, detail.exit_code) == (-1, 3)
    key = _upload_job(client, tmp_path, "true\n", key="program/7/u/ok.zip")
    cloud_emulator.force_exit_code(9)
    forced = client.create_job(project_id=7, oss_path=key, cmd="bash run.sh")
    cloud_emulator.wait_for_job(int(forced.job_id))
    assert client.job_detail(forced.job_id).exit_code == 9


def test_kill_a_running_job(cloud_emulator: CloudEmulator, client: Client, tmp_path: Path) -> None:
    key = _upload_job(client, tmp_path, "sleep 60\n")
    job = client.create_job(project_id=7, oss_path=key, cmd="bash run.sh")
    for _ in range(500):
        if client.job_detail(job.job_id).status == 1:
            break
        time.sleep(0.01)
    client.kill_job(job.job_id)
    cloud_emulator.wait_for_job(int(job.job_id), timeout=10)
    assert client.job_detail(job.job_id).status == -1
    client.kill_job(job.job_id)  # killing twice is harmless


def test_service_errors_carry_code_and_explanation(
    cloud_emulator: CloudEmulator, client: Client
) -> None:
    with pytest.raises(CloudAPIError) as info:
        client.job_detail(424242)
    assert info.value.code == RETCODE.NODATA and "job id" in str(info.value)
    with pytest.raises(CloudAPIError) as info:
        client.create_job(project_id=7, oss_path="program/7/missing.zip", cmd="true")
    assert info.value.code == RETCODE.DATAERR and "`input_data`" in str(info.value)
    with pytest.raises(ValueError):
        client.job_detail("1; rm -rf /")


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_hostile_result_from_the_service_is_contained(
    cloud_emulator: CloudEmulator, client: Client, tmp_path: Path, kind: str
) -> None:
    key = _upload_job(client, tmp_path, "echo ok > task/out.txt\n")
    cloud_emulator.serve_hostile_result(kind)  # type: ignore[arg-type]
    job = client.create_job(project_id=7, oss_path=key, cmd="bash run.sh", out_files=["task"])
    cloud_emulator.wait_for_job(int(job.job_id))
    result = client.download_result(client.job_detail(job.job_id).result_url, tmp_path / "r.zip")
    unzip_file(result, tmp_path / "back")  # the hostile member is skipped (B8)
    assert (tmp_path / "back" / "task" / "out.txt").read_text() == "ok\n"
    assert not (tmp_path / "evil").exists()
    assert not any(p.name in ("evil", "etc_link") for p in (tmp_path / "back").rglob("*"))


def test_no_credential_reaches_the_logs(
    cloud_emulator: CloudEmulator, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dpdispatcher")
    client.login()
    token = client.token
    cloud_emulator.expire_tokens()
    cloud_emulator.fail_next(1, path_prefix="/data/")
    client.sts_token(refresh=True)
    new_token = client.token
    assert token and new_token and new_token != token
    assert token not in caplog.text and new_token not in caplog.text
    assert CloudEmulator.PASSWORD not in caplog.text and "retry 1/3" in caplog.text


def test_bohr_ticket_goes_before_the_clients_own_ticket(
    cloud_emulator: CloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As 1.1.0 (its test_dpcloudserver_client): BOHR_TICKET, when set, is the ticket
    sent; unset, the client's own ticket is; neither logs in."""
    good, stale = cloud_emulator.issue_ticket(), "not-a-ticket"
    client = Client(ticket=stale)
    monkeypatch.setenv("BOHR_TICKET", good)
    client.sts_token()
    assert client.ticket == stale and cloud_emulator.calls["POST /account/login"] == 0
    monkeypatch.setenv("BOHR_TICKET", "")
    with pytest.raises(CloudAuthError):
        client.sts_token(refresh=True)


def test_download_from_url_tries_three_times_and_leaves_no_file(
    cloud_emulator: CloudEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dpdispatcher.dpcloudserver import client as client_module
    from dpdispatcher.dpcloudserver.client import RequestInfoException

    monkeypatch.setattr(client_module.time, "sleep", lambda s: None)
    client = Client(email=CloudEmulator.EMAIL, password=CloudEmulator.PASSWORD)
    client.login()
    missing = cloud_emulator.base_url + "/no/such/result.zip"
    cloud_emulator.reset_calls()
    with pytest.raises(RequestInfoException, match="status_code=404") as info:
        client.download_from_url(missing, tmp_path / "r.zip")
    assert "/no/such/result.zip" in str(info.value) and not (tmp_path / "r.zip").exists()
    assert sum(cloud_emulator.calls.values()) == 3
    with pytest.raises(RequestInfoException, match="ConnectionError"):
        client.download_from_url("http://127.0.0.1:9/r.zip", tmp_path / "r.zip")
    assert not (tmp_path / "r.zip").exists()
