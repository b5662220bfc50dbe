"""A tiny but complete ``dpgen run`` case: CH4 in a box, stand-in dp / lmp / vasp.

Everything DP-GEN needs to run one full iteration (train, model_devi, fp) and the
training of the next one is generated here: an initial deepmd/npy data set and a POSCAR
(written with dpdata inside the DP-GEN venv), ``param.json`` (shaped like DP-GEN's own
``examples/run/dp2.x-lammps-vasp`` example), ``machine.json`` (DP-GEN's own
``examples/machine/DeePMD-kit-1.x/machine-local.json`` from its sdist, with only the
commands, roots and the fp ``cvasp``/``mark_failure`` keys changed), and three stand-in
programs.

The stand-ins are small Python scripts run by the venv's interpreter. Each appends one
line ``<program> <start|end> <task> <args>`` to a counter file **outside** the work tree
(so a task that ran twice is seen even when its directory was recreated), checks the
files DP-GEN forwarded, and writes exactly the files DP-GEN asks back: ``dp`` the
checkpoint, ``lcurve.out`` and ``frozen_model.pb``; ``lmp`` ``model_devi.out`` (forces
deviation inside the trust window, so every frame becomes an fp candidate) and
``traj/*.lammpstrj`` from ``conf.lmp``; ``vasp`` an ``OUTCAR`` (zero forces) that dpdata
parses, so ``post_fp`` collects the labels and the next training forwards them.
``vasp`` can be held at a gate file to let a test kill ``dpgen`` mid-stage.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests._venvs import Venv

TYPE_MAP = ["H", "C"]
NUMB_MODELS = 4
#: md steps 0..20 dumped every 10 -> 3 frames per md task, 2 temperatures -> 2 md tasks
MD_TEMPS = [100, 200]
FP_TASK_MAX = 4

CH4_POSCAR = """\
CH4
1.0
10.0 0.0 0.0
0.0 10.0 0.0
0.0 0.0 10.0
H C
4 1
Cartesian
5.63 5.63 5.63
4.37 4.37 5.63
4.37 5.63 4.37
5.63 4.37 4.37
5.00 5.00 5.00
"""

INCAR = """\
PREC = A
ENCUT = 400
ISYM = 0
ALGO = fast
EDIFF = 1E-6
LREAL = A
NPAR = 1
KPAR = 1
NELMIN = 4
ISIF = 2
ISMEAR = 1
SIGMA = 0.25
IBRION = -1
NSW = 0
LWAVE = F
LCHARG = F
PSTRESS = 0
KSPACING = 0.16
KGAMMA = .FALSE.
"""

_PREPARE = """\
import sys, numpy as np, dpdata
root = sys.argv[1]
sys_ = dpdata.System(root + "/POSCAR", fmt="vasp/poscar", type_map={type_map!r})
frames = []
for i in range(4):
    s = sys_.copy()
    s.data["coords"] = s.data["coords"] + 0.01 * i
    frames.append(s)
data = {{k: v for k, v in sys_.data.items()}}
data["coords"] = np.concatenate([f.data["coords"] for f in frames])
data["cells"] = np.concatenate([f.data["cells"] for f in frames])
data["energies"] = np.full(4, -20.0)
data["forces"] = np.zeros_like(data["coords"])
data["orig"] = np.zeros(3)
labeled = dpdata.LabeledSystem(data=data)
labeled.to_deepmd_npy(root + "/init/CH4/deepmd", set_size=4)
"""

_HEADER = """\
#!{python}
import os, sys, time
COUNTER = {counter!r}
GATE = {gate!r}
# "<submission dir>/<task dir>": the same task dir name recurs in every iteration
task = "/".join(os.getcwd().split(os.sep)[-2:])

def record(what):
    with open(COUNTER, "a") as f:
        f.write(" ".join([PROGRAM, what, task, *sys.argv[1:]]) + "\\n")
    with open(COUNTER + ".jobs", "a") as f:  # which scheduler job ran it (Slurm's id)
        f.write(" ".join([PROGRAM, what, task, os.environ.get("SLURM_JOB_ID", "-")]) + "\\n")

def need(*names):
    missing = [n for n in names if not os.path.exists(n)]
    if missing:
        sys.exit(PROGRAM + ": not forwarded: " + " ".join(missing))

