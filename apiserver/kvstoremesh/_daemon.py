"""The KVStoreMesh process: local etcd, leases, heartbeat, the mesh, and its three HTTP servers.

Start order: health server first (probes answer ``NotReady`` meanwhile), then the local etcd
connection and lease manager, the optional heartbeat, the mesh (first config directory scan),
the REST API and the metrics server, each a part of a ``PartRunner``: ``stop()`` undoes them in
reverse order -- every one, even when one fails or the start failed half-way -- and never drains
caches: a restarted process takes them over. Usable in-process by tests (``port 0`` anywhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apiserver._heap import freeze_after_bootstrap
from apiserver._logging import get_logger
from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstore import KVBackend
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.heartbeat import Heartbeat
from apiserver.kvstore.leases import DEFAULT_LEASE_TTL, LeaseManager
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.kvstoremesh._api import APIServer
from apiserver.kvstoremesh._config import DEFAULT_API_SERVE_ADDR, MeshConfig
from apiserver.kvstoremesh._factories import config_enforcers, etcd_connector, sync_store_writers
from apiserver.kvstoremesh._mesh import KVStoreMesh
from apiserver.kvstoremesh._remote import Connector
from apiserver.kvstoremesh._status import RemoteClusterStatus
from apiserver.metrics import KVSTOREMESH_NAMESPACE, ApiLimiterMetrics, Metrics
from apiserver.runner import PartRunner
from apiserver.server import HealthServer, MetricsServer

log = get_logger(__name__)

LOCAL_CONNECT_TIMEOUT = 900.0  # upstream initialConnectionTimeout: 15 minutes


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    cluster: ClusterInfo
    config_dir: str
    kvstore: KVStoreOptions
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
        self.limiter = APILimiter.for_batched_writes(settings.kvstore)
        self.limiter.observe(ApiLimiterMetrics(self.metrics))
        self.health = HealthServer(settings.health_port, ready=self.ready, host=settings.health_host)
        self.api = APIServer(settings.api_serve_addr, self._status)
        self.metrics_server = (MetricsServer(settings.prometheus_serve_addr, self.metrics.registry)
                               if settings.prometheus_serve_addr else None)
        self._leases: LeaseManager | None = None
        self._parts = PartRunner("kvstoremesh")

    def ready(self) -> bool:
        return self.mesh is not None and self.mesh.ready()

    def _status(self) -> list[RemoteClusterStatus]:
        return self.mesh.status() if self.mesh is not None else []

    async def _connect_local(self) -> KVBackend:
        if self._given_backend is not None:
            return self._given_backend
        config = EtcdConfig.from_options(self.settings.kvstore)
        log.info("Connecting to the local etcd", endpoints=",".join(config.endpoints))
        client: KVBackend = await EtcdClient.connect(config, timeout=self.settings.local_connect_timeout)
        self._parts.on_stop("local etcd client", client.close)
        return client

    async def start(self) -> None:
        """Start every part, in order; whatever started is undone by ``stop()``, also after a
        failed or cancelled start."""
        s, parts = self.settings, self._parts
        await parts.start("health server", self.health.start, self.health.stop)
        self.backend = await self._connect_local()
        leases = self._leases = LeaseManager(self.backend, s.lease_ttl, grant_ahead=True)
        leases.start()
        parts.on_stop("leases", leases.stop)
        if s.enable_heartbeat:
            heartbeat = Heartbeat(self.backend, leases, limiter=self.limiter, metrics=self.metrics)
            heartbeat.start()
            parts.on_stop("heartbeat", heartbeat.stop)
        mesh = self.mesh = KVStoreMesh(
            s.cluster, self.backend, metrics=self.metrics, connector=self._connector, config=s.mesh,
            writer_factory=sync_store_writers(self.backend, leases, metrics=self.metrics,
                                              limiter=self.limiter),
            enforcer_factory=config_enforcers(self.backend, leases,
                                              interval=s.mesh.cluster_config_enforce_interval,
                                              metrics=self.metrics, limiter=self.limiter),
            on_bootstrap=self.limiter.bootstrap_complete)
        await parts.start("mesh", lambda: mesh.start(s.config_dir), mesh.stop)
        await parts.start("REST API", self.api.start, self.api.stop)
        if self.metrics_server is not None:
            await parts.start("metrics server", self.metrics_server.start, self.metrics_server.stop)
        log.info("KVStoreMesh started", cluster=s.cluster.name, cluster_id=s.cluster.id,
                 config_dir=s.config_dir)

    async def stop(self) -> None:
        """Stop what ``start`` started, in reverse; never drains caches."""
        await self._parts.stop()
        log.info("KVStoreMesh stopped")


async def start_daemon(runner: PartRunner, daemon: KVStoreMeshDaemon) -> None:
    """The process: the daemon as one part of ``runner``, and the heap policy once it is ready."""
    runner.on_stop("kvstoremesh", daemon.stop)
    await daemon.start()
    assert daemon.mesh is not None
    # This is the process's entry point: the place to set the process-wide collector policy.
    runner.spawn("heap freezer", freeze_after_bootstrap(daemon.mesh.wait_ready()))
