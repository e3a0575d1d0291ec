"""Validated exporter configuration, built from command-line flags. Pure: no I/O."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from apiserver.clusterinfo import ClusterInfo, InvalidClusterInfo
from apiserver.kvstore.options import InvalidKVStoreOptions, KVStoreOptions

LEASE_TTL_MIN = 25.0
LEASE_TTL_MAX = 86400.0


class InvalidOptions(ValueError):
    """A flag value that the exporter refuses to start with."""


@dataclass(frozen=True)
class ExporterOptions:
    cluster: ClusterInfo
    kvstore: KVStoreOptions
    lease_ttl: float = 900.0
    enable_mcs_api: bool = False
    enable_cilium_endpoint_slice: bool = False
    default_global_namespace: bool = True
    service_proxy_name: str = ""
    cluster_users_enabled: bool = False
    cluster_users_config_path: str = "/var/lib/cilium/etcd-config/users.yaml"
    health_port: int = 9880
    prometheus_serve_addr: str = ""
    debug: bool = False
    log_format: str = "text"

    def validate(self) -> None:
        try:
            self.cluster.validate(strict=False)
        except InvalidClusterInfo as exc:
            raise InvalidOptions(str(exc)) from None
        if not LEASE_TTL_MIN <= self.lease_ttl <= LEASE_TTL_MAX:
            raise InvalidOptions(
                f"invalid --kvstore-lease-ttl {self.lease_ttl:g}s: must be between "
                f"{LEASE_TTL_MIN:g}s and {LEASE_TTL_MAX:g}s")
        if not 0 <= self.health_port <= 65535:
            raise InvalidOptions(f"invalid --health-port {self.health_port}")
        if self.log_format not in ("text", "json"):
            raise InvalidOptions(f"invalid log format {self.log_format!r}: expected text or json")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ExporterOptions:
        if args.kvstore != "etcd":
            raise InvalidOptions(f"unsupported --kvstore {args.kvstore!r}: only etcd is supported")
        try:
            kvstore = KVStoreOptions.parse(args.kvstore_opt)
        except InvalidKVStoreOptions as exc:
            raise InvalidOptions(str(exc)) from None
        options = cls(
            cluster=ClusterInfo(args.cluster_name, args.cluster_id, args.max_connected_clusters),
            kvstore=kvstore,
            lease_ttl=args.kvstore_lease_ttl,
            enable_mcs_api=args.clustermesh_enable_mcs_api,
            enable_cilium_endpoint_slice=args.enable_cilium_endpoint_slice,
            default_global_namespace=args.clustermesh_default_global_namespace,
            service_proxy_name=args.k8s_service_proxy_name,
            cluster_users_enabled=args.cluster_users_enabled,
            cluster_users_config_path=args.cluster_users_config_path,
            health_port=args.health_port,
            prometheus_serve_addr=args.prometheus_serve_addr,
            debug=bool(args.debug),
            log_format=args.log_opt.get("format", "text"),
        )
        options.validate()
        return options
