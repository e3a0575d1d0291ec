"""KVStoreMesh: the set of remote clusters, driven by the config directory, and its readiness.

Adds a remote when its config file appears, reconnects it when the file's content changes, and
removes it (disconnect + drain, in the background) when the file goes away. A config re-created
while its cluster is still being removed is queued and replayed once the removal finished.
Files named like the local cluster, or not valid cluster names, are ignored with a log line.

Readiness is a latch: it opens once every remote known after the first directory
scan has synced or was excluded (no connection within ``per_cluster_ready_timeout``), or after
``global_ready_timeout``. Opening records ``bootstrap_seconds`` and calls ``on_bootstrap``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.clusterinfo import ClusterInfo, InvalidClusterInfo, validate_cluster_name
from apiserver.kvstore import KVBackend
from apiserver.kvstoremesh._config import MeshConfig
from apiserver.kvstoremesh._configdir import ConfigDirWatcher
from apiserver.kvstoremesh._ids import ClusterIDs
from apiserver.kvstoremesh._mirror import WriterFactory
from apiserver.kvstoremesh._remote import Connector, EnforcerFactory, MeshContext, RemoteCluster
from apiserver.kvstoremesh._status import RemoteClusterStatus
from apiserver.metrics import Metrics

log = get_logger(__name__)

_REMOVED = ""  # tombstone value: no re-add queued


class KVStoreMesh:
    def __init__(self, local: ClusterInfo, backend: KVBackend, *, metrics: Metrics, connector: Connector,
                 writer_factory: WriterFactory, enforcer_factory: EnforcerFactory,
                 config: MeshConfig | None = None, on_bootstrap: Callable[[], None] | None = None) -> None:
        self.config = config or MeshConfig()
        self._ctx = MeshContext(local=local, backend=backend, config=self.config, metrics=metrics,
                                ids=ClusterIDs(local.name, local.id), connector=connector,
                                writer_factory=writer_factory, enforcer_factory=enforcer_factory)
        self._on_bootstrap = on_bootstrap
        self._clusters: dict[str, RemoteCluster] = {}
        self._tombstones: dict[str, str] = {}  # name -> queued config path, or _REMOVED
        self._removals: set[asyncio.Task[None]] = set()
        self._watcher: ConfigDirWatcher | None = None
        self._readiness: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self, config_dir: str) -> None:
        """Scan ``config_dir`` (remotes found now count for readiness), then keep watching it."""
        if self._watcher is not None:
            raise RuntimeError("KVStoreMesh already started")
        started = asyncio.get_running_loop().time()
        self._watcher = ConfigDirWatcher(config_dir, self._on_upsert, self._on_remove,
                                         interval=self.config.config_poll_interval)
        await self._watcher.start()
        initial = list(self._clusters.values())
        self._readiness = asyncio.create_task(self._wait_ready(initial, started), name="kvstoremesh-ready")

    async def stop(self) -> None:
        """Disconnect every remote without draining (caches stay for the restarted process)."""
        self._stopping = True
        if self._watcher is not None:
            await self._watcher.stop()
        await cancel_and_wait(self._readiness, *self._removals)
        await asyncio.gather(*(cluster.stop() for cluster in self._clusters.values()))
        self._clusters.clear()
        self._ctx.metrics.remote_clusters.set(0)

    # ------------------------------------------------------------------ readiness and status

    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def _wait_ready(self, clusters: list[RemoteCluster], started: float) -> None:
        waiters = [c.bootstrap_done.wait() for c in clusters]
        try:
            async with asyncio.timeout(self.config.global_ready_timeout):
                await asyncio.gather(*waiters)
        except TimeoutError:
            log.info("Failed to wait for synchronization. KVStoreMesh will now handle requests, but some "
                     "clusters may not have been synchronized.",
                     timeout=f"{self.config.global_ready_timeout:g}s")
        elapsed = asyncio.get_running_loop().time() - started
        self._ctx.metrics.bootstrap_seconds.labels(self._ctx.local.name).set(elapsed)
        log.info("KVStoreMesh bootstrap completed", seconds=round(elapsed, 3), clusters=len(clusters))
        self._ready.set()
        if self._on_bootstrap is not None:
            self._on_bootstrap()

    def status(self) -> list[RemoteClusterStatus]:
        return [self._clusters[name].status() for name in sorted(self._clusters)]

    def cluster(self, name: str) -> RemoteCluster | None:
        return self._clusters.get(name)

    async def wait_removed(self) -> None:
        """Wait until every removal in progress finished (tests, shutdown)."""
        while self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)

    # ------------------------------------------------------------------ config directory events

    def _on_upsert(self, name: str, path: str) -> None:
        if self._stopping:
            return
        if name == self._ctx.local.name:
            log.info("Ignoring configuration for own cluster", cluster=name, path=path)
            return
        try:
            validate_cluster_name(name)
        except InvalidClusterInfo as exc:
            log.error("Cannot connect to remote cluster: invalid cluster name", cluster=name, path=path,
                      error=str(exc))
            return
        self._add(name, path)

    def _add(self, name: str, path: str) -> None:
        if name in self._tombstones:
            self._tombstones[name] = path
            log.info("Delaying configuration of remote cluster, which is still being removed", cluster=name)
            return
        cluster = self._clusters.get(name)
        if cluster is not None:
            cluster.reconnect(path)
            return
        log.info("New remote cluster configuration", cluster=name, path=path)
        cluster = RemoteCluster(name, path, self._ctx)
        self._clusters[name] = cluster
        self._ctx.metrics.remote_clusters.set(len(self._clusters))
        cluster.start()

    def _on_remove(self, name: str) -> None:
        if self._stopping:
            return
        cluster = self._clusters.pop(name, None)
        if cluster is None:
            if name in self._tombstones:
                self._tombstones[name] = _REMOVED  # cancel a queued re-add
            return
        self._tombstones[name] = _REMOVED
        self._ctx.metrics.remote_clusters.set(len(self._clusters))
        task = asyncio.create_task(self._remove(cluster), name=f"remove:{name}")
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def _remove(self, cluster: RemoteCluster) -> None:
        try:
            await cluster.remove()
            log.info("Remote cluster disconnected", cluster=cluster.name)
        except Exception:
            log.exception("Removal of remote cluster failed", cluster=cluster.name)
        finally:
            path = self._tombstones.pop(cluster.name, _REMOVED)
        if path != _REMOVED and not self._stopping:
            log.info("Replaying delayed configuration of new remote cluster after removal", cluster=cluster.name)
            self._add(cluster.name, path)
