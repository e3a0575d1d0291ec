"""An in-process exporter against a real etcd and the Kubernetes API emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from apiserver.clusterinfo import ClusterInfo
from apiserver.clustermesh.exporter import Exporter, ExporterTimings
from apiserver.clustermesh.options import ExporterOptions
from apiserver.kube import KubeClient, KubeOptions, build_client
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.options import KVStoreOptions
from apiserver.metrics import Metrics
from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.polling import eventually as wait_for

CLUSTER = ClusterInfo("cluster1", 1)


async def dump_etcd(endpoint: str, prefix: str = "") -> dict[str, bytes]:
    client = await EtcdClient.connect(EtcdConfig(endpoints=(endpoint,)))
    try:
        kvs, _ = await client.list_prefix(prefix)
        return {kv.key: kv.value for kv in kvs}
    finally:
        await client.close()


class Harness:
    def __init__(self, etcd: EtcdServer, sim: KubeSim, kubeconfig: Path) -> None:
        self.etcd = etcd
        self.sim = sim
        self.kubeconfig = kubeconfig
        self.client: EtcdClient | None = None
        self.exporter: Exporter | None = None
        self.metrics: Metrics | None = None
        self._kube: KubeClient | None = None

    async def etcd_client(self) -> EtcdClient:
        if self.client is None:
            self.client = await EtcdClient.connect(EtcdConfig(endpoints=(self.etcd.endpoint,)))
        return self.client

    async def start(self, *, wait_ready: bool = True, timings: ExporterTimings | None = None,
                    **overrides: Any) -> Exporter:
        fields: dict[str, Any] = {"cluster": CLUSTER, "kvstore": KVStoreOptions(address=self.etcd.endpoint)}
        fields.update(overrides)
        options = ExporterOptions(**fields)
        options.validate()
        backend = await EtcdClient.connect(EtcdConfig(endpoints=(self.etcd.endpoint,)))
        self._backend = backend
        self._kube = await build_client(KubeOptions(kubeconfig_path=str(self.kubeconfig)))
        self.metrics = Metrics()
        self.exporter = Exporter(options, backend, self._kube, self.metrics,
                                 timings=timings or ExporterTimings(
                                     heartbeat_interval=0.5, cluster_config_interval=0.5,
                                     lease_keepalive_interval=0.5, store_check_interval=0.2))
        await self.exporter.start()
        if wait_ready:
            await asyncio.wait_for(self.exporter.wait_ready(), 20)
        return self.exporter

    async def stop(self) -> None:
        if self.exporter is not None:
            await self.exporter.stop()
            await self._backend.close()
            self.exporter = None
        if self._kube is not None:
            await self._kube.close()
            self._kube = None

    async def dump(self, prefix: str = "cilium/") -> dict[str, bytes]:
        client = await self.etcd_client()
        kvs, _ = await client.list_prefix(prefix)
        return {kv.key: kv.value for kv in kvs}

    async def data(self) -> dict[str, bytes]:
        """Exported data keys (no canaries, config or heartbeat)."""
        return await self.dump("cilium/state/")

    async def wait_data(self, expected: Callable[[dict[str, bytes]], bool], what: str, timeout: float = 10.0) -> None:
        async def check() -> bool:
            return expected(await self.data())

        await wait_for(check, timeout, what)


@pytest.fixture
async def harness(etcd_server: EtcdServer, kubesim: KubeSim, tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(etcd_server, kubesim, Path(kubesim.write_kubeconfig(tmp_path / "kubeconfig")))
    try:
        yield h
    finally:
        await h.stop()
        if h.client is not None:
            await h.client.close()
