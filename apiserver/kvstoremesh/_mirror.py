"""One mirrored resource of one remote cluster: a remote ``WatchStore`` feeding a local cache writer.

The writer is a sync store on the local etcd (prefix ``cilium/cache/<...>/<R>``, canary
``cilium/synced/<R>/cilium/cache/<...>/v1``). Values go through untouched: KVStoreMesh never
parses what it mirrors (upstream copies bytes too), so a value that is not valid JSON is
mirrored as is and it is the consuming agent's job to reject it.

The reflector outlives connections: the watch store is restarted on every new connection (stale
keys are deleted after each relist) while the writer keeps its de-duplication state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from apiserver._logging import get_logger
from apiserver.kvstore import KVBackend
from apiserver.kvstore.watchstore import WatchStore
from apiserver.kvstoremesh._canary import WatchStoreManager
from apiserver.kvstoremesh._resources import MirroredResource
from apiserver.metrics import Metrics

log = get_logger(__name__)


class CacheWriter(Protocol):
    """What the reflector needs from a sync store (``apiserver.kvstore.syncstore.SyncStore``)."""

    @property
    def synced(self) -> asyncio.Event: ...

    def upsert(self, key: str, value: bytes) -> None: ...

    def upsert_many(self, items: dict[str, bytes]) -> None: ...

    def delete(self, key: str) -> None: ...

    def mark_synced(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


WriterFactory = Callable[[MirroredResource, str], CacheWriter]  # (resource, remote cluster name)


class ResourceMirror:
    def __init__(self, resource: MirroredResource, cluster: str, writer: CacheWriter, *,
                 metrics: Metrics | None = None, page_size: int = 0) -> None:
        self.resource = resource
        self.cluster = cluster
        self.writer = writer
        self.enabled = False
        self._metrics = metrics
        self._sync_marked = False
        self.watch_store = WatchStore(self, source_cluster=cluster, on_sync=self._mark_synced,
                                      metrics=metrics, page_size=page_size, resource=resource.name)

    # WatchStoreObserver
    def on_upsert(self, key: str, value: bytes) -> None:
        try:
            self.writer.upsert(key, value)
        except ValueError as exc:  # a key the local store cannot represent (e.g. "/" only)
            self._skip(key, exc)

    def on_upsert_many(self, items: dict[str, bytes]) -> None:
        try:
            self.writer.upsert_many(items)
        except ValueError:
            # Some key cannot be represented: key by key, so that only that one is skipped (the
            # pairs already queued are not queued twice: equal values are dropped).
            for key, value in items.items():
                self.on_upsert(key, value)

    def on_delete(self, key: str) -> None:
        try:
            self.writer.delete(key)
        except ValueError as exc:
            self._skip(key, exc)

    def _skip(self, key: str, exc: ValueError) -> None:
        log.warning("Skipping remote key that cannot be mirrored", cluster=self.cluster,
                    resource=self.resource.name, key=key, error=str(exc))
        if self._metrics is not None:
            self._metrics.malformed_objects_total.labels(self.resource.name, "invalid-key").inc()

    def _mark_synced(self) -> None:
        # Once per reflector lifetime: the local canary states "the initial list was copied".
        if not self._sync_marked:
            self._sync_marked = True
            self.writer.mark_synced()

    def register(self, manager: WatchStoreManager, backend: KVBackend, *, remote_cached: bool,
                 service_exports_enabled: bool | None) -> None:
        """Arrange for the watch to start on ``backend`` (gated by ``manager``), or disable it."""
        if self.resource.enabled(service_exports_enabled):
            self.enabled = True
            prefix = self.resource.watch_prefix(self.cluster, remote_cached)

            async def watch() -> None:
                await self.watch_store.watch(backend, prefix)

            manager.register(self.resource.remote_synced_key(remote_cached), watch)
        else:
            # Not mirrored for this remote: remove what an earlier connection may have cached,
            # and still write the canary so that readers do not wait forever.
            self.enabled = False
            self.watch_store.drain()
            self._mark_synced()

    def revoke(self) -> bool:
        """Drain the cache if this resource is revocable (remote unreachable past the TTL)."""
        if not self.resource.revocable or self.watch_store.num_entries == 0:
            return False
        self.watch_store.drain()
        return True

    @property
    def synced(self) -> bool:
        """The remote's initial list is complete and events are being watched."""
        return self.watch_store.synced

    @property
    def written(self) -> bool:
        """The local canary was written."""
        return self.writer.synced.is_set()
