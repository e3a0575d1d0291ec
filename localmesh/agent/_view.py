"""What one agent holds of the mesh: an in-memory cache per (remote cluster, resource), fed by the
product's KVStoreMesh reflectors, and the views read from it (validated as an agent validates).

The caches stand where KVStoreMesh has sync stores on a local etcd: the agent keeps what it reads in
memory (as the agent's node manager, service cache, identity and IP caches do). Validation happens
when a view is read, against the remote's cluster ID learned from its cluster configuration.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from apiserver.kvstoremesh import CacheWriter, MirroredResource, RemoteClusterStatus
from localmesh.agent import _validate


class MemoryCache:
    """A ``CacheWriter`` keeping one resource of one remote cluster in a dict."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self._synced = asyncio.Event()

    @property
    def synced(self) -> asyncio.Event:
        return self._synced

    def upsert(self, key: str, value: bytes) -> None:
        self.entries[key] = value

    def upsert_many(self, items: dict[str, bytes]) -> None:
        self.entries.update(items)

    def delete(self, key: str) -> None:
        self.entries.pop(key, None)

    def mark_synced(self) -> None:
        self._synced.set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass
class Caches:
    """Every cache, by remote cluster then resource name (``nodes``, ``services``, ...)."""

    by_cluster: dict[str, dict[str, MemoryCache]] = field(default_factory=dict)

    def writer_factory(self) -> Callable[[MirroredResource, str], CacheWriter]:
        def make(resource: MirroredResource, cluster: str) -> CacheWriter:
            cache = MemoryCache()
            self.by_cluster.setdefault(cluster, {})[resource.name] = cache
            return cache

        return make

    def entries(self, cluster: str, resource: str) -> Mapping[str, bytes]:
        cache = self.by_cluster.get(cluster, {}).get(resource)
        return cache.entries if cache is not None else {}


@dataclass
class Backend:
    ip: str
    ports: dict[str, Any]


@dataclass
class GlobalService:
    namespace: str
    name: str
    backends: dict[str, list[Backend]] = field(default_factory=dict)  # cluster -> backends

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name,
                "backends": {c: [{"ip": b.ip, "ports": b.ports} for b in bs]
                             for c, bs in sorted(self.backends.items())}}


@dataclass
class Rejected:
    cluster: str
    resource: str
    key: str
    reason: str


@dataclass
class MeshView:
    services: dict[str, GlobalService] = field(default_factory=dict)  # "<ns>/<name>"
    rejected: list[Rejected] = field(default_factory=list)
    valid: dict[str, dict[str, int]] = field(default_factory=dict)  # cluster -> resource -> count


def build_view(caches: Caches, clusters: list[RemoteClusterStatus], max_connected_clusters: int,
               local_services: Mapping[str, bytes] | None = None, local: tuple[str, int] | None = None) -> MeshView:
    """Validate every cached entry of the connected remotes and merge their global services.

    ``local_services`` (``<ns>/<name>`` -> ClusterService bytes of the agent's own cluster, when known)
    adds the local backends to the merged services, as an agent's service cache holds them too.
    """
    view = MeshView()
    sources: list[tuple[str, int, Mapping[str, bytes]]] = []
    if local is not None and local_services is not None:
        sources.append((local[0], local[1], local_services))
    for status in clusters:
        if status.config is None or not status.config.retrieved:
            continue
        name, cid = status.name, status.config.cluster_id
        counts = view.valid.setdefault(name, {})
        checks: dict[str, Callable[[str, bytes], str | None]] = {
            "nodes": functools.partial(_validate.check_node, cluster=name, cluster_id=cid),
            "identities": functools.partial(_validate.check_identity, cluster_id=cid,
                                            max_connected_clusters=max_connected_clusters),
            "endpoints": _validate.check_ip,
        }
        for resource, check in checks.items():
            counts[resource] = 0
            for key, value in caches.entries(name, resource).items():
                reason = check(key, value)
                if reason is None:
                    counts[resource] += 1
                else:
                    view.rejected.append(Rejected(name, resource, key, reason))
        sources.append((name, cid, caches.entries(name, "services")))
    for cluster, cid, services in sources:
        good = 0
        for key, value in services.items():
            reason = _validate.check_service(key, value, cluster, cid)
            if reason is not None:
                view.rejected.append(Rejected(cluster, "services", key, reason))
                continue
            good += 1
            doc = orjson.loads(value)
            service = view.services.setdefault(key, GlobalService(doc["namespace"], doc["name"]))
            service.backends[cluster] = [Backend(ip, dict(ports or {}))
                                         for ip, ports in sorted((doc.get("backends") or {}).items())]
        view.valid.setdefault(cluster, {})["services"] = good
    return view
