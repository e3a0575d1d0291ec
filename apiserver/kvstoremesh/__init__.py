"""KVStoreMesh: mirror every remote cluster's etcd into the local etcd.

    config dir (one etcd client YAML per remote) -> RemoteCluster (connection state machine)
        -> ResourceMirror per resource: remote WatchStore -> local SyncStore (cilium/cache/...)

The public surface is re-exported here; the modules are private.
"""

from apiserver.kvstoremesh._api import CLUSTER_PATH, APIServer, render_clusters
from apiserver.kvstoremesh._config import DEFAULT_API_SERVE_ADDR, MeshConfig
from apiserver.kvstoremesh._configdir import ConfigDirWatcher, diff_configs, scan_config_dir
from apiserver.kvstoremesh._daemon import DaemonSettings, KVStoreMeshDaemon, start_daemon
from apiserver.kvstoremesh._factories import etcd_connector
from apiserver.kvstoremesh._ids import ClusterIDConflictError, ClusterIDs
from apiserver.kvstoremesh._mesh import KVStoreMesh
from apiserver.kvstoremesh._mirror import CacheWriter, ResourceMirror, WriterFactory
from apiserver.kvstoremesh._remote import ConfigEnforcer, Connector, EnforcerFactory, RemoteCluster
from apiserver.kvstoremesh._resources import RESOURCES, MirroredResource, drain_prefixes
from apiserver.kvstoremesh._status import (
    RemoteClusterConfigStatus,
    RemoteClusterStatus,
    RemoteClusterSyncedStatus,
    format_status,
    status_from_json,
    status_to_json,
)

__all__ = [
    "CLUSTER_PATH",
    "DEFAULT_API_SERVE_ADDR",
    "RESOURCES",
    "APIServer",
    "CacheWriter",
    "ClusterIDConflictError",
    "ClusterIDs",
    "ConfigDirWatcher",
    "ConfigEnforcer",
    "Connector",
    "DaemonSettings",
    "EnforcerFactory",
    "KVStoreMesh",
    "KVStoreMeshDaemon",
    "MeshConfig",
    "MirroredResource",
    "RemoteCluster",
    "RemoteClusterConfigStatus",
    "RemoteClusterStatus",
    "RemoteClusterSyncedStatus",
    "ResourceMirror",
    "WriterFactory",
    "diff_configs",
    "drain_prefixes",
    "etcd_connector",
    "format_status",
    "render_clusters",
    "scan_config_dir",
    "start_daemon",
    "status_from_json",
    "status_to_json",
]
