"""Golden Fugaku and JH UniScheduler scripts over a matrix of resources.

Regenerate after an intended change with ``UPDATE_GOLDEN=1`` and review the diff of
``tests/fixtures/scripts/{fugaku,jh_unischeduler}/``. A missing golden file is a failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import golden
from tests.golden import make_job

SCRIPTS = Path(__file__).parent.parent / "fixtures" / "scripts"
FLAVOURS = {"fugaku": "Fugaku", "jh_unischeduler": "JH_UniScheduler"}

#: case -> (number of tasks, task_name, resources keywords)
COMMON: dict[str, tuple[int, str | None, dict[str, Any]]] = {
    "cpu": (3, None, {}),
    "queue_multi_node": (2, None, {"number_node": 4, "cpu_per_node": 48, "queue_name": "small"}),
    "para_deg_custom_flags": (
        4,
        None,
        {"para_deg": 2, "custom_flags": ["#PJM -L elapse=1:00:00", "#JSUB -W 60"]},
    ),
    "single_named_task": (1, "relax Fe/bcc", {}),
}
SPECIFIC: dict[str, dict[str, tuple[int, str | None, dict[str, Any]]]] = {
    "fugaku": {},
    "jh_unischeduler": {
        "gpu": (2, None, {"gpu_per_node": 2, "queue_name": "gpu"}),
        "custom_gpu_line": (
            1,
            None,
            {"gpu_per_node": 2, "kwargs": {"custom_gpu_line": '#JSUB -gpgpu "2 type=A100"'}},
        ),
    },
}
CASES = [(fl, case) for fl in FLAVOURS for case in [*COMMON, *SPECIFIC[fl]]]


def spec(flavour: str, case: str) -> tuple[int, str | None, dict[str, Any]]:
    return COMMON.get(case) or SPECIFIC[flavour][case]


@pytest.mark.parametrize(("flavour", "case"), CASES)
def test_golden_scripts(flavour: str, case: str, tmp_path: Path) -> None:
    machine = golden.make_machine(FLAVOURS[flavour], tmp_path)
    text, script, body = golden.render(machine, make_job(*spec(flavour, case)))
    for part in (script, body):
        subprocess.run(["bash", "-n"], input=part, text=True, check=True)
    golden.check_golden(SCRIPTS / flavour / f"{case}.sub", text)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_golden_file_has_a_case(flavour: str) -> None:
    known = {case for fl, case in CASES if fl == flavour}
    stale = {p.stem for p in (SCRIPTS / flavour).glob("*.sub")} - known
    assert not stale, f"golden files without a case: {sorted(stale)}"
