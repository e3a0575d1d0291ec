"""KVStoreMesh benchmarks: initial mirror of a remote, remote-put -> local-cache latency, and 16 remotes.

KVStoreMesh runs in ``_kvstoremesh_child``; the driver writes to the remotes and watches the local
cache. The figure of the mirror is ``keys / (ready - start)`` as the child measured it.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from apiserver.kvstore import MAX_TXN_OPS, Put
from apiserver.kvstore.etcd import EtcdClient
from apiserver.paths import CACHE_PREFIX, IP_DEFAULT_PREFIX, STATE_PREFIX
from bench import ceiling
from bench._dataset import BenchShape, KeyValues, cluster_objects, expected_state, remote_control_keys, to_cache
from bench._kv import IncorrectResult, connect, dump, verify, wait_verified, wipe
from bench._probe import Change, VisibilityProbe, last_changes, visible_times
from bench._procs import Child, CpuMeter, memory_mb
from bench._stats import Backlog, Latency, median_run
from bench.ceiling import Ceiling
from localmesh.testing.etcd import EtcdServer

READY_TIMEOUT = 600.0
# Initial mirrors measured (each into an empty local etcd): the median counts, as for the ceilings.
REPEATS = 3
_MARKER = b'"K8sServiceAccount":"mesh-'
_ACCOUNT = re.compile(rb'"K8sServiceAccount":"[^"]*"')
_TICK = 0.005


@dataclass
class Mirror:
    remotes: int
    keys: int
    seconds: float
    peak_rss_mb: float
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, spawn -> ready
    wall_seconds: float = 0.0  # spawn -> ready
    runs: list[float] = field(default_factory=list)  # seconds of every run (this is the median)

    @property
    def keys_per_second(self) -> float:
        return self.keys / self.seconds


@dataclass
class MirrorLatency:
    rate: float
    seconds: float
    latency: Latency
    backlog: Backlog
    steady_rss_mb: float
    timeline: list[tuple[float, float]] = field(default_factory=list)


class MeshProcess:
    def __init__(self, name: str, cluster_id: int, local: EtcdServer, remotes: Sequence[tuple[str, str]],
                 workdir: Path) -> None:
        config_dir = workdir / f"{name}-clustermesh"
        config_dir.mkdir(parents=True, exist_ok=True)
        for remote, endpoint in remotes:
            (config_dir / remote).write_text(f"endpoints:\n- {endpoint}\n")
        self.child = Child("kvstoremesh", [
            "-m", "bench._kvstoremesh_child", "--cluster-name", name, "--cluster-id", str(cluster_id),
            "--config-dir", str(config_dir), "--local-endpoint", local.endpoint], workdir / f"kvstoremesh-{name}.log")

    async def start_and_wait(self) -> float:
        """Seconds from the daemon's start to every remote mirrored."""
        await self.child.start()
        hello = await self.child.read_message(READY_TIMEOUT)
        return float(hello["ready_at"]) - float(hello["started"])

    async def stop(self) -> None:
        await self.child.stop()


def etcd_pids(local: EtcdServer, remotes: Sequence[EtcdServer]) -> dict[str, list[int]]:
    """The etcd processes whose CPU a mirror's figure reports."""
    pids = {"local etcd": [local.pid], "remote etcd": [s.pid for s in remotes]}
    return {name: [p for p in group if p is not None] for name, group in pids.items()}


async def mirror(mesh: MeshProcess, local: EtcdClient, expected_cache: KeyValues, remotes: int,
                 others: dict[str, list[int]]) -> Mirror:
    meter = CpuMeter(others)
    started = time.monotonic()
    seconds = await mesh.start_and_wait()
    meter.add("kvstoremesh", mesh.child.pid)
    cpu, wall = meter.read(), time.monotonic() - started
    peak, _ = memory_mb(mesh.child.pid)
    await verify(local, CACHE_PREFIX + "/", expected_cache, "KVStoreMesh mirror")
    return Mirror(remotes, len(expected_cache), seconds, peak, cpu, wall)


async def mirror_median(start: Callable[[], MeshProcess], local_server: EtcdServer, local: EtcdClient,
                        expected_cache: KeyValues, remotes: int, others: dict[str, list[int]],
                        repeats: int = REPEATS) -> tuple[Mirror, MeshProcess]:
    """``mirror`` ``repeats`` times, each by a new process into an emptied local etcd; returns the
    median run and the last process, still running."""
    runs: list[Mirror] = []
    proc: MeshProcess | None = None
    try:
        for _ in range(repeats):
            if proc is not None:
                await proc.stop()
                await wipe(local_server, local)
            proc = start()
            runs.append(await mirror(proc, local, expected_cache, remotes, others))
    except BaseException:
        if proc is not None:
            await proc.stop()
        raise
    assert proc is not None
    median = median_run(runs, lambda r: r.seconds)
    median.runs = [r.seconds for r in runs]
    return median, proc


async def _put_paced(remote: EtcdClient, items: list[tuple[str, bytes]], rate: float, seconds: float
                     ) -> dict[Change, float]:
    """Put ``rate`` remote keys per second, each value numbered ``mesh-<seq>``; returns put times."""
    total = int(rate * seconds)
    writes: dict[Change, float] = {}
    started = time.monotonic()
    done = 0
    while done < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        puts = []
        while done < due:
            key, value = items[done % len(items)]
            writes[key, done] = time.monotonic()
            puts.append(remote.put(key, _ACCOUNT.sub(b'"K8sServiceAccount":"mesh-%d"' % done, value)))
            done += 1
        await asyncio.gather(*puts)
        await asyncio.sleep(_TICK)
    return writes


