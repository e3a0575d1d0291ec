#!/usr/bin/env bash
# One command: install what is missing, then run a local simulated mesh (Ctrl-C to stop).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec python3 -m apiserver demo "$@"