"""

DP = """\
PROGRAM = "dp"
record("start")
if sys.argv[1] == "train":
    need(sys.argv[2])
    import json
    training = json.load(open(sys.argv[2]))["training"]
    systems = training.get("training_data", training)["systems"]
    record("systems:" + str(len(systems)))
    need(*[os.path.join(s, "type.raw") for s in systems])  # forward_common_files arrived
    for name in ("model.ckpt.meta", "model.ckpt.index", "model.ckpt.data-00000-of-00001"):
        open(name, "w").write("stand-in checkpoint\\n")
    open("checkpoint", "w").write('model_checkpoint_path: "model.ckpt"\\n')
    open("lcurve.out", "w").write("# step rmse_trn\\n0 1.0\\n")
elif sys.argv[1] == "freeze":
    need("model.ckpt.index")
    open("frozen_model.pb", "w").write("stand-in model\\n")
else:
    sys.exit("dp: unexpected arguments " + " ".join(sys.argv[1:]))
record("end")
"""

LMP = """\
PROGRAM = "lmp"
record("start")
need("conf.lmp", "input.lammps", "traj")
need(*[os.path.join("..", f"graph.{{i:03d}}.pb") for i in range({numb_models})])
lines = open("conf.lmp").read().splitlines()
box = [l.split()[:2] for l in lines if l.strip().endswith(("xlo xhi", "ylo yhi", "zlo zhi"))]
start = next(i for i, l in enumerate(lines) if l.strip().startswith("Atoms"))
atoms = [l.split() for l in lines[start + 1:] if l.strip()]
with open("model_devi.out", "w") as out:
    out.write("#       step         max_devi_v         min_devi_v         avg_devi_v"
              "         max_devi_f         min_devi_f         avg_devi_f\\n")
    for step in (0, 10, 20):
        out.write(f"{{step:12d}} 0.01 0.01 0.01 0.10 0.05 0.08\\n")
        with open(os.path.join("traj", f"{{step}}.lammpstrj"), "w") as d:
            d.write(f"ITEM: TIMESTEP\\n{{step}}\\nITEM: NUMBER OF ATOMS\\n{{len(atoms)}}\\n")
            d.write("ITEM: BOX BOUNDS pp pp pp\\n")
            d.write("".join(f"{{lo}} {{hi}}\\n" for lo, hi in box))
            d.write("ITEM: ATOMS id type x y z\\n")
            for a in atoms:
                x, y, z = (float(v) + 0.001 * step for v in a[2:5])
                d.write(f"{{a[0]}} {{a[1]}} {{x:.6f}} {{y:.6f}} {{z:.6f}}\\n")
open("log.lammps", "w").write("stand-in lammps\\n")
record("end")
"""

VASP = """\
PROGRAM = "vasp"
record("start")
need("POSCAR", "INCAR", "POTCAR", "cvasp.py")
if os.path.basename(os.getcwd()).startswith("task."):
    need("KPOINTS")  # dpgen run's fp forwards it; init_bulk's relax and md do not
if GATE:
    deadline = time.time() + 300
    while not os.path.exists(GATE) and time.time() < deadline:
        time.sleep(0.1)
lines = open("POSCAR").read().splitlines()
scale = float(lines[1])
cell = [[float(v) * scale for v in lines[i].split()[:3]] for i in (2, 3, 4)]
names, counts = lines[5].split(), [int(v) for v in lines[6].split()]
direct = lines[7].strip().lower().startswith("d")
coords = []
for l in lines[8:8 + sum(counts)]:
    f = [float(v) for v in l.split()[:3]]
    if direct:
        f = [sum(f[k] * cell[k][j] for k in range(3)) for j in range(3)]
    else:
        f = [v * scale for v in f]
    coords.append(f)
out = []
for n in names:
    out.append(f" POTCAR:    PAW_PBE {n} 01Jan2000")
for n in names:
    out.append(f" POTCAR:    PAW_PBE {n} 01Jan2000")
out += ["   NELM   =     60;   NELMIN=  4; NELMDL= -5     electronic SC-loop",
        "   NWRITE =      2    write-flag",
        "   ions per type =  " + " ".join(str(c) for c in counts)]
incar = dict(l.replace(" ", "").split("=", 1) for l in open("INCAR") if "=" in l)
# one ionic step per NSW (DP-GEN's init_bulk checks the count), one for a single point
for step in range(max(1, int(incar.get("NSW", "0")))):
    out += [f"------------------------------ Iteration {step + 1:6d}(   1)  ---------------",
            " VOLUME and BASIS-vectors are now :",
            " -----------------------------------------------------------------------------",
            "  energy-cutoff  :      400.00",
            "  volume of cell :     1000.00",
            "      direct lattice vectors                 reciprocal lattice vectors"]
    out += ["  " + " ".join(f"{v:.9f}" for v in row) + "  0.0 0.0 0.0" for row in cell]
    out += [" POSITION                                       TOTAL-FORCE (eV/Angst)",
            " ---------------------------------------------------------------------------"]
    out += ["  " + " ".join(f"{v:.5f}" for v in c) + "  0.000000 0.000000 0.000000"
            for c in coords]
    out += ["  free  energy   TOTEN  =       -20.00000000 eV", ""]
