"""Production wiring of the mesh's seams: etcd connections to remotes, sync stores and cluster
config enforcers on the local etcd. Tests replace these with in-memory backends."""

from __future__ import annotations

from apiserver.kvstore import KVBackend
from apiserver.kvstore.config_enforcer import ClusterConfigEnforcer
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.kvstore.syncstore import SyncStore
from apiserver.kvstoremesh._mirror import CacheWriter, WriterFactory
from apiserver.kvstoremesh._remote import ConfigEnforcer, Connector, EnforcerFactory
from apiserver.kvstoremesh._resources import MirroredResource
from apiserver.metrics import Metrics


def etcd_connector(*, connect_timeout: float) -> Connector:
    """Connect to a remote with the etcd client YAML at ``path`` (re-read, with its certificates,
    on every connection, so rotated Secrets are picked up)."""

    async def connect(cluster: str, path: str) -> KVBackend:
        from apiserver.kvstore.etcd import EtcdClient, EtcdConfig

        config = EtcdConfig.from_yaml(path)
        client: KVBackend = await EtcdClient.connect(config, timeout=connect_timeout)
        return client

    return connect


def sync_store_writers(backend: KVBackend, leases: LeaseManager, *, metrics: Metrics | None,
                       limiter: APILimiter | None) -> WriterFactory:
    def make(resource: MirroredResource, cluster: str) -> CacheWriter:
        prefix = resource.cache_prefix(cluster)
        # stale_prefix: keys a previous KVStoreMesh run cached, and that the remote no longer
        # has, are deleted once the first sync of this run completed.
        return SyncStore(backend, leases, prefix=prefix, cluster_name=cluster,
                         synced_key=resource.local_synced_key(), stale_prefix=prefix, metrics=metrics,
                         source_cluster=cluster, limiter=limiter)

    return make


def config_enforcers(backend: KVBackend, leases: LeaseManager, *, interval: float, metrics: Metrics | None,
                     limiter: APILimiter | None) -> EnforcerFactory:
    def make(cluster: str, value: bytes) -> ConfigEnforcer:
        return ClusterConfigEnforcer(backend, leases, cluster, value, interval, limiter=limiter,
                                     metrics=metrics)

    return make
