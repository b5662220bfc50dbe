"""The original 1.0.x / 1.1.0 submission hashes, recomputed offline (fixture: README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpdispatcher import Machine, Resources, Submission, Task, _legacy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "original_hashes"
CASES = json.loads((FIXTURES / "cases.json").read_text())


def build(case: dict) -> Submission:
    sub = Submission(
        case["work_base"],
        Machine.load_from_dict(case["machine"]),
        Resources.load_from_dict(case["resources"]),
        forward_common_files=case.get("forward_common_files", []),
        backward_common_files=case.get("backward_common_files", []),
        task_list=[Task.load_from_dict(t) for t in case["tasks"]],
    )
    sub.generate_jobs()
    return sub


@pytest.mark.parametrize(("version", "release"), [("1.1.0", "1.1.0"), ("1.0.3", "1.0.x")])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_recipe_gives_the_hash_the_original_gave(tmp_path, monkeypatch, case, version, release):
    recorded = json.loads((FIXTURES / f"hashes-{version}.json").read_text())
    want = {h["name"]: h for h in recorded["hashes"]}[case["name"]]
    # _abs_work_base is taken against the working directory, as the original did
    monkeypatch.setattr("os.path.abspath", _abspath_from(case["cwd"]))
    sub = build(case)
    assert [j.job_hash for j in sub.belonging_jobs] == want["job_hashes"]
    assert (release, want["submission_hash"]) in _legacy.legacy_hashes(sub)


def _abspath_from(cwd: str):
    import posixpath

    def abspath(path: str) -> str:
        return posixpath.normpath(path if posixpath.isabs(path) else posixpath.join(cwd, path))

    return abspath


def test_archive_chunk_size_zero_is_left_out_by_1_1_0_and_unknown_keys_by_both():
    profile = {"hostname": "h", "username": "u", "archive_chunk_size": 0, "known_hosts": "/k"}
    new = _legacy.legacy_profile("1.1.0", "SSHContext", profile)
    old = _legacy.legacy_profile("1.0.x", "SSHContext", dict(profile, archive_chunk_size=5))
    assert "archive_chunk_size" not in new and "known_hosts" not in new
    assert "archive_chunk_size" not in old
    assert list(new) == [
        "hostname", "username", "port", "key_filename", "passphrase", "timeout",
        "totp_secret", "tar_compress", "look_for_keys", "execute_command", "proxy_command",
    ]  # fmt: skip
    kept = _legacy.legacy_profile("1.1.0", "SSHContext", dict(profile, archive_chunk_size=9))
    assert list(kept)[:3] == ["hostname", "username", "archive_chunk_size"]
