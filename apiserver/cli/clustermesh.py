"""``clustermesh-apiserver clustermesh``: export the local cluster's state to etcd.

Accepts every argument the upstream Helm chart passes to the ``apiserver`` container, so this
image can replace upstream's. Invalid values are refused before anything is written to etcd.
"""

from __future__ import annotations

import argparse

from apiserver.cli._flags import add_common_daemon_flags
from apiserver.goflags import KeyValueAction, add_bool, go_duration
from apiserver.kube.config import add_kube_flags

HELP = "Run the ClusterMesh API server: export this cluster's state to etcd"


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-name", default="default", help="Name of the cluster (default \"default\")")
    parser.add_argument("--cluster-id", type=int, default=0, help="Unique identifier of the cluster (default 0)")
    parser.add_argument("--max-connected-clusters", type=int, default=255,
                        help="Maximum number of clusters to be connected in a clustermesh (255 or 511)")


def add_kvstore_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kvstore", default="etcd", help="Key-value store type (only etcd)")
    parser.add_argument("--kvstore-opt", action=KeyValueAction, default={}, metavar="KEY=VALUE",
                        help="Key-value store options: etcd.config=PATH or etcd.address=URL, etcd.qps, "
                             "etcd.bootstrapQps, etcd.maxInflight, etcd.limit (repeatable)")
    parser.add_argument("--kvstore-lease-ttl", type=go_duration, default=900.0, metavar="DURATION",
                        help="Time-to-live for the kvstore lease, 25s..24h (default 15m)")
    parser.add_argument("--kvstore-max-consecutive-quorum-errors", type=int, default=2,
                        help="Max acceptable kvstore consecutive quorum errors")
    parser.add_argument("--kvstore-connectivity-timeout", type=go_duration, default=120.0,
                        help=argparse.SUPPRESS)
    parser.add_argument("--kvstore-periodic-sync", type=go_duration, default=300.0, help=argparse.SUPPRESS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_cluster_flags(parser)
    add_kvstore_flags(parser)
    add_bool(parser, "--clustermesh-enable-mcs-api", False, "Export MCS-API ServiceExports")
    add_bool(parser, "--enable-cilium-endpoint-slice", False,
             "Export IP entries from CiliumEndpointSlices instead of CiliumEndpoints")
    add_bool(parser, "--clustermesh-default-global-namespace", True,
             "Whether namespaces without the clustermesh.cilium.io/global annotation are global")
    parser.add_argument("--clustermesh-service-v2", default="prefer-legacy", help=argparse.SUPPRESS)
    add_bool(parser, "--enable-k8s-endpoint-slice", True, "Accepted for compatibility (always on)")
    add_bool(parser, "--enable-external-workloads", False, "Accepted for compatibility (removed upstream)")
    add_bool(parser, "--cluster-users-enabled", False, "Manage per-cluster etcd users from a file")
    parser.add_argument("--cluster-users-config-path", default="/var/lib/cilium/etcd-config/users.yaml",
                        help="Path of the per-cluster users file")
    parser.add_argument("--health-port", type=int, default=9880, help="TCP port of the health API (default 9880)")
    parser.add_argument("--prometheus-serve-addr", default="",
                        help="Address to serve Prometheus metrics, e.g. :9962 (default off)")
    add_bool(parser, "--enable-k8s", True, "Accepted for compatibility")
    add_kube_flags(parser)
    add_bool(parser, "--enable-k8s-api-discovery", False, "Accepted for compatibility")
    parser.add_argument("--crd-wait-timeout", type=go_duration, default=300.0, help=argparse.SUPPRESS)
    add_common_daemon_flags(parser, gops_port=9892)


def run(args: argparse.Namespace) -> int:
    from apiserver.clustermesh.main import run_exporter

    return run_exporter(args)
