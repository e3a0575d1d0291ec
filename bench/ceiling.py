"""The ceiling: the project's etcd client writing a data set in 128-op Txn batches, as fast as it can.

Every figure of the suite is a ratio to this, measured in the same run on the same etcd with the
same keys and values (under a scratch prefix, deleted afterwards). ``in_flight`` Txns run at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from apiserver.kvstore import MAX_TXN_OPS, Op, Put
from apiserver.kvstore.etcd import EtcdClient
from bench._kv import verify, wipe
from bench._procs import CpuMeter
from bench._stats import median_run
from localmesh.testing.etcd import EtcdServer

SCRATCH = "bench-ceiling/"
REPEATS = 3


@dataclass(frozen=True)
class Ceiling:
    keys: int
    value_bytes: int
    in_flight: int
    seconds: float
    etcd_cpu: float  # CPU seconds etcd used for the writes

    @property
    def keys_per_second(self) -> float:
        return self.keys / self.seconds


async def measure(server: EtcdServer, client: EtcdClient, data: Mapping[str, bytes], in_flight: int) -> Ceiling:
    """Write ``data`` (under ``SCRATCH``), check it, then wipe the etcd."""
    ops: list[Op] = [Put(SCRATCH + key, value) for key, value in data.items()]
    batches = [ops[i:i + MAX_TXN_OPS] for i in range(0, len(ops), MAX_TXN_OPS)]
    queue = iter(batches)

    async def writer() -> None:
        for batch in queue:  # shared iterator: each batch is taken by exactly one writer
            await client.txn((), batch)

    meter = CpuMeter({"etcd": [p for p in (server.pid,) if p is not None]})
    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(in_flight)))
    seconds = time.perf_counter() - started
    etcd_cpu = meter.read()["etcd"]
    await verify(client, SCRATCH, {SCRATCH + k: v for k, v in data.items()}, f"ceiling x{in_flight}")
    await wipe(server, client)
    return Ceiling(len(data), sum(map(len, data.values())), in_flight, seconds, etcd_cpu)


async def measure_both(server: EtcdServer, client: EtcdClient, data: Mapping[str, bytes],
                       repeats: int = REPEATS) -> dict[int, Ceiling]:
    """1 and 4 Txns in flight, each the median of ``repeats`` interleaved runs (2 CPUs shared with
    other processes make single runs vary by 20 % or more)."""
    runs: dict[int, list[Ceiling]] = {1: [], 4: []}
    for _ in range(repeats):
        for n, results in runs.items():
            results.append(await measure(server, client, data, n))
    return {n: median_run(results, lambda c: c.seconds) for n, results in runs.items()}
