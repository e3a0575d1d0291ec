"""Real-etcd harness for KVStoreMesh tests: etcd processes, an in-process
daemon with fast timers, and exact-mirror assertions. Everything started here is stopped here."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from kvmesh_helpers import RemoteData, diff, eventually, expected_cache, local_view

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert.clusterconfig import CiliumClusterConfig, parse_cluster_config
from apiserver.kvstore import Put
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstoremesh import DaemonSettings, KVStoreMeshDaemon, MeshConfig
from localmesh.testing.etcd import EtcdServer

LOCAL = ClusterInfo("local", 1)
ETCD_FAST = MeshConfig(
    per_cluster_ready_timeout=5.0, global_ready_timeout=30.0, drain_grace_period=0.3, drain_backoff=0.05,
    heartbeat_timeout=0, status_check_interval=0.2, max_status_failures=2, request_timeout=2.0,
    connect_timeout=2.0, cluster_config_timeout=1.0, cluster_config_retry_max=0.2,
    reconnect_backoff_min=0.05, reconnect_backoff_max=0.5, config_poll_interval=0.05)


@contextlib.asynccontextmanager
async def etcds(*names: str) -> AsyncIterator[dict[str, EtcdServer]]:
    """Start one plain etcd per name, in parallel; kill and delete them all on exit."""
    servers = {n: EtcdServer(name=n) for n in names}
    try:
        await asyncio.gather(*(s.start() for s in servers.values()))
        yield servers
    finally:
        for server in servers.values():
            await server.close()


@contextlib.asynccontextmanager
async def client_of(server: EtcdServer | str) -> AsyncIterator[EtcdClient]:
    endpoint = server if isinstance(server, str) else server.endpoint
    client = await EtcdClient.connect(EtcdConfig(endpoints=(endpoint,)), timeout=10.0, check_cluster_id=False)
    try:
        yield client
    finally:
        await client.close()


async def seed(server: EtcdServer, data: RemoteData, *, with_canaries: bool = True) -> None:
    async with client_of(server) as client:
        await client.apply([Put(k, v) for k, v in data.all_keys(with_canaries=with_canaries).items()])


async def snapshot(server: EtcdServer | str, prefix: str = "cilium/") -> dict[str, bytes]:
    async with client_of(server) as client:
        kvs, _ = await client.list_prefix(prefix)
    return {kv.key: kv.value for kv in kvs}


def write_remote_config(config_dir: Path, name: str, endpoint: str, extra: str = "") -> None:
    (config_dir / name).write_text(f"endpoints:\n- {endpoint}\n{extra}")


class Mesh:
    """An in-process KVStoreMesh daemon on a real local etcd."""

    def __init__(self, tmp: Path, local: EtcdServer, *, cluster: ClusterInfo = LOCAL,
                 config: MeshConfig = ETCD_FAST, enable_heartbeat: bool = False, name: str = "mesh") -> None:
        self.dir = tmp / f"{name}-config"
        self.dir.mkdir()
        self.local = local
        self.settings = DaemonSettings(
            cluster=cluster, config_dir=str(self.dir), kvstore=KVStoreOptions(address=local.endpoint),
            mesh=config, enable_heartbeat=enable_heartbeat, health_port=0, health_host="127.0.0.1",
            api_serve_addr="127.0.0.1:0", prometheus_serve_addr="127.0.0.1:0")
        self.daemon = KVStoreMeshDaemon(self.settings)

    async def __aenter__(self) -> Mesh:
        try:
            await self.daemon.start()
        except BaseException:
            await self.daemon.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.daemon.stop()

    def add(self, name: str, endpoint: str, extra: str = "") -> None:
        write_remote_config(self.dir, name, endpoint, extra)

    def remove(self, name: str) -> None:
        (self.dir / name).unlink()

    async def clusters(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(self.daemon.api.url + "/v1/cluster") as resp:
            assert resp.status == 200 and resp.content_type == "application/json"
            result: list[dict[str, Any]] = await resp.json()
            return result

    async def cluster(self, name: str) -> dict[str, Any] | None:
        return next((c for c in await self.clusters() if c["name"] == name), None)

    async def readyz(self) -> int:
        async with aiohttp.ClientSession() as session, session.get(self.daemon.health.url + "/readyz") as resp:
            return resp.status

    async def metrics_text(self) -> str:
        assert self.daemon.metrics_server is not None
        async with aiohttp.ClientSession() as session, \
                session.get(self.daemon.metrics_server.url + "/metrics") as resp:
            return await resp.text()

    async def view(self, name: str) -> dict[str, bytes]:
        return local_view(await snapshot(self.local), name)

    async def mirrored(self, name: str, remote: EtcdServer | str, timeout: float = 15.0) -> None:
        """Wait until the local cache of ``name`` equals ``remote``'s state EXACTLY, then check that
        ``/v1/cluster`` reports it ready with the right counts."""
        state: dict[str, Any] = {}

        async def exact() -> bool:
            remote_snap = await snapshot(remote)
            raw = remote_snap.get(f"cilium/cluster-config/{name}")
            if raw is None:
                return False
            cfg = parse_cluster_config(raw)
            state["expected"] = expected_cache(remote_snap, name, cfg)
            state["actual"] = await self.view(name)
            state["cfg"] = cfg
            return bool(state["actual"] == state["expected"])

        try:
            await eventually(exact, timeout, what=f"exact mirror of {name}")
        except AssertionError as exc:
            entry = await self.cluster(name)
            raise AssertionError(f"{exc}: {diff(state.get('actual', {}), state.get('expected', {}))}; "
                                 f"/v1/cluster: {entry}") from None
        await eventually(lambda: self._reports(name, state["expected"], state["cfg"]), timeout,
                         what=f"/v1/cluster truth for {name}")

    async def _reports(self, name: str, expected: dict[str, bytes], cfg: CiliumClusterConfig) -> bool:
        entry = await self.cluster(name)
        if entry is None or not entry.get("ready"):
            return False

        def count(prefix: str) -> int:
            return sum(1 for k in expected if k.startswith(prefix))

        want = {
            "num-nodes": count(f"cilium/cache/nodes/v1/{name}/"),
            "num-shared-services": count(f"cilium/cache/services/v1/{name}/"),
            "num-service-exports": count(f"cilium/cache/serviceexports/v1/{name}/"),
            "num-identities": count(f"cilium/cache/identities/v1/{name}/"),
            "num-endpoints": count(f"cilium/cache/ip/v1/{name}/"),
        }
        got = {k: entry.get(k, 0) for k in want}
        config = entry.get("config", {})
        return got == want and entry.get("connected") is True and config.get("cluster-id") == cfg.id \
            and config.get("retrieved") is True and bool(config.get("kvstoremesh")) == cfg.cached


def with_config(base: MeshConfig, **changes: Any) -> MeshConfig:
    return dataclasses.replace(base, **changes)
