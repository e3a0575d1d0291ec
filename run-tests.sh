#!/usr/bin/env bash
# One command: install what is missing, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
SETUP_FORCE=${SETUP_FORCE:-1} bash scripts/setup.sh
python3 -m ruff check apiserver localmesh tests bench
python3 -m mypy
# pytest exits 5 when no test ran; with `set -e` that fails the run, as it must.
python3 -m pytest -q -p no:cacheprovider "$@"
