#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian/Ubuntu machine (run as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
  echo "setup: installing etcd (Debian packages etcd-server, etcd-client)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
  # The package enables a system etcd on 2379 where systemd runs; ours use their own ports.
fi
PY=${PYTHON:-python3}
if ! $PY -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python 3.11+ is required ($($PY --version 2>&1) found)" >&2
  exit 1
fi
# A C compiler and the Python headers build the compiled twins of the hot path (setup.py); without
# them the install still works, on the pure-Python twins.
if ! command -v gcc >/dev/null 2>&1 \
    || ! $PY -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))'; then
  echo "setup: installing gcc and the Python headers (Debian packages gcc, python3-dev)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc python3-dev >/dev/null
fi
if ! $PY -c 'import apiserver, pytest, orjson' >/dev/null 2>&1 || [ "${SETUP_FORCE:-}" = 1 ]; then
  $PY -m pip install -q --disable-pip-version-check -e ".[test]"
fi
# checkov (the policy scan of deploy/ and the Dockerfile, tests/deploy) in its own virtual
# environment: its pinned dependencies would downgrade the project's.
CHECKOV_VERSION=3.3.30
if [ "$(.tools/checkov/bin/checkov --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  echo "setup: installing checkov $CHECKOV_VERSION into .tools/checkov" >&2
  $PY -m venv .tools/checkov
  .tools/checkov/bin/python -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
# Bytecode once, here: with PYTHONDONTWRITEBYTECODE set, every process (tests spawn many) would
# otherwise compile the package again at start.
$PY -m compileall -q apiserver localmesh >/dev/null
