"""The exporter: one sync store per prefix, one reflector per resource, wired in upstream's order.

Order of start-up: the cluster config is written first; then the heartbeat; then the
Namespace reflector must sync (namespaced resources are filtered by it); then every other
reflector streams into its handler, whose sync store writes the canary once its initial list is
in etcd. Ready = cluster config written, every canary written, etcd answering and not out of
space (its NOSPACE alarm, ``nospace``). Keys, canaries and the cluster config deleted or
overwritten by someone else are written back (``restore``, ``config_enforcer``).

An etcd that lost its data (restarted with an empty data dir, or another etcd cluster at the
address; ``StoreResetMonitor``) gets everything again at once, in the start-up order: the
cluster config, then every key of every store, each store's canary after its keys. Not ready
meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.clustermesh._exports import EXPORTS
from apiserver.clustermesh.handlers import (
    EndpointHandler,
    IdentityHandler,
    NodeHandler,
    endpoint_slice_namespace_index,
    identity_namespace_index,
)
from apiserver.clustermesh.namespaces import NamespaceGate
from apiserver.clustermesh.options import ExporterOptions
from apiserver.clustermesh.rereads import NamespaceRereads
from apiserver.clustermesh.services import Feed, ServiceExporter, ServiceExportExporter, Tee
from apiserver.convert import cluster_config_value, local_cluster_config
from apiserver.kube import (
    CILIUM_ENDPOINT_SLICES,
    CILIUM_ENDPOINTS,
    CILIUM_IDENTITIES,
    CILIUM_NODES,
    ENDPOINT_SLICES,
    NAMESPACES,
    SERVICE_EXPORTS,
    SERVICES,
    APIResource,
    CacheKind,
    KubeClient,
    ObjectEvent,
    Reflector,
)
from apiserver.kvstore import KVBackend
from apiserver.kvstore.config_enforcer import ClusterConfigEnforcer
from apiserver.kvstore.heartbeat import Heartbeat
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.nospace import SpaceAlarm
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.kvstore.restore import CanaryRestorer, KeyRestorer
from apiserver.kvstore.store_reset import DEFAULT_INTERVAL as STORE_CHECK_INTERVAL
from apiserver.kvstore.store_reset import StoreResetMonitor
from apiserver.kvstore.syncstore import SyncStore
from apiserver.metrics import KubeRequestMetrics, Metrics

log = get_logger(__name__)

NAMESPACE_INDEX = "namespace"


@dataclass(frozen=True)
class ExporterTimings:
    """Intervals that tests shorten; production uses upstream's."""

    heartbeat_interval: float = 60.0
    cluster_config_interval: float = 300.0
    lease_keepalive_interval: float | None = None  # None: a third of the lease TTL
    store_check_interval: float = STORE_CHECK_INTERVAL  # etcd status: reset, reachable


class _LateHandler:
    """A reflector handler whose target is chosen after the reflector exists: the service
    exporters need the reflectors' caches, and the reflectors need a handler."""

    def __init__(self) -> None:
        self.target: Tee | Feed | None = None

    def on_events(self, events: list[ObjectEvent]) -> None:
        assert self.target is not None
        self.target.on_events(events)

    def on_synced(self) -> None:
        assert self.target is not None
        self.target.on_synced()


