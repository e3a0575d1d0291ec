#!/usr/bin/env bash
# One command: install what is missing, then the Cluster Mesh guide on local clusters (root; Ctrl-C to stop).
# --simulated runs the in-process mesh instead (no root needed).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec python3 -m apiserver demo "$@"
