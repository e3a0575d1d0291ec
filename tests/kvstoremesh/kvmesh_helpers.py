"""Test helpers for KVStoreMesh: seeding a remote with wire-format keys, and computing exactly what
the local cache must contain for it. Shared by the unit and the real-etcd tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from apiserver.convert.clusterconfig import CiliumClusterConfig, cluster_config_value
from apiserver.kvstoremesh import RESOURCES
from apiserver.paths import join_key
from localmesh.testing.polling import eventually as eventually

CANARY = b"2026-01-01T00:00:00Z"
KIND_PREFIX = {  # resource name -> wire prefix of its keys on a non-cached remote
    "nodes": "cilium/state/nodes/v1/{c}/",
    "services": "cilium/state/services/v1/{c}/",
    "service exports": "cilium/state/serviceexports/v1/{c}/",
    "identities": "cilium/state/identities/v1/id/",
    "endpoints": "cilium/state/ip/v1/default/",
}


def node_value(cluster: str, cluster_id: int, name: str) -> bytes:
    return (f'{{"Name":"{name}","Cluster":"{cluster}","IPAddresses":[{{"Type":"InternalIP","IP":"172.18.0.3"}}],'
            f'"ClusterID":{cluster_id},"Source":"custom-resource"}}').encode()


def service_value(cluster: str, cluster_id: int, ns: str, name: str) -> bytes:
    return (f'{{"cluster":"{cluster}","namespace":"{ns}","name":"{name}","frontends":{{}},"backends":{{}},'
            f'"labels":{{}},"selector":{{}},"includeExternal":true,"shared":true,"clusterID":{cluster_id}}}').encode()


@dataclass
class RemoteData:
    """The state a remote clustermesh-apiserver would export, as raw etcd keys."""

    name: str
    cluster_id: int
    keys: dict[str, bytes] = field(default_factory=dict)
    config: CiliumClusterConfig | None = None

    @classmethod
    def sample(cls, name: str, cluster_id: int, *, nodes: int = 2, services: int = 1, identities: int = 2,
               ips: int = 2, exports: int = 1, mcs: bool | None = False) -> RemoteData:
        data = cls(name, cluster_id)
        data.config = CiliumClusterConfig(id=cluster_id, synced_canaries=True, max_connected_clusters=255,
                                          service_exports_enabled=mcs)
        for i in range(nodes):
            data.keys[f"cilium/state/nodes/v1/{name}/node-{i}"] = node_value(name, cluster_id, f"node-{i}")
        for i in range(services):
            data.keys[f"cilium/state/services/v1/{name}/default/svc-{i}"] = service_value(
                name, cluster_id, "default", f"svc-{i}")
        for i in range(exports):
            export = f'{{"cluster":"{name}","name":"svc-{i}","namespace":"default"}}'.encode()
            data.keys[f"cilium/state/serviceexports/v1/{name}/default/svc-{i}"] = export
        base = cluster_id << 16
        for i in range(identities):
            data.keys[f"cilium/state/identities/v1/id/{base + i}"] = f"k8s:app=a{i};".encode()
        for i in range(ips):
            ip = f"10.{cluster_id}.0.{i + 1}"
            data.keys[f"cilium/state/ip/v1/default/{ip}"] = (
                f'{{"IP":"{ip}","Mask":null,"HostIP":"172.18.0.3","ID":{base + i},"Key":0,"Metadata":""}}').encode()
        return data

    def canaries(self) -> dict[str, bytes]:
        return {join_key("cilium/synced", self.name, r.base_prefix): CANARY for r in RESOURCES}

    def all_keys(self, *, with_canaries: bool = True) -> dict[str, bytes]:
        out = dict(self.keys)
        if self.config is not None:
            out[f"cilium/cluster-config/{self.name}"] = cluster_config_value(self.config)
        if with_canaries:
            out.update(self.canaries())
        return out


def expected_cache(remote_snapshot: Mapping[str, bytes], name: str, remote_config: CiliumClusterConfig,
                   *, with_canaries: bool = True) -> dict[str, bytes]:
    """Every local key KVStoreMesh must hold for remote ``name`` (cache entries, local canaries
    with their values omitted -- see ``local_view`` -- and the local cluster config)."""
    out: dict[str, bytes] = {}
    for r in RESOURCES:
        if not r.enabled(remote_config.service_exports_enabled):
            continue
        src = r.watch_prefix(name, remote_config.cached) + "/"
        dst = r.cache_prefix(name) + "/"
        for key, value in remote_snapshot.items():
            if key.startswith(src):
                out[dst + key[len(src):]] = value
    if with_canaries:
        for r in RESOURCES:
            out[join_key("cilium/synced", name, r.local_synced_key())] = CANARY
    out[f"cilium/cluster-config/{name}"] = cluster_config_value(CiliumClusterConfig(
        id=remote_config.id, synced_canaries=True, cached=True,
        max_connected_clusters=remote_config.max_connected_clusters,
        service_exports_enabled=remote_config.service_exports_enabled))
    return out


def local_view(snapshot: Mapping[str, bytes], name: str) -> dict[str, bytes]:
    """The local keys belonging to remote ``name``; canary timestamps normalised to ``CANARY``."""
    out: dict[str, bytes] = {}
    synced = f"cilium/synced/{name}/"
    for key, value in snapshot.items():
        if key.startswith(synced):
            out[key] = CANARY
        elif key == f"cilium/cluster-config/{name}" or any(
                key.startswith(r.cache_prefix(name) + "/") for r in RESOURCES):
            out[key] = value
    return out


def diff(actual: Mapping[str, bytes], expected: Mapping[str, bytes]) -> str:
    missing = sorted(set(expected) - set(actual))
    stale = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(actual) & set(expected) if actual[k] != expected[k])
    return f"missing={missing} stale={stale} changed={changed}"