class Exporter:
    def __init__(self, options: ExporterOptions, backend: KVBackend, kube: KubeClient,
                 metrics: Metrics, *, limiter: APILimiter | None = None,
                 timings: ExporterTimings | None = None, restore: bool = True) -> None:
        self._options = options
        self._backend = backend
        self._kube = kube
        self._metrics = metrics
        self._limiter = limiter
        timings = timings or ExporterTimings()
        cluster = options.cluster
        self.leases = LeaseManager(backend, options.lease_ttl, grant_ahead=True,
                                   keepalive_interval=timings.lease_keepalive_interval)
        self._config = ClusterConfigEnforcer(
            backend, self.leases, cluster.name,
            cluster_config_value(local_cluster_config(cluster, mcs_api_enabled=options.enable_mcs_api)),
            interval=timings.cluster_config_interval)
        self._heartbeat = Heartbeat(backend, self.leases, interval=timings.heartbeat_interval)
        self._resetting = False
        self.space = SpaceAlarm(self._space_freed, metrics=metrics)
        self.store_monitor = StoreResetMonitor(backend, self._store_reset, interval=timings.store_check_interval,
                                               forget_cluster_id=getattr(backend, "forget_cluster_id", None),
                                               space=self.space)
        self._started_at = 0.0
        self._bootstrapped = asyncio.Event()
        self._bootstrap: asyncio.Task[None] | None = None

        self.stores: dict[str, SyncStore] = {
            row.name: SyncStore(backend, self.leases, prefix=row.prefix, cluster_name=cluster.name,
                                synced_key=row.synced_key, stale_prefix=row.stale_prefix(cluster.name),
                                metrics=metrics, limiter=limiter,
                                nospace_reported=True)  # by ``self.space``, once per episode
            for row in EXPORTS}
        # Whatever someone else deletes or overwrites of ours is written back (``restore``); not
        # on a backend that keeps nothing (``clustermesh-dbg verify``): all would look deleted.
        self.restorers: list[KeyRestorer | CanaryRestorer] = [
            *(KeyRestorer(backend, s, self.store_monitor.notice) for s in self.stores.values()),
            CanaryRestorer(backend, cluster.name, list(self.stores.values()), self.store_monitor.notice),
        ] if restore else []
        self.namespaces = NamespaceGate(options.default_global_namespace)
        self._kube_metrics = KubeRequestMetrics(metrics)
        self._namespace_reflector = kube.reflector(NAMESPACES, self.namespaces, metrics=self._kube_metrics)
        self.reflectors: list[Reflector] = []
        self._rereads: NamespaceRereads | None = None
        self._build_reflectors()

    def _reflector(self, resource: APIResource, handler: object, *, cache: CacheKind = "objects") -> Reflector:
        reflector = self._kube.reflector(resource, handler, metrics=self._kube_metrics,  # type: ignore[arg-type]
                                         cache=cache)
        self.reflectors.append(reflector)
        return reflector

    def _build_reflectors(self) -> None:
        options, cluster, metrics, gate = self._options, self._options.cluster, self._metrics, self.namespaces
        self._reflector(CILIUM_NODES, NodeHandler(self.stores["nodes"], cluster, metrics))

        identities = IdentityHandler(self.stores["identities"], gate, metrics)
        # Identities are only read back on namespace changes: keep them serialized, a fraction of
        # the memory and of the garbage collector's time.
        identity_reflector = self._reflector(CILIUM_IDENTITIES, identities, cache="compact")
        identity_reflector.add_index(NAMESPACE_INDEX, identity_namespace_index)
        gate.subscribe(lambda ns: identities.resync(identity_reflector.by_index(NAMESPACE_INDEX, ns)))

        slices = options.enable_cilium_endpoint_slice
        endpoints = EndpointHandler(self.stores["ip"], gate, slices=slices, metrics=metrics)
        if slices:
            endpoint_reflector = self._reflector(CILIUM_ENDPOINT_SLICES, endpoints, cache="compact")
            endpoint_reflector.add_index(NAMESPACE_INDEX, endpoint_slice_namespace_index)
            gate.subscribe(lambda ns: endpoints.resync(endpoint_reflector.by_index(NAMESPACE_INDEX, ns)))
        else:
            # The endpoints' entries live in the sync store; the cache needs only their versions.
            endpoint_reflector = self._reflector(CILIUM_ENDPOINTS, endpoints, cache="metadata")
            self._rereads = NamespaceRereads(endpoint_reflector, endpoints)
            gate.subscribe(self._rereads)

        # Services join EndpointSlices (global services) and ServiceExports (MCS-API).
        service_handler, slice_handler = _LateHandler(), _LateHandler()
        service_reflector = self._reflector(SERVICES, service_handler)
        slice_reflector = self._reflector(ENDPOINT_SLICES, slice_handler)
        services = ServiceExporter(self.stores["services"], cluster, gate, service_reflector.cache,
                                   slice_reflector.cache, metrics)
        slice_handler.target = services.other_feed
        gate.subscribe(services.resync_namespace)
        feeds = [services.service_feed]
        if options.enable_mcs_api:
            export_handler = _LateHandler()
            export_reflector = self._reflector(SERVICE_EXPORTS, export_handler)
            exports = ServiceExportExporter(self.stores["serviceexports"], cluster, gate,
                                            service_reflector.cache, export_reflector.cache, metrics)
            export_handler.target = exports.other_feed
            gate.subscribe(exports.resync_namespace)
            feeds.append(exports.service_feed)
        service_handler.target = Tee(*feeds)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._started_at = time.monotonic()
        self.leases.start()
        await self._config.write_once()
        self._bootstrap = asyncio.get_running_loop().create_task(self._complete_bootstrap(),
                                                                 name="exporter-bootstrap")
        self._config.start()
        self._heartbeat.start()
        await self.store_monitor.check_once()  # the baseline: the store as we first found it
        self.store_monitor.start()
        for sync_store in self.stores.values():
            await sync_store.start()
        for restorer in self.restorers:
            restorer.start()
        if not self._options.enable_mcs_api:
            # Upstream writes the service exports canary even with MCS-API off.
            self.stores["serviceexports"].mark_synced()
        self._namespace_reflector.start()
        log.info("Waiting for namespaces to be listed before exporting namespaced resources")
        await self.namespaces.synced.wait()
        for reflector in self.reflectors:
            reflector.start()

    async def _store_reset(self, reason: str) -> None:
        """etcd lost everything we wrote: the cluster config first, then every key, then canaries."""
        self._resetting = True
        try:
            self.leases.reset()
            await self._config.stop()
            backoff = Backoff(0.1, 5.0, jitter=0.0)
            while True:
                try:
                    await self._config.write_once()
                    break
                except Exception as exc:
                    delay = backoff.next()
                    log.warning("Unable to write the cluster configuration after an etcd reset; retrying",
                                error=str(exc) or repr(exc), retry_in=delay)
                    await asyncio.sleep(delay)
            self._config.start()
            for sync_store in self.stores.values():
                sync_store.store_lost()
            for restorer in self.restorers:
                await restorer.restart()
            await self._heartbeat.beat()
        finally:
            self._resetting = False
        log.info("Re-writing every key after an etcd reset", reason=reason,
                 keys=sum(s.pending_writes for s in self.stores.values()))

    def _space_freed(self) -> None:
        """etcd's NOSPACE alarm is gone: retry at once what it refused meanwhile."""
        for sync_store in self.stores.values():
            sync_store.retry_now()
        self._config.kick()

    async def _complete_bootstrap(self) -> None:
        """Once the cluster config and every canary are written: the bootstrap metric, the
        limiter's switch to its steady rate, then ready."""
        await asyncio.gather(*(s.synced.wait() for s in self.stores.values()))
        elapsed = time.monotonic() - self._started_at
        self._metrics.bootstrap_seconds.labels(self._options.cluster.name).set(elapsed)
        if self._limiter is not None:
            self._limiter.bootstrap_complete()
        log.info("Initial synchronization complete", seconds=round(elapsed, 3),
                 keys=sum(len(s.exported()) for s in self.stores.values()))
        self._bootstrapped.set()

    def ready(self) -> bool:
        """The readiness probe's question; a pure query."""
        return (self._bootstrapped.is_set() and not self._resetting and self.store_monitor.reachable
                and not self.space.active and all(s.synced.is_set() for s in self.stores.values()))

    async def wait_ready(self) -> None:
        await self._bootstrapped.wait()

    async def stop(self) -> None:
        """Close the watches, then let the stores finish in-flight and queued writes."""
        await cancel_and_wait(self._bootstrap)
        await asyncio.gather(self._namespace_reflector.stop(), *(r.stop() for r in self.reflectors))
        if self._rereads is not None:
            await self._rereads.stop()
        await self.store_monitor.stop()
        await asyncio.gather(*(r.stop() for r in self.restorers))
        await asyncio.gather(*(s.stop() for s in self.stores.values()))
        await self._heartbeat.stop()
        await self._config.stop()
        await self.leases.stop()
