"""Driven by the tests, run by the ORIGINAL dpdispatcher inside its throwaway venv.

``python drive.py hashes CASES.json``: print the submission and job hashes the
installed release gives each case (cases carry their own working directory).
``python drive.py run SPEC.json``: run one submission to completion (the tests kill it
part way through and let this package finish it).

This file only calls the original's public API; it is not part of the package.
"""

import json
import os
import sys

from dpdispatcher import Machine, Resources, Submission, Task, __version__


def build(case):
    os.chdir(case["cwd"])
    return Submission(
        case["work_base"],
        Machine.load_from_dict(case["machine"]),
        Resources.load_from_dict(case["resources"]),
        forward_common_files=case.get("forward_common_files", []),
        backward_common_files=case.get("backward_common_files", []),
        task_list=[Task.load_from_dict(t) for t in case["tasks"]],
    )


def hashes(cases):
    out = []
    for case in cases:
        if __version__ not in case.get("versions", [__version__]):
            continue
        sub = build(case)
        sub.generate_jobs()
        out.append(
            {
                "name": case["name"],
                "submission_hash": sub.submission_hash,
                "job_hashes": [j.job_hash for j in sub.belonging_jobs],
            }
        )
    print(json.dumps({"version": __version__, "hashes": out}))


def run(spec):
    sub = build(spec)
    sub.run_submission(check_interval=spec.get("check_interval", 1), clean=spec.get("clean", True))
    print("ORIGINAL RUN COMPLETED", sub.submission_hash, flush=True)


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as fh:
        data = json.load(fh)
    {"hashes": hashes, "run": run}[mode](data)
