"""Fugaku (Fujitsu TCS: pjsub, pjstat, pjdel) and JH UniScheduler (jsub, jjobs, jctrl) fakes.

Loaded by ``fakesched.py`` for the flavours ``fugaku`` and ``jh``; jobs really run under
its supervisor, like the other flavours. JH UniScheduler's tools are LSF's under other
names (its manual documents the same options, table and states), so ``jh`` reuses the
LSF implementation with ``#JSUB`` directives and ``jctrl kill``. The Fugaku formats
follow the public outputs in ``tests/fixtures/scheduler_output/fugaku/`` (see its
README); wording no public source shows is marked "invented" below.
"""

# ruff: noqa: UP031
from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from types import ModuleType
from typing import Any

Command = Callable[[Any, list[str]], int]

PJSUB_OPTS = {
    "-L": 1, "--mpi": 1, "-N": 1, "--name": 1, "-o": 1, "-e": 1, "-j": 0, "-s": 0,
    "-S": 0, "-X": 0, "-g": 1, "-x": 1, "-z": 1, "-m": 1, "--mail-list": 1,
}  # fmt: skip
PJSTAT_OPTS = {"-H": 0, "-v": 0, "-E": 0, "-S": 0, "--choose": 1, "--filter": 1}
#: --choose keys -> (header, width)
PJSTAT_COLUMNS = {
    "jid": ("JOB_ID", 10), "jnam": ("JOB_NAME", 10), "md": ("MD", 2), "st": ("ST", 3),
    "usr": ("USER", 8), "ec": ("EC", 3), "ermsg": ("REASON", 30), "rscg": ("RSC_GRP", 8),
}  # fmt: skip
DEFAULT_COLUMNS = ["jid", "jnam", "md", "st", "usr"]
#: invented: no public source shows a PJM client that cannot reach its server
TRANSIENT = "[ERR.] PJM 0010 %s Connection refused"


def commands(fs: ModuleType) -> dict[tuple[str, str], Command]:
    """The command table of the two flavours, bound to the ``fakesched`` module ``fs``."""

    def jctrl(st: Any, argv: list[str]) -> int:
        if argv[:1] != ["kill"]:
            fs.err("Usage: jctrl kill|stop|resume|... [options] jobId ...")
            return 255
        return int(fs.lsf_bkill(st, argv[1:]))

    return {
        ("jh", "jsub"): fs.lsf_bsub,
        ("jh", "jjobs"): fs.lsf_bjobs,
        ("jh", "jctrl"): jctrl,
        ("fugaku", "pjsub"): lambda st, argv: pjsub(fs, st, argv),
        ("fugaku", "pjstat"): lambda st, argv: pjstat(fs, st, argv),
        ("fugaku", "pjdel"): lambda st, argv: pjdel(fs, st, argv),
    }


def _resources(value: str) -> dict[str, str]:
    """``-L "rscgrp=small,node=2"`` -> ``{"rscgrp": "small", "node": "2"}``."""
    out = {}
    for part in value.split(","):
        key, _, val = part.partition("=")
        out[key.strip()] = val.strip()
    return out


def pjsub(fs: ModuleType, st: Any, argv: list[str]) -> int:
    try:
        cli, rest = fs.getopt_long(argv, PJSUB_OPTS)
    except fs.OptError as e:
        fs.err("[ERR.] PJM 0004 pjsub Invalid option: %s" % e.opt)  # invented wording
        return 1
    if not rest:
        fs.err("[ERR.] PJM 0005 pjsub Job script is not specified.")  # invented wording
        return 1
    text, problem = fs.read_script(rest[0])
    if text is None:
        fs.err("[ERR.] PJM 0006 pjsub %s: %s" % (rest[0], problem))  # invented wording
        return 1
    try:
        directives, _ = fs.getopt_long(fs.directive_tokens(text, "#PJM"), PJSUB_OPTS)
    except (fs.OptError, ValueError):
        fs.err("[ERR.] PJM 0004 pjsub Invalid option in a #PJM line.")  # invented wording
        return 1
    job = fs.new_job(st, name=os.path.basename(rest[0]), command=rest[0],
                     submit_args=" ".join(shlex.quote(a) for a in argv))  # fmt: skip
    for key, value in directives + cli:
        if key == "-L":
            res = _resources(value)
            if "rscgrp" in res:
                job["queue"], job["queue_explicit"] = res["rscgrp"], True
            if res.get("node", "1").isdigit():
                job["slots"] = int(res.get("node", "1"))
        elif key in ("-N", "--name"):
            job["name"] = value
        elif key == "-o":
            job["o_arg"] = value
        elif key == "-e":
            job["e_arg"] = value
        elif key == "-j":
            job["join"] = True
    if st.inject_failure("submit"):
        fs.err(TRANSIENT % "pjsub")
        return 1
    if job["queue"] == fs.BAD_QUEUE:
        # the public refusal form: an [ERR.] line on stdout with exit code 0
        fs.out("[ERR.] PJM 0049 pjsub Specified resource group is not available.")
        return 0
    job = fs.submit_common(st, job, text)
    fs.out("[INFO] PJM 0000 pjsub Job %d submitted." % job["id"])
    return 0


