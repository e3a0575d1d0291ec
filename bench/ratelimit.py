"""Rate limits still hold with batching: an exporter started with ``etcd.qps=20`` must not write
faster than 20 Txns/s (burst 20), i.e. its initial export takes at least ``(Txns - 20) / 20`` s."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from apiserver.kvstore import MAX_TXN_OPS
from apiserver.paths import STATE_PREFIX
from bench._dataset import BenchShape, cluster_objects, expected_state
from bench._exporter import ExporterProcess
from bench._kv import connect, verify
from bench.export import READY_TIMEOUT, start_kubesim
from localmesh.testing.etcd import EtcdServer

QPS = 20
SHAPE = BenchShape(endpoints=5_000, identities=100, nodes=50, services=50, namespaces=10)
_CANARIES = 5  # one per sync store, each one limited operation


@dataclass
class RateLimitCheck:
    qps: int
    keys: int
    min_txns: int
    seconds: float

    @property
    def min_seconds(self) -> float:
        return max(0.0, (self.min_txns - QPS) / QPS)  # the first ``burst`` Txns are free

    @property
    def honoured(self) -> bool:
        return self.seconds >= self.min_seconds


def _min_txns(expected: dict[str, bytes]) -> int:
    per_store: dict[str, int] = {}
    for key in expected:
        store = "/".join(key.split("/")[:4])  # cilium/state/<kind>/v1
        per_store[store] = per_store.get(store, 0) + 1
    return sum(math.ceil(n / MAX_TXN_OPS) for n in per_store.values()) + _CANARIES


async def run(workdir: Path) -> RateLimitCheck:
    expected = expected_state(SHAPE, cluster_objects(SHAPE))
    async with EtcdServer(name="bench-ratelimit") as server:
        client = await connect(server.endpoint)
        kubesim, kubeconfig, _ = await start_kubesim(SHAPE, workdir / "ratelimit")
        exporter = ExporterProcess(SHAPE, server.endpoint, kubeconfig, workdir / "ratelimit" / "exporter.log",
                                   kvstore_opts=[f"etcd.qps={QPS}"])
        try:
            await exporter.start()
            await exporter.wait_ready(READY_TIMEOUT)
            seconds = await exporter.bootstrap_seconds()
            await verify(client, STATE_PREFIX + "/", expected, "rate-limited export")
        finally:
            await exporter.stop()
            await kubesim.stop()
            await client.close()
    return RateLimitCheck(QPS, len(expected), _min_txns(expected), seconds)
