#!/usr/bin/env bash
# Build the documentation as CI should: install the docs extra, then build with warnings as
# errors. Usage: bash docs/check.sh [extra sphinx-build options]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[docs]"
rm -rf docs/_build
"$PYTHON" -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
