"""The KVStoreMesh process: local etcd, leases, heartbeat, the mesh, and its three HTTP servers.

Start order: health server first (probes answer ``NotReady`` meanwhile), then the local etcd
connection and lease manager, the optional heartbeat, the mesh (first config directory scan),
the REST API and the metrics server. ``stop()`` undoes it in reverse order and never drains
caches: a restarted process takes them over. Usable in-process by tests (``port 0`` anywhere).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field

from apiserver._heap import freeze_after_bootstrap
from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstore import KVBackend
from apiserver.kvstore.heartbeat import Heartbeat
from apiserver.kvstore.leases import DEFAULT_LEASE_TTL, LeaseManager
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.kvstoremesh._api import APIServer
from apiserver.kvstoremesh._config import DEFAULT_API_SERVE_ADDR, MeshConfig
from apiserver.kvstoremesh._factories import config_enforcers, etcd_connector, sync_store_writers
from apiserver.kvstoremesh._mesh import KVStoreMesh
from apiserver.kvstoremesh._remote import Connector
from apiserver.kvstoremesh._status import RemoteClusterStatus
from apiserver.metrics import KVSTOREMESH_NAMESPACE, ApiLimiterMetrics, Metrics
from apiserver.server import HealthServer, MetricsServer

log = get_logger(__name__)

LOCAL_CONNECT_TIMEOUT = 900.0  # upstream initialConnectionTimeout: 15 minutes


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    cluster: ClusterInfo
    config_dir: str
    kvstore_opts: Mapping[str, str]
    mesh: MeshConfig = field(default_factory=MeshConfig)
    lease_ttl: float = DEFAULT_LEASE_TTL
    enable_heartbeat: bool = False
    health_port: int = 9880
    health_host: str = ""
    prometheus_serve_addr: str = ""
    api_serve_addr: str = DEFAULT_API_SERVE_ADDR
    local_connect_timeout: float = LOCAL_CONNECT_TIMEOUT


class KVStoreMeshDaemon:
    def __init__(self, settings: DaemonSettings, *, metrics: Metrics | None = None,
                 connector: Connector | None = None, local_backend: KVBackend | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics(KVSTOREMESH_NAMESPACE)
        self._connector = connector or etcd_connector(connect_timeout=settings.mesh.connect_timeout)
        self._given_backend = local_backend
        self.backend: KVBackend | None = None
        self.mesh: KVStoreMesh | None = None
        self.limiter = APILimiter.for_batched_writes(settings.kvstore_opts)
        self.limiter.observe(ApiLimiterMetrics(self.metrics))
        self.health = HealthServer(settings.health_port, ready=self.ready, host=settings.health_host)
        self.api = APIServer(settings.api_serve_addr, self._status)
        self.metrics_server = (MetricsServer(settings.prometheus_serve_addr, self.metrics.registry)
                               if settings.prometheus_serve_addr else None)
        self._leases: LeaseManager | None = None
        self._heartbeat: Heartbeat | None = None

    def ready(self) -> bool:
        return self.mesh is not None and self.mesh.ready()

    def _status(self) -> list[RemoteClusterStatus]:
        return self.mesh.status() if self.mesh is not None else []

    async def _connect_local(self) -> KVBackend:
        if self._given_backend is not None:
            return self._given_backend
        from apiserver.kvstore.etcd import EtcdClient, EtcdConfig

        config = EtcdConfig.from_kvstore_opts(self.settings.kvstore_opts)
        log.info("Connecting to the local etcd", endpoints=",".join(config.endpoints))
        client: KVBackend = await EtcdClient.connect(config, timeout=self.settings.local_connect_timeout)
        return client

    async def start(self) -> None:
        s = self.settings
        await self.health.start()
        self.backend = await self._connect_local()
        self._leases = LeaseManager(self.backend, s.lease_ttl, grant_ahead=True)
        self._leases.start()
        if s.enable_heartbeat:
            self._heartbeat = Heartbeat(self.backend, self._leases, limiter=self.limiter, metrics=self.metrics)
            self._heartbeat.start()
        self.mesh = KVStoreMesh(
            s.cluster, self.backend, metrics=self.metrics, connector=self._connector, config=s.mesh,
            writer_factory=sync_store_writers(self.backend, self._leases, metrics=self.metrics,
                                              limiter=self.limiter),
            enforcer_factory=config_enforcers(self.backend, self._leases,
                                              interval=s.mesh.cluster_config_enforce_interval,
                                              metrics=self.metrics, limiter=self.limiter),
            on_bootstrap=self.limiter.bootstrap_complete)
        await self.mesh.start(s.config_dir)
        await self.api.start()
        if self.metrics_server is not None:
            await self.metrics_server.start()
        log.info("KVStoreMesh started", cluster=s.cluster.name, cluster_id=s.cluster.id,
                 config_dir=s.config_dir)

    async def stop(self) -> None:
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        await self.api.stop()
        if self.mesh is not None:
            await self.mesh.stop()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        if self._leases is not None:
            await self._leases.stop()
        if self.backend is not None and self.backend is not self._given_backend:
            await self.backend.close()
        await self.health.stop()
        log.info("KVStoreMesh stopped")


async def run_until_signalled(daemon: KVStoreMeshDaemon) -> None:
    """Start the daemon, serve until SIGTERM/SIGINT, then stop it."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    # Start-up may wait long for the local etcd (up to 15 minutes): a signal must still stop it.
    starting = asyncio.create_task(daemon.start(), name="kvstoremesh-start")
    signalled = asyncio.create_task(stopping.wait(), name="kvstoremesh-signal")

    async def bootstrapped() -> None:
        await starting
        assert daemon.mesh is not None
        await daemon.mesh.wait_ready()

    # This is the process's entry point: the place to set the process-wide collector policy.
    freezer = asyncio.create_task(freeze_after_bootstrap(bootstrapped()), name="kvstoremesh-freeze-heap")
    try:
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start-up raises here
            await signalled
        log.info("Signal received, shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await cancel_and_wait(starting, signalled, freezer)
        await daemon.stop()
