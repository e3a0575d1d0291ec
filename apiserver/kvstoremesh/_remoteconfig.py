"""A remote cluster's ``cilium/cluster-config/<R>`` as KVStoreMesh reads it, and the local copy it
writes. Pure: decoding and validation come from ``apiserver.convert.clusterconfig``.
"""

from __future__ import annotations

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert.clusterconfig import (
    CiliumClusterConfig,
    cluster_config_value,
    parse_cluster_config,
    validate_remote_config,
)
from apiserver.convert.gojson import ConversionError

RemoteConfig = CiliumClusterConfig


class InvalidRemoteConfigError(ValueError):
    """The remote cluster config cannot be decoded, or is not acceptable for the local cluster."""


def parse_remote_config(raw: bytes, cluster: str, local: ClusterInfo) -> RemoteConfig:
    try:
        cfg = parse_cluster_config(raw)
        validate_remote_config(cfg, local)
    except ConversionError as exc:
        raise InvalidRemoteConfigError(f"invalid cluster configuration of remote cluster {cluster!r}: "
                                       f"{exc}") from None
    return cfg


def cached_config_value(remote: RemoteConfig) -> bytes:
    """The local ``cilium/cluster-config/<R>``: the remote's ID and limits, ``cached: true``."""
    return cluster_config_value(CiliumClusterConfig(
        id=remote.id, synced_canaries=True, cached=True,
        max_connected_clusters=remote.max_connected_clusters,
        service_exports_enabled=remote.service_exports_enabled))
