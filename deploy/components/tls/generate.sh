#!/usr/bin/env bash
# Issues the mesh API pod's TLS material with `clustermesh-apiserver pki` (a development CA) and
# lays it out for this component's secretGenerator:
#   deploy/components/tls/generate.sh CLUSTER_NAME [PEER...]
# Re-running keeps the CA (pki/issued/ca.key) and issues new leaves. Production certificates come
# from Helm/certgen, cert-manager or your own CA: create the same five Secrets instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster=${1:?usage: generate.sh CLUSTER_NAME [PEER...]}
shift
pki=${CLUSTERMESH_APISERVER:-clustermesh-apiserver}
peers=()
for peer in "$@"; do peers+=("--peer=$peer"); done
out="$here/pki"
$pki pki --out="$out/issued" --cluster-name="$cluster" --namespace=kube-system "${peers[@]}"
# Fixed names for the generator: the issued directories carry the cluster name (admin-<C>, local-<C>).
for pair in server:server "admin:admin-$cluster" "local:local-$cluster" remote:remote; do
  dst=${pair%%:*} src=${pair#*:}
  mkdir -p "$out/$dst"
  for f in ca.crt tls.crt tls.key; do
    cp "$out/issued/$src/$f" "$out/$dst/$f"
  done
done
cp "$out/issued/ca.crt" "$out/issued/ca.key" "$out/issued/users.yaml" "$out/"
echo "TLS material for cluster $cluster in $out; render with: kubectl kustomize deploy/overlays/tls" >&2
