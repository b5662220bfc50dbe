#!/usr/bin/env bash
# The whole test suite, as a user (and CI) runs it:
#   install the package with its test extras, bring up the real Slurm and sshd servers
#   (as root; see tests/infra/up.sh), run the linters and pytest, tear the servers down.
# Without root the real-component tests are skipped with a reason; under CI=true they
# must run, so a missing component fails the suite.
# DPDISP_KEEP_INFRA=1 leaves the servers running afterwards (handy when iterating).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
echo "== installing dpdispatcher[test]"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[test]"

if [ "$(id -u)" -eq 0 ]; then
    echo "== bringing up the test infrastructure"
    if [ "${DPDISP_KEEP_INFRA:-0}" != 1 ]; then
        trap 'bash tests/infra/sge.sh down >/dev/null 2>&1 || true
              bash tests/infra/down.sh >/dev/null 2>&1 || true' EXIT
    fi
    bash tests/infra/up.sh
    bash tests/infra/sge.sh up
else
    echo "== not root: real Slurm/sshd tests will be skipped (run as root to include them)"
fi

echo "== ruff"
"$PYTHON" -m ruff check dpdispatcher tests benchmarks
"$PYTHON" -m ruff format --check dpdispatcher tests benchmarks
echo "== mypy --strict"
"$PYTHON" -m mypy --strict dpdispatcher
echo "== docs (sphinx -W)"
bash docs/check.sh -q
echo "== pytest"
"$PYTHON" -m pytest -q "$@"
