"""Each remote's ``cilium/state`` (or its cache, when the remote is itself KVStoreMesh-backed)
compared byte for byte with the local ``cilium/cache/<kind>/v1/<R>``, plus the local cluster
config and canaries KVStoreMesh must write for it. Read-only on every etcd.

A remote whose config KVStoreMesh must refuse (missing, invalid, or advertising the local
cluster's ID) is expected to have nothing cached at all. (Two remotes advertising one ID: which
one KVStoreMesh refuses depends on which connected first, so that is not judged here.)
"""

from __future__ import annotations

from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstore import KVBackend, KVStoreError
from apiserver.kvstore.drift import DriftReport, compare
from apiserver.kvstoremesh._remoteconfig import InvalidRemoteConfigError, cached_config_value, parse_remote_config
from apiserver.kvstoremesh._resources import RESOURCES, local_cluster_config_key, remote_synced_prefix
from apiserver.paths import join_key

__all__ = ["verify_cache"]

LIST_PAGE = 1000


async def _read(etcd: KVBackend, prefix: str) -> dict[str, bytes]:
    kvs, _ = await etcd.list_prefix(prefix, page_size=LIST_PAGE)
    return {kv.key: kv.value for kv in kvs}


async def verify_cache(local_cluster: ClusterInfo, local: KVBackend, name: str, remote: KVBackend,
                       report: DriftReport) -> None:
    """Add remote ``name``'s comparison to ``report``."""
    config_key = local_cluster_config_key(name)
    try:
        raw = await remote.get(config_key)
        config = parse_remote_config(raw.value, name, local_cluster) if raw is not None else None
    except InvalidRemoteConfigError:
        config = None
    except KVStoreError as exc:
        report.problems.append(f"remote {name}: cannot read its etcd: {exc}")
        return
    if config is not None and config.id == local_cluster.id:
        config = None  # refused (``ClusterIDs``): the local cluster's own ID
    for resource in RESOURCES:
        dst = resource.cache_prefix(name) + "/"
        expected: dict[str, bytes] = {}
        if config is not None and resource.enabled(config.service_exports_enabled):
            src = resource.watch_prefix(name, config.cached) + "/"
            expected = {dst + key[len(src):]: value for key, value in (await _read(remote, src)).items()}
            canary = join_key("cilium/synced", name, resource.local_synced_key())
            if await local.get(canary) is None:
                report.problems.append(f"remote {name}: local canary {canary} missing")
        report.prefixes.append(compare(dst.rstrip("/"), expected, await _read(local, dst)))
    cached = await local.get(config_key)
    if config is None:
        if cached is not None:
            report.problems.append(f"remote {name}: refused or without config, but {config_key} is cached")
        synced = await _read(local, remote_synced_prefix(name))
        if synced:
            report.problems.append(f"remote {name}: refused or without config, but {len(synced)} canaries remain")
    elif cached is None:
        report.problems.append(f"remote {name}: local {config_key} missing")
    elif cached.value != cached_config_value(config):
        report.problems.append(f"remote {name}: local {config_key} differs: {cached.value!r}")