def _state(fs: ModuleType, job: dict[str, Any]) -> str:
    state = job["state"]
    if state == "queued":
        return "QUE"
    if state == "held":
        return "HLD"
    if state == "running":
        return "RUN"
    if state == "exiting":
        return "RNO"
    if state == "error":
        return "ERR"
    return "CCL" if job.get("killed") else "EXT"


def _cell(job: dict[str, Any], key: str, state: str) -> str:
    if key == "jid":
        return str(job["id"])
    if key == "st":
        return state
    if key == "ec":
        return str(job.get("exit_code") or 0)
    if key == "ermsg":
        return "COMPLETED" if state == "EXT" else "-"
    return str({"jnam": job["name"], "md": "NM", "usr": job["user"],
                "rscg": job["queue"]}.get(key, "-"))  # fmt: skip


def pjstat(fs: ModuleType, st: Any, argv: list[str]) -> int:
    args = [a for a in argv if "=" not in a or a.startswith("-")]  # day=3 etc. are filters
    try:
        opts, ids = fs.getopt_long(args, PJSTAT_OPTS)
    except fs.OptError as e:
        fs.err("[ERR.] PJM 0004 pjstat Invalid option: %s" % e.opt)  # invented wording
        return 1
    flags = dict(opts)
    if st.inject_failure("status"):
        fs.err(TRANSIENT % "pjstat")
        return 1
    st.refresh()
    keys = flags["--choose"].split(",") if "--choose" in flags else DEFAULT_COLUMNS
    history = "-H" in flags
    wanted, rc = set(), 0
    for raw in ids:
        if not re.fullmatch(r"\d+", raw):
            fs.err("[ERR.] PJM 0211 pjstat Invalid jobid: %s." % raw)
            rc = 1
            continue
        wanted.add(int(raw))
    columns = [PJSTAT_COLUMNS[k] for k in keys if k in PJSTAT_COLUMNS]
    fs.out(" ".join("%-*s" % (width, title) for title, width in columns))
    for job in st.all_jobs():
        if (ids and job["id"] not in wanted) or job["user"] != fs.username():
            continue
        ended = job["state"] == "finished"
        if ended != history or (ended and not fs.visible_finished(job)):
            continue
        state = _state(fs, job)
        cells = [_cell(job, k, state) for k in keys if k in PJSTAT_COLUMNS]
        fs.out(" ".join("%-*s" % (w, c) for (_, w), c in zip(columns, cells)))
    return rc


def pjdel(fs: ModuleType, st: Any, argv: list[str]) -> int:
    ids = [a for a in argv if not a.startswith("-")]
    if st.inject_failure("kill"):
        fs.err(TRANSIENT % "pjdel")
        return 1
    st.refresh()
    rc = 0
    with st.lock():
        for raw in ids:
            job = st.load(int(raw)) if raw.isdigit() else None
            if job is None or job["state"] == "finished":
                fs.err("[ERR.] PJM 0162 pjdel Job %s does not exist." % raw)  # invented
                rc = 1
                continue
            if job["state"] != "exiting":
                fs.kill_job(st, job)
            fs.out("[INFO] PJM 0100 pjdel Accepted job %s." % raw)
    return rc
