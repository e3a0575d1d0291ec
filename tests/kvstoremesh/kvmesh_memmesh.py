"""``MemMesh``: a KVStoreMesh over in-memory etcds (``MemoryKV``), with fast timers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kvmesh_helpers import RemoteData, diff, eventually, expected_cache, local_view

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert.clusterconfig import CiliumClusterConfig
from apiserver.kvstore import KVBackend, UnavailableError
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstoremesh import KVStoreMesh, MeshConfig
from apiserver.kvstoremesh._factories import config_enforcers, sync_store_writers
from apiserver.metrics import KVSTOREMESH_NAMESPACE, Metrics
from localmesh.memory.kv import MemoryKV

LOCAL = ClusterInfo("local", 1)

FAST = MeshConfig(
    per_cluster_ready_timeout=2.0, global_ready_timeout=10.0, drain_grace_period=0.05, drain_backoff=0.01,
    heartbeat_timeout=0, status_check_interval=0.05, max_status_failures=2, request_timeout=1.0,
    connect_timeout=1.0, cluster_config_timeout=0.3, cluster_config_retry_max=0.05,
    reconnect_backoff_min=0.01, reconnect_backoff_max=0.1, config_poll_interval=0.02)


class Connection:
    """One client connection to the in-memory etcd currently serving ``name``.

    Like a real client whose server was replaced behind the same address, calls go to whatever
    store serves the name *now*, while a watch opened earlier stays on the store it was opened
    on. Closing the connection leaves the store running.
    """

    def __init__(self, remotes: MemRemotes, name: str) -> None:
        self._remotes = remotes
        self._name = name
        self.closed = False

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or self.__dict__.get("closed", True):
            raise AttributeError(attr)
        return getattr(self._remotes.kvs[self._name], attr)

    async def close(self) -> None:
        self.closed = True


class MemRemotes:
    """Remote etcds by cluster name; ``down`` ones refuse connections."""

    def __init__(self) -> None:
        self.kvs: dict[str, MemoryKV] = {}
        self.down: set[str] = set()
        self.connects: Counter[str] = Counter()
        self.on_connect: Callable[[str], None] | None = None

    async def connect(self, name: str, path: str) -> KVBackend:
        self.connects[name] += 1
        if self.on_connect is not None:
            self.on_connect(name)
        if name in self.down or name not in self.kvs:
            raise UnavailableError(f"connection refused by the etcd of {name}")
        return cast(KVBackend, Connection(self, name))


class MemMesh:
    def __init__(self, tmp_path: Path, config: MeshConfig = FAST, local: ClusterInfo = LOCAL,
                 local_kv: MemoryKV | None = None, remotes: MemRemotes | None = None) -> None:
        self.dir = tmp_path / "clustermesh"
        self.dir.mkdir(exist_ok=True)
        self.local_info = local
        self.local = local_kv or MemoryKV()
        self.leases = LeaseManager(self.local, 60)
        self.metrics = Metrics(KVSTOREMESH_NAMESPACE)
        self.remotes = remotes or MemRemotes()
        self.bootstrapped = 0
        self.mesh = KVStoreMesh(
            local, self.local, metrics=self.metrics, connector=self.remotes.connect, config=config,
            writer_factory=sync_store_writers(self.local, self.leases, metrics=self.metrics, limiter=None),
            enforcer_factory=config_enforcers(self.local, self.leases, interval=300, metrics=self.metrics,
                                              limiter=None),
            on_bootstrap=self._bootstrapped)
        self.data: dict[str, RemoteData] = {}

    def _bootstrapped(self) -> None:
        self.bootstrapped += 1

    async def add_remote(self, data: RemoteData, *, with_canaries: bool = True, config_file: bool = True,
                         kv: MemoryKV | None = None) -> MemoryKV:
        kv = kv or MemoryKV(cluster_id=0x1000 + data.cluster_id)
        for key, value in data.all_keys(with_canaries=with_canaries).items():
            await kv.put(key, value)
        self.remotes.kvs[data.name] = kv
        self.data[data.name] = data
        if config_file:
            self.write_config(data.name)
        return kv

    def write_config(self, name: str, extra: str = "") -> None:
        (self.dir / name).write_text(f"endpoints:\n- https://{name}.mesh.cilium.io:2379\n{extra}")

    def remove_config(self, name: str) -> None:
        (self.dir / name).unlink()

    async def start(self) -> None:
        self.leases.start()
        await self.mesh.start(str(self.dir))

    async def stop(self) -> None:
        await self.mesh.stop()
        await self.leases.stop()

    def view(self, name: str) -> dict[str, bytes]:
        return local_view(self.local.snapshot(), name)

    def expected(self, name: str, config: CiliumClusterConfig | None = None) -> dict[str, bytes]:
        cfg = config or self.data[name].config
        assert cfg is not None
        return expected_cache(self.remotes.kvs[name].snapshot(), name, cfg)

    async def mirrored(self, name: str, timeout: float = 5.0,
                       config: CiliumClusterConfig | None = None) -> None:
        """Wait until the local cache of ``name`` equals the remote's state EXACTLY."""
        await eventually(lambda: self.view(name) == self.expected(name, config), timeout,
                         what=f"exact mirror of {name}")

    def explain(self, name: str) -> str:
        return diff(self.view(name), self.expected(name))

    def status(self, name: str) -> Any:
        for st in self.mesh.status():
            if st.name == name:
                return st
        return None

    def metric(self, metric: str, **labels: str) -> float | None:
        value = self.metrics.registry.get_sample_value(f"{KVSTOREMESH_NAMESPACE}_{metric}", labels)
        return value