open("OUTCAR", "w").write("\\n".join(out))
open("vasprun.xml", "w").write("<modeling><!-- stand-in --></modeling>\\n")
open("CONTCAR", "w").write("\\n".join(lines) + "\\n")  # "relaxed": unchanged
record("end")
"""


def write_standins(
    bindir: Path, venv: Venv, counter: Path, gate: Path | None, python: str | None = None
) -> None:
    """Write the ``dp``, ``lmp`` and ``vasp`` stand-ins into ``bindir``.

    They need only the standard library: ``python`` (default: the venv's interpreter)
    may be any Python 3, e.g. the system's for a cluster user who cannot read the venv.
    """
    bindir.mkdir(parents=True, exist_ok=True)
    header = _HEADER.format(
        python=python or venv.python, counter=str(counter), gate=str(gate) if gate else ""
    )
    bodies = {"dp": DP, "lmp": LMP.format(numb_models=NUMB_MODELS), "vasp": VASP}
    for name, body in bodies.items():
        path = bindir / name
        path.write_text(header + body)
        path.chmod(0o755)


def param(work: Path) -> dict[str, object]:
    """``param.json``, shaped like DP-GEN's dp2.x-lammps-vasp CH4 example."""
    return {
        "type_map": TYPE_MAP,
        "mass_map": [1, 12],
        "init_data_prefix": str(work / "init"),
        "init_data_sys": ["CH4/deepmd"],
        "sys_configs_prefix": str(work),
        "sys_configs": [["POSCAR"]],
        "numb_models": NUMB_MODELS,
        "default_training_param": {
            "model": {
                "type_map": TYPE_MAP,
                "descriptor": {
                    "type": "se_e2_a",
                    "sel": [16, 4],
                    "rcut_smth": 0.5,
                    "rcut": 5.0,
                    "neuron": [10],
                    "axis_neuron": 4,
                    "seed": 1,
                },
                "fitting_net": {"neuron": [10], "seed": 1},
            },
            "learning_rate": {"type": "exp", "start_lr": 0.001, "decay_steps": 100},
            "loss": {
                "start_pref_e": 0.02,
                "limit_pref_e": 2,
                "start_pref_f": 1000,
                "limit_pref_f": 1,
                "start_pref_v": 0.0,
                "limit_pref_v": 0.0,
            },
            "training": {
                "numb_steps": 10,
                "disp_file": "lcurve.out",
                "disp_freq": 10,
                "save_freq": 10,
                "seed": 1,
            },
        },
        "model_devi_dt": 0.002,
        "model_devi_skip": 0,
        "model_devi_f_trust_lo": 0.05,
        "model_devi_f_trust_hi": 0.15,
        "model_devi_clean_traj": False,
        "model_devi_jobs": [
            {
                "sys_idx": [0],
                "temps": MD_TEMPS,
                "press": [1.0],
                "trj_freq": 10,
                "nsteps": 20,
                "ensemble": "nvt",
                "_idx": "00",
            },
        ],
        "fp_style": "vasp",
        "shuffle_poscar": False,
        "fp_task_max": FP_TASK_MAX,
        "fp_task_min": 1,
        "fp_pp_path": str(work),
        "fp_pp_files": ["POTCAR_H", "POTCAR_C"],
        "fp_incar": str(work / "INCAR"),
        "cvasp": True,
    }


#: the program each DP-GEN stage runs
STAGES = {"train": "dp", "model_devi": "lmp", "fp": "vasp"}


def _adapted(
    example: Path, bindir: Path, edit: Callable[[str, dict[str, Any]], None]
) -> dict[str, object]:
    """DP-GEN's example machine file with the stand-in commands, each stage's section
    edited by ``edit(stage, section)``, and DP-GEN's own keys in the fp resources."""
    mdata: dict[str, object] = json.loads(example.read_text())
    for stage, program in STAGES.items():
        section = mdata[stage]
        assert isinstance(section, dict)
        section["command"] = str(bindir / program)
        edit(stage, section)
    fp = mdata["fp"]
    assert isinstance(fp, dict)
    # what DP-GEN users put in fp resources (DP-GEN reads both; issue 8)
    fp["resources"]["cvasp"] = True
    fp["resources"]["mark_failure"] = True
    return mdata


def machine(example: Path, bindir: Path, remote_root: Path) -> dict[str, object]:
    """DP-GEN's ``machine-local.json`` example with stand-in commands and our roots."""

    def edit(stage: str, section: dict[str, Any]) -> None:
        if "remote_root" in section["machine"]:
            section["machine"]["remote_root"] = str(remote_root / stage)
        section["resources"]["gpu_per_node"] = 0
        section["resources"].pop("module_list", None)

    return _adapted(example, bindir, edit)


def slurm_ssh_machine(
    example: Path, bindir: Path, remote_root: str, profile: dict[str, object]
) -> dict[str, object]:
    """DP-GEN's ``machine-slurm-qe.json`` example (Slurm over SSH) adapted to a cluster.

    What a user edits in that example: the stand-in commands, the roots, the
    ``remote_profile`` (host, port, user, key), the partition, and the requests this
    one-node, two-CPU test cluster cannot grant (``--mem=16G``, ``--exclude=``, GPUs,
    more CPUs than it has, the example's placeholder ``source_list`` / ``module_list``).
    """

    def edit(stage: str, section: dict[str, Any]) -> None:
        section["machine"]["remote_root"] = f"{remote_root}/{stage}"
        section["machine"]["remote_profile"].update(profile)
        res = section["resources"]
        res.update(
            queue_name="normal", gpu_per_node=0, cpu_per_node=1, source_list=[], module_list=[]
        )
        res["custom_flags"] = [
            f
            for f in res["custom_flags"]
            if not f.startswith(("#SBATCH --mem", "#SBATCH --exclude"))
        ]

    return _adapted(example, bindir, edit)


def prepare(
    work: Path,
    venv: Venv,
    example: Path,
    bindir: Path,
    remote_root: Path,
    mdata: dict[str, object] | None = None,
) -> None:
    """Write every input of the case into ``work`` (``mdata``: the machine file's
    content, by default :func:`machine` of ``example``)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "POSCAR").write_text(CH4_POSCAR)
    (work / "INCAR").write_text(INCAR)
    for name in TYPE_MAP:
        (work / f"POTCAR_{name}").write_text(f"  PAW_PBE {name} 01Jan2000\n stand-in\n")
    subprocess.run(
        [str(venv.python), "-c", _PREPARE.format(type_map=TYPE_MAP), str(work)],
        check=True,
        env=venv.env(),
        capture_output=True,
        timeout=300,
    )
    (work / "param.json").write_text(json.dumps(param(work), indent=2))
    if mdata is None:
        mdata = machine(example, bindir, remote_root)
    (work / "machine.json").write_text(json.dumps(mdata, indent=2))


def counts(
    counter: Path, program: str, event: str = "start", first_arg: str | None = None
) -> dict[str, int]:
    """``task -> times`` ``program`` recorded ``event`` (optionally with ``first_arg``)."""
    result: dict[str, int] = {}
    if not counter.is_file():
        return result
    for line in counter.read_text().splitlines():
        prog, what, task, *args = line.split()
        if prog != program or what != event:
            continue
        if first_arg is not None and (not args or args[0] != first_arg):
            continue
        result[task] = result.get(task, 0) + 1
    return result


def slurm_job_ids(counter: Path, program: str) -> dict[str, str]:
    """``task -> SLURM_JOB_ID`` of the job in which ``program`` started it (``-``: none)."""
    jobs = counter.with_name(counter.name + ".jobs")
    return {
        task: job
        for prog, what, task, job in (line.split() for line in jobs.read_text().splitlines())
        if prog == program and what == "start"
    }


def prepare_init_bulk(
    work: Path, example_dir: Path, example: Path, bindir: Path, remote_root: Path
) -> None:
    """DP-GEN's own ``examples/init/ch4.json`` case with its POSCAR and INCARs."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("ch4.json", "CH4.POSCAR", "INCAR_methane.rlx", "INCAR_methane.md"):
        (work / name).write_bytes((example_dir / name).read_bytes())
    for name in TYPE_MAP:
        (work / f"POTCAR_{name}").write_text(f"  PAW_PBE {name} 01Jan2000\n stand-in\n")
    (work / "machine.json").write_text(json.dumps(machine(example, bindir, remote_root), indent=2))
