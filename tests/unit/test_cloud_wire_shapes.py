"""The request shapes of the Bohrium client (pure functions of ``dpcloudserver._wire``).

Expected shapes are those of the original 1.1.0 client, recorded in
``tests/cloud_emulator/README.md``; ``test_cloud_wire.py`` checks them live.
"""

from __future__ import annotations

import json

import pytest

from dpdispatcher.dpcloudserver import config
from dpdispatcher.dpcloudserver._wire import (
    auth_headers,
    job_add_body,
    list_query,
    login_body,
    oss_paths_of,
)
from dpdispatcher.dpcloudserver.client import oss_url

URL = "https://dpcloudserver.oss-cn-shenzhen.aliyuncs.com/program/1/u/h.zip"


def body(**input_data: object) -> dict[str, object]:
    return job_add_body(
        project_id=1,
        oss_url=URL,
        cmd="bash .h.sub",
        out_files=["t/out", "h_last_err_file"],
        log_files=["t/log"],
        input_data=input_data,
        job_group_id=77,
    )


def test_job_add_body_has_the_keys_and_types_of_the_original() -> None:
    got = body(job_type="container", scass_type="c2", image_name="img", job_name="n")
    assert list(got) == [
        "jobType", "ossPath", "projectId", "scassType", "imageName", "jobName",
        "jobResources", "command", "backwardFiles", "logFiles", "outFiles", "cmd",
    ]  # fmt: skip
    assert got["ossPath"] == got["jobResources"] == [URL]
    assert got["command"] == got["cmd"] == "bash .h.sub"
    assert got["backwardFiles"] == got["outFiles"] == ["t/out", "h_last_err_file"]
    assert got["logFiles"] == ["t/log"]


def test_job_group_only_when_grouped() -> None:
    assert "jobGroupId" not in body()
    assert "jobGroupId" not in body(grouped=False)
    grouped = body(grouped=True)
    assert grouped["jobGroupId"] == 77 and grouped["grouped"] is True


def test_input_data_extras_as_the_original_treats_them() -> None:
    extra = "https://x.example/dataset.zip"
    got = body(job_resources=[extra], backward_files=["mine"], log_file="my.log",
               checkpoint_files="sync_files", GPU=1)  # fmt: skip
    assert got["ossPath"] == got["jobResources"] == [extra, URL]
    assert got["outFiles"][0] == "mine" and got["logFiles"] == ["my.log"]
    assert got["checkpointFiles"] == ["*"] and got["GPU"] == 1
    assert not any("_" in key for key in got)


def test_input_data_is_not_modified() -> None:
    data = {"job_resources": ["a"], "job_type": "container"}
    job_add_body(project_id=1, oss_url="u", cmd="c", out_files=[], log_files=[], input_data=data)
    assert data == {"job_resources": ["a"], "job_type": "container"}


def test_login_listing_and_headers() -> None:
    assert login_body("13800000000", "pw") == {"email": "13800000000", "password": "pw"}
    assert list_query(1, 30, 501) == {"groupId": 501, "page": 1, "pageSize": 30}
    assert list_query(2, 30, None) == {"page": 2, "pageSize": 30}
    assert auth_headers("T", None) == {"Authorization": "jwt T", "Brm-Ticket": ""}
    assert auth_headers(None, "tk") == {"Authorization": "jwt ", "Brm-Ticket": "tk"}


def test_oss_paths_of_a_listed_job_whose_input_data_is_a_string() -> None:
    item = {"id": 5, "inputData": json.dumps({"ossPath": [URL], "jobType": "container"})}
    assert oss_paths_of(item) == [URL]
    assert oss_paths_of({"id": 5, "inputData": {"ossPath": [URL]}}) == [URL]
    assert oss_paths_of({"id": 5, "inputData": "not json"}) == []
    assert oss_paths_of({"id": 5}) == []


def test_the_bucket_url_is_the_originals_default_and_honours_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "DPDISPATCHER_LEBESGUE_ALI_OSS_BUCKET_URL",
        "DPDISPATCHER_LEBESGUE_ALI_STS_BUCKET_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DPDISPATCHER_LEBESGUE_ALI_STS_BUCKET_NAME", "other")
    assert config.ali_oss_bucket_url() == "https://dpcloudserver.oss-cn-shenzhen.aliyuncs.com/"
    monkeypatch.setenv("DPDISPATCHER_LEBESGUE_ALI_OSS_BUCKET_URL", "http://127.0.0.1:9/b")
    assert oss_url("program/1/k.zip") == "http://127.0.0.1:9/b/program/1/k.zip"


def test_a_job_id_as_1_1_0_records_it_names_the_cloud_job() -> None:
    from dpdispatcher.dpcloudserver.client import _path_id

    assert _path_id("1001:job_group_id:501") == "1001"
    assert _path_id(1001) == "1001"
    with pytest.raises(ValueError, match="invalid job id"):
        _path_id("1/../2")
