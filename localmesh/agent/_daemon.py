"""The agent process: KVStoreMesh's remote-cluster machinery reading the mesh as an agent, into memory.

Per config file of the agents' Secret ``cilium-clustermesh`` (mounted as a directory), the product's
``RemoteCluster`` connects with that file -- to the local mesh etcd as ``local-<C>`` when KVStoreMesh
runs, or to the remote etcd as ``remote`` when it does not -- reads ``cilium/cluster-config/<R>`` first
(``cached: true`` switches every prefix to ``cilium/cache/...``), waits for the sync canaries, then
watches nodes, services, identities and IPs. Nothing is written anywhere: the caches are in memory and
the cluster configuration is not enforced. A small HTTP API serves the ClusterMesh section of
``cilium-dbg status -o json`` and the merged global services; ``agent-dbg`` reads it inside the pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from apiserver._logging import get_logger
from apiserver.clusterinfo import ClusterInfo
from apiserver.kube import KubeAPIError, KubeClient, KubeOptions, build_client
from apiserver.kvstoremesh import ConfigEnforcer, Connector, KVStoreMesh, MeshConfig, etcd_connector, status_to_json
from apiserver.metrics import Metrics
from apiserver.server import HttpServer, parse_listen_address
from localmesh.agent._local import local_services
from localmesh.agent._view import Caches, MeshView, build_view
from localmesh.memory.kv import MemoryKV

log = get_logger(__name__)

DEFAULT_API_ADDR = "127.0.0.1:9890"
CLUSTER_MESH_PATH = "/v1/cluster-mesh"
SERVICES_PATH = "/v1/services"


class _ReadOnly:
    """An agent never writes a cluster configuration: the enforcer does nothing."""

    async def write_once(self) -> bool:
        return True

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def _no_enforcer(cluster: str, value: bytes) -> ConfigEnforcer:
    return _ReadOnly()


@dataclass(frozen=True)
class AgentSettings:
    cluster: ClusterInfo
    config_dir: str
    api_serve_addr: str = DEFAULT_API_ADDR
    kube: KubeOptions | None = None  # the own cluster's API, for its global services (None: remotes only)
    # No drain: the agent's caches are memory, and a removed remote simply leaves the view.
    mesh: MeshConfig = field(default_factory=lambda: MeshConfig(disable_drain_on_disconnection=True))


class Agent:
    def __init__(self, settings: AgentSettings, *, connector: Connector | None = None) -> None:
        self.settings = settings
        self.caches = Caches()
        self._connector = connector or etcd_connector(connect_timeout=settings.mesh.connect_timeout)
        self.mesh: KVStoreMesh | None = None
        self._kube: KubeClient | None = None
        app = web.Application()
        app.router.add_get(CLUSTER_MESH_PATH, self._handle_cluster_mesh)
        app.router.add_get(SERVICES_PATH, self._handle_services)
        host, port = parse_listen_address(settings.api_serve_addr)
        self.api = HttpServer(app, host, port, "agent-api")

    async def start(self) -> None:
        s = self.settings
        self.mesh = KVStoreMesh(s.cluster, MemoryKV(), metrics=Metrics("cilium_agent_clustermesh"),
                                connector=self._connector, writer_factory=self.caches.writer_factory(),
                                enforcer_factory=_no_enforcer, config=s.mesh)
        if s.kube is not None:
            self._kube = await build_client(s.kube)
        await self.mesh.start(s.config_dir)
        await self.api.start()
        log.info("Agent started", cluster=s.cluster.name, config_dir=s.config_dir, api=s.api_serve_addr)

    async def stop(self) -> None:
        await self.api.stop()
        if self.mesh is not None:
            await self.mesh.stop()
        if self._kube is not None:
            await self._kube.close()

    async def view(self) -> MeshView:
        clusters = self.mesh.status() if self.mesh is not None else []
        local = None
        if self._kube is not None:
            try:
                local = await local_services(self._kube, self.settings.cluster)
            except (KubeAPIError, OSError, ValueError) as exc:
                log.warning("Cannot read the local cluster's services", error=str(exc))
        info = self.settings.cluster
        return build_view(self.caches, clusters, info.max_connected_clusters, local, (info.name, info.id))

    async def cluster_mesh(self) -> dict[str, Any]:
        """The ClusterMesh section of ``cilium-dbg status -o json``."""
        clusters = self.mesh.status() if self.mesh is not None else []
        view = await self.view()
        return {"clusters": [status_to_json(c) for c in clusters], "num-global-services": len(view.services)}

    async def _handle_cluster_mesh(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(await self.cluster_mesh()), content_type="application/json")

    async def _handle_services(self, request: web.Request) -> web.Response:
        view = await self.view()
        doc = {"services": [s.to_json() for _, s in sorted(view.services.items())],
               "rejected": [{"cluster": r.cluster, "resource": r.resource, "key": r.key, "reason": r.reason}
                            for r in view.rejected]}
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    @property
    def api_port(self) -> int:
        return self.api.port
