#!/usr/bin/env bash
# Regenerates the *_pb2.py modules from the .proto files in this directory.
#
# Paths are given relative to the repository root so the descriptors are registered as
# "apiserver/kvstore/proto/etcd_*.proto" (unique in the process-wide descriptor pool) and the
# generated imports are absolute ("from apiserver.kvstore.proto import etcd_kv_pb2").
#
# Use grpcio-tools 1.75.x (protoc 31.1): its gencode runs on protobuf >= 6.31.1, the floor in
# pyproject.toml, as well as on 7.x. Newer grpcio-tools emit gencode that demands a newer runtime.
#   python3 -m venv /tmp/gentools && /tmp/gentools/bin/pip install "grpcio-tools==1.75.1"
#   PROTOC_PYTHON=/tmp/gentools/bin/python apiserver/kvstore/proto/generate.sh
# No --grpc_python_out: the client builds upstream method paths itself (see etcd_rpc.proto).
# No --pyi_out: pyproject.toml has mypy skip these modules (they are typed as Any).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PROTOC_PYTHON:-python3}
"$PY" -m grpc_tools.protoc --proto_path=. --python_out=. \
  apiserver/kvstore/proto/etcd_kv.proto \
  apiserver/kvstore/proto/etcd_auth.proto \
  apiserver/kvstore/proto/etcd_rpc.proto
