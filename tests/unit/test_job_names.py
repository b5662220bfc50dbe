"""Job names on directive lines are made as the original 1.1.0 makes them.

Every expected value below was observed by rendering headers with the original
dpdispatcher 1.1.0 (``tests/compat/render_headers.py`` in a throwaway venv); the
compat test checks the same against the live original.
"""

from __future__ import annotations

import pytest

from dpdispatcher._script.quoting import scheduler_job_name

JOB_HASH = "eab595bbcafe"


@pytest.mark.parametrize(
    ("raw", "slurm_lsf", "sge", "pbs_torque"),
    [
        ("relax Fe/bcc #1", "relax-Fe-bcc-1", "relax-Fe-bcc-1", "relax-Fe-bcc-1"),
        ("1st-try", "1st-try", "j-1st-try", "j-1st-try"),
        ("__x__", "x", "x", "x"),
        ("a.b_c-d", "a.b_c-d", "a.b_c-d", "a.b_c-d"),
        ("ünï cödé", "n-c-d", "n-c-d", "n-c-d"),
        ("job[1]", "job-1", "job-1", "job-1"),
        ("a  b", "a-b", "a-b", "a-b"),
        ("###", "dp-eab595bb", "dp-eab595bb", "dp-eab595bb"),
        ("x" * 40, "x" * 40, "x" * 40, "xxxxxx-47372a7b"),
        ("a_rather_long_job_name_for_pbs", "a_rather_long_job_name_for_pbs",
         "a_rather_long_job_name_for_pbs", "a_rath-789ceaa9"),
        ("y" * 200, "y" * 119 + "-b33e5833", "y" * 119 + "-b33e5833", "yyyyyy-b33e5833"),
        ("long name " * 20, None, None, None),
    ],
)  # fmt: skip
def test_names_as_the_original_writes_them(
    raw: str, slurm_lsf: str | None, sge: str | None, pbs_torque: str | None
) -> None:
    if slurm_lsf is None:  # only the digest is checked: of the name as given
        assert scheduler_job_name(raw, JOB_HASH).endswith("-long-name-659d435a")
        return
    assert scheduler_job_name(raw, JOB_HASH) == slurm_lsf
    assert scheduler_job_name(raw, JOB_HASH, letter_first=True) == sge
    assert scheduler_job_name(raw, JOB_HASH, 15, letter_first=True) == pbs_torque


@pytest.mark.parametrize("raw", ["x\n#SBATCH --uid=0", "a b", "q'\"$(rm)`", "\t\r\0"])
def test_a_name_cannot_leave_its_directive(raw: str) -> None:
    name = scheduler_job_name(raw, JOB_HASH)
    assert name and all(c.isalnum() or c in "_.-" for c in name)


# Observed with the original 1.1.0 (``Job(...).get_scheduler_name``, throwaway venv).
@pytest.mark.parametrize(
    ("task_name", "free", "pbs"),
    [
        ("water 001", "water-001", "water-001"),
        ("123 very long calculation alpha", "123-very-long-calculation-alpha", "j-123-33e54752"),
        ("###", "dp-a20ed72b", "dp-a20ed72b"),
        ("", "dp-defd5ebd", "dp-defd5ebd"),
        (None, None, None),
    ],
)
def test_job_get_scheduler_name_as_in_1_1_0(
    task_name: str | None, free: str | None, pbs: str | None
) -> None:
    from dpdispatcher import Job, Resources, Task

    job = Job([Task("true", ".", task_name=task_name)], resources=Resources(1, 1, 0, "", 1))
    assert job.get_scheduler_name(128) == free
    assert job.get_scheduler_name(15, require_alpha_prefix=True) == pbs


def test_grouped_job_has_no_scheduler_name() -> None:
    from dpdispatcher import Job, Resources, Task

    tasks = [Task("true", "a", task_name="x"), Task("true", "b", task_name="y")]
    assert Job(tasks, resources=Resources(1, 1, 0, "", 2)).get_scheduler_name(128) is None


def test_sge_resources_leave_an_omitted_job_name_out() -> None:
    """1.1.0 loads SGE kwargs ``{}`` as ``{'pe_name': 'mpi'}`` (no ``job_name`` key)."""
    from dpdispatcher import Resources

    res = Resources.load_from_dict(
        {"batch_type": "SGE", "number_node": 1, "cpu_per_node": 1, "gpu_per_node": 0,
         "queue_name": "", "group_size": 1, "kwargs": {}}
    )  # fmt: skip
    assert res.kwargs == {"pe_name": "mpi"}
