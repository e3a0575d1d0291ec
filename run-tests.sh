#!/usr/bin/env bash
# One command: install what is missing, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
SETUP_FORCE=${SETUP_FORCE:-1} bash scripts/setup.sh
python3 -m ruff check apiserver localmesh tests bench
python3 -m mypy
# pytest exits 5 when no test ran; with `set -e` that fails the run, as it must.
# The full run with the compiled twins (a twin that is not built fails it), then the hot path's
# tests again on the pure-Python twins.
CLUSTERMESH_REQUIRE_EXTENSIONS=1 python3 -m pytest -q -p no:cacheprovider "$@"
if [ "$#" -eq 0 ]; then
  CLUSTERMESH_NO_EXTENSIONS=1 python3 -m pytest -q -p no:cacheprovider tests/convert tests/kvstore/test_syncstore.py \
    tests/kvstore/test_syncstore_queue.py tests/kvstore/test_etcd_codec.py tests/kvstore/test_etcd_config.py \
    tests/clustermesh/test_exporter.py tests/test_extensions.py
fi
