"""Builds and runs the simulated mesh. Everything is real but the Kubernetes API server: real etcd
processes, the real exporter and KVStoreMesh code, talking over loopback."""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from apiserver._logging import get_logger
from apiserver.clusterinfo import ClusterInfo
from apiserver.clustermesh.exporter import Exporter
from apiserver.clustermesh.options import ExporterOptions
from apiserver.ctl import facts_from, prerequisite_checks
from apiserver.kube import KubeClient, KubeOptions, build_client
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstoremesh import DaemonSettings, KVStoreMeshDaemon, MeshConfig
from apiserver.metrics import APISERVER_NAMESPACE, KVSTOREMESH_NAMESPACE, Metrics
from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.synthetic import ClusterShape, synthetic_cluster

log = get_logger("demo")


@dataclass
class DemoCluster:
    info: ClusterInfo
    shape: ClusterShape
    etcd: EtcdServer
    sim: KubeSim
    exporter: Exporter | None = None
    kvstoremesh: KVStoreMeshDaemon | None = None
    client: EtcdClient | None = None
    _kube: KubeClient | None = field(default=None, repr=False)

    async def keys(self, prefix: str) -> dict[str, bytes]:
        assert self.client is not None
        kvs, _ = await self.client.list_prefix(prefix)
        return {kv.key: kv.value for kv in kvs}


class SimulatedMesh:
    """``clusters`` clusters named ``cluster1``..``clusterN`` with IDs 1..N, fully meshed."""

    def __init__(self, clusters: int = 3, shape: ClusterShape | None = None, workdir: str | None = None) -> None:
        if not 1 <= clusters <= 16:
            raise ValueError("the demo runs 1 to 16 clusters")
        self._count = clusters
        self._template = shape or ClusterShape()
        self._stack = AsyncExitStack()
        self._workdir = Path(workdir or tempfile.mkdtemp(prefix="clustermesh-demo-"))
        self.clusters: list[DemoCluster] = []

    async def start(self) -> None:
        started = time.monotonic()
        for i in range(1, self._count + 1):
            await self._start_cluster(i)
        for cluster in self.clusters:
            await self._start_kvstoremesh(cluster)
        log.info("Simulated mesh started", clusters=self._count, seconds=round(time.monotonic() - started, 2))

    async def _start_cluster(self, i: int) -> None:
        name = f"cluster{i}"
        shape = ClusterShape(**{**self._template.__dict__, "name": name, "cluster_index": i})
        etcd = EtcdServer(name=f"etcd-{name}")
        await etcd.start()
        self._stack.push_async_callback(etcd.stop)
        sim = KubeSim()
        await sim.start()
        self._stack.push_async_callback(sim.stop)
        for obj in synthetic_cluster(shape):
            sim.apply(obj)
        cluster = DemoCluster(ClusterInfo(name, i), shape, etcd, sim)
        cluster.client = await EtcdClient.connect(EtcdConfig(endpoints=(etcd.endpoint,)))
        self._stack.push_async_callback(cluster.client.close)
        kubeconfig = sim.write_kubeconfig(self._workdir / f"{name}.kubeconfig")
        kube = await build_client(KubeOptions(kubeconfig_path=str(kubeconfig)))
        self._stack.push_async_callback(kube.close)
        options = ExporterOptions(cluster=cluster.info, kvstore=KVStoreOptions(address=etcd.endpoint))
        options.validate()
        backend = await EtcdClient.connect(EtcdConfig(endpoints=(etcd.endpoint,)))
        self._stack.push_async_callback(backend.close)
        cluster.exporter = Exporter(options, backend, kube, Metrics(APISERVER_NAMESPACE))
        await cluster.exporter.start()
        self._stack.push_async_callback(cluster.exporter.stop)
        self.clusters.append(cluster)
        log.info("Cluster started", cluster=name, etcd=etcd.endpoint, kube_api=sim.url)

    async def _start_kvstoremesh(self, cluster: DemoCluster) -> None:
        config_dir = self._workdir / f"{cluster.info.name}-clustermesh"
        config_dir.mkdir(exist_ok=True)
        for peer in self.clusters:
            if peer is not cluster:
                (config_dir / peer.info.name).write_text(f"endpoints:\n- {peer.etcd.endpoint}\n")
        settings = DaemonSettings(
            cluster=cluster.info, config_dir=str(config_dir),
            kvstore=KVStoreOptions(address=cluster.etcd.endpoint),
            mesh=MeshConfig(per_cluster_ready_timeout=30.0),
            health_port=0, health_host="127.0.0.1", api_serve_addr="127.0.0.1:0")
        cluster.kvstoremesh = KVStoreMeshDaemon(settings, metrics=Metrics(KVSTOREMESH_NAMESPACE))
        await cluster.kvstoremesh.start()
        self._stack.push_async_callback(cluster.kvstoremesh.stop)

    def prerequisite_problems(self) -> list[str]:
        """The mesh prerequisites, read from each cluster's emulated API (as ``clustermeshctl doctor`` does)."""
        facts = []
        for cluster in self.clusters:
            config = cluster.sim.get("v1", "ConfigMap", "cilium-config", namespace="kube-system") or {}
            facts.append(facts_from(cluster.info.name, dict(config.get("data") or {}),
                                    cluster.sim.list("cilium.io/v2", "CiliumNode")))
        return [problem for check in prerequisite_checks(facts) if check.ok is False for problem in check.problems]

    async def wait_ready(self, timeout: float = 120.0) -> None:
        async def all_ready() -> None:
            for cluster in self.clusters:
                assert cluster.exporter is not None and cluster.kvstoremesh is not None
                assert cluster.kvstoremesh.mesh is not None
                await cluster.exporter.wait_ready()
                await cluster.kvstoremesh.mesh.wait_ready()

        async with asyncio.timeout(timeout):
            await all_ready()

    async def stop(self) -> None:
        await self._stack.aclose()