async def latency(mesh: MeshProcess, remote: EtcdClient, local: EtcdClient, cluster: str, rate: float,
                  seconds: float) -> MirrorLatency:
    state = await dump(remote, IP_DEFAULT_PREFIX + "/")
    # Distinct keys in a fixed order: no key changes twice while it may still be queued.
    items = sorted(state.items())[::max(1, len(state) // int(rate * seconds + 1))]
    gc.collect()
    gc.freeze()  # see export.churn: no collector pauses in the driver while it timestamps
    probe = VisibilityProbe(local, f"{CACHE_PREFIX}/ip/v1/{cluster}/", _MARKER)
    await probe.start()
    rss: list[float] = []
    try:
        sampler_stop = asyncio.Event()

        async def sample() -> None:
            while not sampler_stop.is_set():
                rss.append(memory_mb(mesh.child.pid)[1])
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        writes = await _put_paced(remote, items, rate, seconds)
        cache_of = {k: f"{CACHE_PREFIX}/ip/v1/{cluster}/{k[len(IP_DEFAULT_PREFIX) + 1:]}" for k, _ in items}
        changes = {(cache_of[key], seq): at for (key, seq), at in writes.items()}
        ok = await probe.wait_for(last_changes(changes), 30.0)
        sampler_stop.set()
        await sampler
        if not ok:
            missing = [c for c in last_changes(changes) if c not in probe.seen]
            raise IncorrectResult(f"mirror latency: {len(missing)} changes never reached the cache")
    finally:
        await probe.stop()
    seen = visible_times(changes, probe.seen)
    order = sorted(changes, key=changes.__getitem__)
    delays = [seen[c] - changes[c] for c in order]
    start = changes[order[0]]
    steady = sorted(rss[len(rss) // 2:]) or [0.0]
    return MirrorLatency(rate, seconds, Latency.of(delays),
                         Backlog.of([changes[c] for c in order], [seen[c] for c in order]),
                         steady[len(steady) // 2],
                         [(changes[c] - start, d * 1000.0) for c, d in zip(order[::10], delays[::10], strict=True)])


async def check_mirror_matches(remote: EtcdClient, local: EtcdClient, cluster: str) -> None:
    """The local cache equals the remote's current state (after the latency run settled)."""
    expected = to_cache(cluster, await dump(remote, STATE_PREFIX + "/"))
    await wait_verified(local, CACHE_PREFIX + "/", expected, "KVStoreMesh cache after updates", 30.0)


# ---------------------------------------------------------------------------------------- scale

def remote_shape(n: int, keys: int) -> BenchShape:
    """Cluster ``n`` of the scale test: ``keys`` keys, 88 % of them IP entries (as in real clusters)."""
    endpoints = keys * 44 // 100
    nodes = services = keys // 50
    identities = keys - 2 * endpoints - nodes - services
    return BenchShape(name=f"cluster{n}", cluster_id=n, endpoints=endpoints, identities=identities,
                      nodes=nodes, services=services, namespaces=10, unique_ipv4=False)


async def mirror_remotes(remotes: int, keys_per_remote: int, workdir: Path, with_ceiling: bool = True
                         ) -> tuple[Mirror, dict[int, Ceiling]]:
    """KVStoreMesh mirroring ``remotes`` etcds of ``keys_per_remote`` keys each into a fresh local
    etcd (checked key by key); with the ceiling of that local etcd for the same keys, if asked."""
    # Each etcd is created (its ports picked) only once the previous one holds its own: ports picked
    # all at once may repeat, and two etcds on one client URL pass each other's readiness check.
    servers: list[EtcdServer] = []
    local_server = EtcdServer(name="bench-scale-local")
    try:
        await local_server.start()
        for n in range(1, remotes + 1):
            servers.append(EtcdServer(name=f"bench-remote{n}"))
            await servers[-1].start()
        if len({s.endpoint for s in [*servers, local_server]}) != remotes + 1:
            raise IncorrectResult(f"etcds share an endpoint: {[s.endpoint for s in servers]}")
        cache: KeyValues = {}
        for n, server in enumerate(servers, start=1):
            shape = remote_shape(n, keys_per_remote)
            cache.update(to_cache(shape.name, await fill_remote(server, shape)))
        local = await connect(local_server.endpoint)
        try:
            ceilings = await ceiling.measure_both(local_server, local, cache) if with_ceiling else {}
            proc = MeshProcess("cluster100", 100, local_server,
                               [(f"cluster{n}", s.endpoint) for n, s in enumerate(servers, start=1)], workdir)
            try:
                result = await mirror(proc, local, cache, remotes, etcd_pids(local_server, servers))
            finally:
                await proc.stop()
        finally:
            await local.close()
    finally:
        for server in [*servers, local_server]:
            await server.close()
    return result, ceilings


async def fill_remote(server: EtcdServer, shape: BenchShape) -> KeyValues:
    """Write what an exporter of ``shape`` would have written; returns the data keys."""
    state = expected_state(shape, cluster_objects(shape))
    everything = {**state, **remote_control_keys(shape, b"2026-01-01T00:00:00Z")}
    client = await connect(server.endpoint)
    try:
        ops = [Put(k, v) for k, v in everything.items()]
        for i in range(0, len(ops), MAX_TXN_OPS):
            await client.txn((), ops[i:i + MAX_TXN_OPS])
    finally:
        await client.close()
    if len(state) == 0:
        raise IncorrectResult(f"{shape.name}: empty data set")
    return state
