"""Floors: the least any Python exporter or mirror has to do, measured in the same run.

A ceiling says how fast etcd takes pre-built Txns. A floor says how fast a bare Python program on
the same stack (aiohttp + orjson for the API server, this project's gRPC etcd client) gets the
same data there when it does only the unavoidable work, and nothing a production component needs
besides: no cache, no IP ownership, no sync queue (dedup, retries, stale keys), no canaries, no
readiness. It tells how much of the gap to the ceiling is the implementation's and how much the
language's and the machine's. Each run is checked key by key, then wiped.

- Export floor (CiliumEndpoints, the 94 % of the keys): list pages from the emulator, decode,
  convert with the project's converter, write leased 128-put Txns, 8 in flight.
- Mirror floor: read the remote's pages, re-key under ``cilium/cache``, write leased 128-put
  Txns, 8 in flight.

Both read up to two pages ahead of the writer. A floor is simple, not proven optimal: it bounds
what the unavoidable work costs in CPU (its CPU row), and a component may still beat its wall time
by overlapping better.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from apiserver.convert.endpoints import cilium_endpoint_ip_entries
from apiserver.kvstore import MAX_TXN_OPS, Put
from apiserver.kvstore.etcd import EtcdClient
from apiserver.kvstoremesh._resources import RESOURCES
from apiserver.paths import IP_DEFAULT_PREFIX
from bench._dataset import KeyValues
from bench._kv import verify, wipe
from bench._procs import CpuMeter
from bench._stats import median_run
from localmesh.testing.etcd import EtcdServer

REPEATS = 3
IN_FLIGHT = 8
READ_AHEAD = 2  # pages read while earlier ones are written
PAGE = 500  # the exporter's list page size
KEYS_PER_LEASE = 1000
CEP_PATH = "/apis/cilium.io/v2/ciliumendpoints"

Batches = AsyncIterator[list[tuple[str, bytes]]]


@dataclass
class Floor:
    keys: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, whole run

    @property
    def keys_per_second(self) -> float:
        return self.keys / self.seconds


async def _write(client: EtcdClient, batches: Batches) -> int:
    """Leased 128-put Txns from ``batches``, ``IN_FLIGHT`` at once; returns the keys written."""
    slots = asyncio.Semaphore(IN_FLIGHT)
    pending: set[asyncio.Task[None]] = set()
    lease, on_lease, written = 0, 0, 0

    async def send(ops: list[Put]) -> None:
        try:
            await client.txn((), ops)
        finally:
            slots.release()

    async for pairs in _read_ahead(batches):
        for start in range(0, len(pairs), MAX_TXN_OPS):
            ops = [Put(key, value) for key, value in pairs[start:start + MAX_TXN_OPS]]
            if not lease or on_lease + len(ops) > KEYS_PER_LEASE:
                lease, on_lease = await client.grant_lease(900), 0
            for op in ops:
                op.lease = lease
            on_lease += len(ops)
            written += len(ops)
            await slots.acquire()
            task = asyncio.ensure_future(send(ops))
            pending.add(task)
            task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return written


async def _read_ahead(batches: Batches) -> Batches:
    """``batches`` read by a task of their own, up to ``READ_AHEAD`` pages ahead of the writer."""
    queue: asyncio.Queue[list[tuple[str, bytes]] | None] = asyncio.Queue(READ_AHEAD)

    async def read() -> None:
        try:
            async for pairs in batches:
                await queue.put(pairs)
        finally:
            await queue.put(None)

    reader = asyncio.ensure_future(read())
    try:
        while (pairs := await queue.get()) is not None:
            yield pairs
        await reader  # raises what the reader raised
    finally:
        reader.cancel()


async def _endpoint_pages(url: str) -> Batches:
    base = IP_DEFAULT_PREFIX + "/"
    async with aiohttp.ClientSession() as session:
        cont = ""
        while True:
            query = {"limit": str(PAGE), **({"continue": cont} if cont else {})}
            async with session.get(url + CEP_PATH, params=query) as resp:
                resp.raise_for_status()
                doc = orjson.loads(await resp.read())
            pairs: list[tuple[str, bytes]] = []
            for obj in doc["items"]:
                pairs += [(base + ip, value) for ip, value in cilium_endpoint_ip_entries(obj).items()]
            yield pairs
            cont = doc["metadata"].get("continue") or ""
            if not cont:
                return


async def _remote_pages(remote: EtcdClient, cluster: str, page_size: int) -> Batches:
    for resource in RESOURCES:
        src, dst = resource.state_prefix(cluster) + "/", resource.cache_prefix(cluster) + "/"
        async for kvs, _ in remote.iter_prefix(src, page_size=page_size):
            yield [(dst + kv.key[len(src):], kv.value) for kv in kvs]


async def _median(server: EtcdServer, client: EtcdClient, expected: KeyValues, prefix: str, what: str,
                  run: Callable[[], Awaitable[int]], others: dict[str, list[int]]) -> Floor:
    """The median of ``REPEATS`` runs; CPU of etcd (the one written to), ``others`` and this process."""
    runs: list[Floor] = []
    for _ in range(REPEATS):
        meter = CpuMeter({"etcd": [p for p in (server.pid,) if p is not None], **others})
        own = time.process_time()
        started = time.perf_counter()
        keys = await run()
        seconds = time.perf_counter() - started
        cpu = {**meter.read(), "floor": round(time.process_time() - own, 2)}
        await verify(client, prefix, expected, what)
        await wipe(server, client)
        runs.append(Floor(keys, seconds, cpu))
    return median_run(runs, lambda f: f.seconds)


async def export_floor(url: str, server: EtcdServer, client: EtcdClient, expected: KeyValues,
                       kubesim_pid: int | None) -> Floor:
    """``expected``: every key the exporter writes; the floor writes the endpoint IP keys of it."""
    prefix = IP_DEFAULT_PREFIX + "/"
    ips = {k: v for k, v in expected.items() if k.startswith(prefix)}
    return await _median(server, client, ips, prefix, "export floor",
                         lambda: _write(client, _endpoint_pages(url)),
                         {"kubesim": [kubesim_pid]} if kubesim_pid is not None else {})


async def mirror_floor(remote_server: EtcdServer, remote: EtcdClient, cluster: str, server: EtcdServer,
                       client: EtcdClient, expected_cache: KeyValues, page_size: int) -> Floor:
    """``expected_cache``: the data keys KVStoreMesh writes for ``cluster`` (``to_cache``)."""
    others = {"remote etcd": [p for p in (remote_server.pid,) if p is not None]}
    return await _median(server, client, expected_cache, "cilium/cache/", "mirror floor",
                         lambda: _write(client, _remote_pages(remote, cluster, page_size)), others)
