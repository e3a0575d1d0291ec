"""Soak: mixed Kubernetes events at a steady rate for minutes, with periodic faults, against real
processes -- the Kubernetes API emulator (in this process, so faults can be injected), etcd, the
exporter as its own process, and KVStoreMesh (its own process) mirroring the exporter's etcd into a
second etcd. Not part of CI (``tests/bench/test_soak.py`` runs it for a few seconds).

    python bench/soak.py                 # 1,000 events/s for 10 minutes, a fault every 60 s
    python bench/soak.py --minutes 2 --fault-every 20

Events: CiliumEndpoint updates, creates and deletes, CiliumIdentity creates and deletes, CiliumNode
and EndpointSlice updates. Faults, in turn: Kubernetes watches dropped, etcd SIGKILLed and restarted
with its data, the exporter SIGKILLed and restarted, etcd restarted empty, KVStoreMesh SIGKILLed and
restarted. Printed at the end: events sent, faults injected (and how long each took to be ready
again), the final ``verify`` of the exporter and of KVStoreMesh, RSS of both processes over time with
its slope over the second half, the sync queue sizes over time, and the latency from an endpoint's
write in the emulator to its IP key in etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench``, ``tests`` and ``apiserver`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from apiserver.kvstore import EventType
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from bench._procs import memory_mb
from localmesh.kubesim import KubeSim
from localmesh.testing import synthetic as syn
from localmesh.testing.etcd import EtcdServer
from tests.faults.harness import ExporterProcess, Process, World, free_port, poll, seed_objects
from tests.faults.test_kvstoremesh_faults import Mesh

IP_PREFIX = "cilium/state/ip/v1/default/"
MARKER = b'"K8sServiceAccount":"churn-'
SHAPE = syn.ClusterShape(name="cluster1", namespaces=4, nodes=20, identities=200, endpoints=5000, services=50)
SPARE = 0.2  # endpoints and identities beyond the seeded ones that creates may use
SAMPLE_EVERY = 1.0
WARM_UP = 30.0  # seconds after a (re)start left out of the RSS slope
CALM_AFTER = 5.0  # a fault's window: from its injection until this long after the component is ready


# -- events -------------------------------------------------------------------------------------

class Churn:
    """Mixed events on the emulator, from a seeded random generator. Endpoints and identities are
    created and deleted from fixed index pools, so no two live endpoints ever share an IP."""

    def __init__(self, sim: KubeSim, shape: syn.ClusterShape, seed: int = 7) -> None:
        self.sim, self.shape, self.rng = sim, shape, random.Random(seed)
        spare_endpoints, spare_identities = int(shape.endpoints * SPARE), int(shape.identities * SPARE)
        self.endpoints = list(range(shape.endpoints))
        self.free_endpoints = list(range(shape.endpoints, shape.endpoints + spare_endpoints))
        self.identities: list[int] = []  # created here (the seeded ones stay)
        self.free_identities = list(range(shape.identities, shape.identities + spare_identities))
        self.seq = 0
        self.sent: dict[tuple[str, int], float] = {}  # (IP key, seq) -> when written to the emulator
        self.counts: Counter[str] = Counter()

    def event(self) -> None:
        r = self.rng.random()
        self.seq += 1
        if r < 0.55:
            self._endpoint(self.rng.choice(self.endpoints), "CEP update")
        elif r < 0.65 and self.free_endpoints:
            i = self.free_endpoints.pop(self.rng.randrange(len(self.free_endpoints)))
            self.endpoints.append(i)
            self._endpoint(i, "CEP create")
        elif r < 0.75 and len(self.endpoints) > 1:
            i = self.endpoints.pop(self.rng.randrange(len(self.endpoints)))
            obj = syn.cilium_endpoint(self.shape, i)
            self.sim.delete("cilium.io/v2", "CiliumEndpoint", obj["metadata"]["name"], obj["metadata"]["namespace"])
            self.free_endpoints.append(i)
            self.counts["CEP delete"] += 1
        elif r < 0.80 and self.free_identities:
            i = self.free_identities.pop(self.rng.randrange(len(self.free_identities)))
            self.identities.append(i)
            self.sim.apply(syn.cilium_identity(self.shape, i))
            self.counts["identity create"] += 1
        elif r < 0.85 and self.identities:
            i = self.identities.pop(self.rng.randrange(len(self.identities)))
            self.sim.delete("cilium.io/v2", "CiliumIdentity", syn.cilium_identity(self.shape, i)["metadata"]["name"])
            self.free_identities.append(i)
            self.counts["identity delete"] += 1
        elif r < 0.90:
            node = syn.cilium_node(self.shape, self.rng.randrange(self.shape.nodes))
            node["spec"]["bootid"] = f"boot-{self.seq}"
            self.sim.apply(node)
            self.counts["node update"] += 1
        else:
            slice_ = syn.endpoint_slice(self.shape, self.rng.randrange(self.shape.services))
            for endpoint in slice_["endpoints"]:
                endpoint["conditions"]["ready"] = self.rng.random() < 0.7
            self.sim.apply(slice_)
            self.counts["service update"] += 1

    def _endpoint(self, i: int, what: str) -> None:
        obj = syn.cilium_endpoint(self.shape, i)
        obj["status"]["service-account"] = f"churn-{self.seq}"
        self.sim.apply(obj)
        self.sent[(IP_PREFIX + syn.endpoint_ipv4(self.shape, i), self.seq)] = time.monotonic()
        self.counts[what] += 1

    async def run(self, rate: float, seconds: float) -> None:
        """``rate`` events per second for ``seconds``, paced on the clock (bursts catch up)."""
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = min(int(elapsed * rate), sent + int(rate))  # never more than a second's worth at once
            while sent < due:
                self.event()
                sent += 1
            await asyncio.sleep(0.01)


# -- when each endpoint change became visible in etcd ------------------------------------------------

class Probe:
    """Watches the IP prefix of one etcd and records when each numbered change first showed up.
    Survives etcd going away, and relists when the store was reset (revision went back)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.seen: dict[tuple[str, int], float] = {}
        self._task: asyncio.Task[None] | None = None

    def _note(self, key: str, value: bytes, now: float) -> None:
        at = value.find(MARKER)
        if at >= 0:
            start = at + len(MARKER)
            self.seen.setdefault((key, int(value[start:value.index(b'"', start)])), now)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="soak-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                client = await EtcdClient.connect(EtcdConfig(endpoints=(self.endpoint,)), timeout=5,
                                                  check_cluster_id=False)
                try:
                    await self._follow(client)
                finally:
                    await client.close()
            await asyncio.sleep(0.2)

    async def _follow(self, client: EtcdClient) -> None:
        kvs, revision = await client.list_prefix(IP_PREFIX)
        now = time.monotonic()
        for kv in kvs:
            self._note(kv.key, kv.value, now)
        watcher = asyncio.create_task(self._watch(client, revision))
        try:
            while not watcher.done():
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    if (await client.status()).revision < revision:
                        return  # etcd restarted empty: relist
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher

    async def _watch(self, client: EtcdClient, revision: int) -> None:
        watch = client.watch(IP_PREFIX, start_revision=revision + 1, progress_notify=False)
        try:
            async for batch in watch:
                now = time.monotonic()
                for event in batch.events:
                    if event.type is EventType.PUT:
                        self._note(event.key, event.value, now)
        finally:
            await watch.aclose()


# -- figures ------------------------------------------------------------------------------------

@dataclass
class Sample:
    at: float  # seconds since the churn started
    rss_mb: dict[str, float]  # process -> RSS
    pid: dict[str, int]
    queue: dict[str, float]  # process -> sum of kvstore_sync_queue_size


@dataclass
class Fault:
    name: str
    at: float
    recovered: float | None = None  # seconds until the exporter was ready again


@dataclass
class Result:
    seconds: float
    rate: float
    events: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    calm_latencies_ms: list[float] = field(default_factory=list)  # sent outside every fault window
    measured: int = 0  # endpoint changes with a latency
    unseen: int = 0  # superseded by a later change, or deleted, before they became visible
    exporter_verify: str = ""
    exporter_equal: bool = False
    mesh_verify: str = ""
    mesh_equal: bool = False
    converge_seconds: float = 0.0

    def slope(self, process: str) -> float | None:
        """RSS slope in MB/min over the second half, within each process lifetime (a restart starts a
        new segment; its first ``WARM_UP`` seconds are left out); None without enough samples."""
        half = self.seconds / 2
        segments: dict[int, list[tuple[float, float]]] = {}
        first_seen: dict[int, float] = {}
        for s in self.samples:
            if process not in s.pid:
                continue
            pid = s.pid[process]
            first_seen.setdefault(pid, s.at)
            if s.at >= half and s.at - first_seen[pid] >= WARM_UP:
                segments.setdefault(pid, []).append((s.at / 60, s.rss_mb[process]))
        num = den = 0.0
        for points in segments.values():
            if len(points) < 3:
                continue
            mx = sum(x for x, _ in points) / len(points)
            my = sum(y for _, y in points) / len(points)
            num += sum((x - mx) * (y - my) for x, y in points)
            den += sum((x - mx) ** 2 for x, _ in points)
        return num / den if den else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the run ------------------------------------------------------------------------------------

async def _metrics_queue(port: int) -> float:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=5)) as resp:
        text = await resp.text()
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if "_kvstore_sync_queue_size{" in line and not line.startswith("#"))


async def _sampler(result: Result, started: float, processes: dict[str, tuple[Process, int]]) -> None:
    while True:
        sample = Sample(time.monotonic() - started, {}, {}, {})
        for name, (process, metrics_port) in processes.items():
            if not process.running or process.proc is None:
                continue
            with contextlib.suppress(Exception):
                sample.rss_mb[name] = memory_mb(process.proc.pid)[1]
                sample.pid[name] = process.proc.pid
                sample.queue[name] = await _metrics_queue(metrics_port)
        result.samples.append(sample)
        await asyncio.sleep(SAMPLE_EVERY)


def _faults(world: World, exporter: ExporterProcess, mesh: Mesh) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    async def drop_watches() -> None:
        world.sim.faults.close_watches()

    async def etcd_sigkill() -> None:
        await world.etcd.kill()
        await world.etcd.start()

    async def exporter_sigkill() -> None:
        await exporter.kill()
        await exporter.start()

    async def etcd_empty() -> None:
        await world.etcd.kill()
        await world.etcd.restart(wipe=True)

    async def mesh_sigkill() -> None:
        await mesh.process.kill()
        await mesh.process.start()

    return [("kube: watches dropped", drop_watches), ("etcd: SIGKILL, restart with its data", etcd_sigkill),
            ("exporter: SIGKILL, restart", exporter_sigkill), ("etcd: restart with an empty data dir", etcd_empty),
            ("KVStoreMesh: SIGKILL, restart", mesh_sigkill)]


def _mesh_ready(mesh: Mesh) -> Callable[[], Awaitable[bool]]:
    port = next(a.partition("=")[2] for a in mesh.process.args if a.startswith("--health-port="))

    async def ready() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    return ready


async def _inject(result: Result, started: float, every: float, seconds: float, world: World,
                  exporter: ExporterProcess, mesh: Mesh) -> None:
    faults = _faults(world, exporter, mesh)
    for n in range(int(seconds // every)):
        await asyncio.sleep(max(0.0, started + (n + 1) * every - time.monotonic()))
        if time.monotonic() - started >= seconds - 1:
            return
        name, inject = faults[n % len(faults)]
        fault = Fault(name, time.monotonic() - started)
        result.faults.append(fault)
        t0 = time.monotonic()
        await inject()
        ready = _mesh_ready(mesh) if name.startswith("KVStoreMesh") else exporter.ready
        with contextlib.suppress(AssertionError):
            await poll(ready, f"ready after {name}", deadline=max(every, 120.0))
            fault.recovered = time.monotonic() - t0


async def soak(tmp: Path, *, minutes: float = 10.0, rate: float = 1000.0, fault_every: float = 60.0,
               shape: syn.ClusterShape = SHAPE, log: Callable[[str], None] = print) -> Result:
    seconds = minutes * 60
    result = Result(seconds, rate)
    sim = KubeSim()
    await sim.start(host="127.0.0.1", port=0)
    with EtcdServer(name="soak-cluster1") as etcd, EtcdServer(name="soak-cluster2") as local:
        world = World(tmp, sim, etcd)
        try:
            seed_objects(sim, syn.synthetic_cluster(shape))
            exporter = world.exporter()
            await exporter.start()
            mesh = Mesh(world, local)
            mesh_metrics = free_port()
            mesh.process.args.append(f"--prometheus-serve-addr=127.0.0.1:{mesh_metrics}")
            await mesh.process.start()
            log(f"seeded {shape.endpoints} endpoints, {shape.identities} identities, {shape.nodes} nodes, "
                f"{shape.services} services; waiting for the initial export and mirror ...")
            await world.converged("soak: initial export", exporter)
            await mesh.converged("soak: initial mirror", time.monotonic())
            probe = Probe(etcd.endpoint)
            probe.start()
            churn = Churn(sim, shape)
            started = time.monotonic()
            sampler = asyncio.create_task(_sampler(result, started, {
                "exporter": (exporter, exporter.metrics_port), "kvstoremesh": (mesh.process, mesh_metrics)}))
            log(f"churn: {rate:g} events/s for {seconds:g} s, a fault every {fault_every:g} s")
            try:
                await asyncio.gather(churn.run(rate, seconds),
                                     _inject(result, started, fault_every, seconds, world, exporter, mesh))
                end = time.monotonic()
                result.events = churn.counts
                await _final_verify(result, world, exporter, mesh, end)
                await asyncio.sleep(1.0)  # the probe's last events
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
                await probe.stop()
            windows = [(started + f.at, started + f.at + (f.recovered or fault_every) + CALM_AFTER)
                       for f in result.faults]
            for change, sent_at in churn.sent.items():
                seen_at = probe.seen.get(change)
                if seen_at is None:
                    result.unseen += 1
                    continue
                result.latencies_ms.append((seen_at - sent_at) * 1000)
                if not any(a <= sent_at <= b for a, b in windows):
                    result.calm_latencies_ms.append((seen_at - sent_at) * 1000)
            result.measured = len(result.latencies_ms)
        finally:
            await world.close()
            await sim.stop()
    return result


async def _final_verify(result: Result, world: World, exporter: ExporterProcess, mesh: Mesh, end: float) -> None:
    try:
        result.converge_seconds = await world.converged("soak: exporter after the churn", exporter, since=end)
        result.exporter_equal, result.exporter_verify = True, "equal (clustermesh-dbg verify exit 0)"
    except AssertionError as exc:
        result.exporter_verify = str(exc)[:2000]
    try:
        await mesh.converged("soak: KVStoreMesh after the churn", end)
        result.mesh_equal, result.mesh_verify = True, "equal (clustermesh-dbg verify --kvstoremesh exit 0)"
    except AssertionError as exc:
        result.mesh_verify = str(exc)[:2000]


# -- report -------------------------------------------------------------------------------------

def report(result: Result) -> str:
    lines = [f"Soak: {result.rate:g} events/s for {result.seconds / 60:g} min"]
    total = sum(result.events.values())
    lines.append(f"events sent: {total:,} ({total / result.seconds:,.0f}/s): "
                 + ", ".join(f"{k} {v:,}" for k, v in sorted(result.events.items())))
    lines.append(f"faults injected: {len(result.faults)}")
    for f in result.faults:
        ready = f"ready again in {f.recovered:.1f} s" if f.recovered is not None else "NOT ready again in time"
        lines.append(f"  {f.at:6.0f} s  {f.name}: {ready}")
    lines.append(f"final verify, exporter: {result.exporter_verify} ({result.converge_seconds:.1f} s after the "
                 "last event)")
    lines.append(f"final verify, KVStoreMesh: {result.mesh_verify}")
    for process in ("exporter", "kvstoremesh"):
        rss = [s.rss_mb[process] for s in result.samples if process in s.rss_mb]
        queue = [s.queue[process] for s in result.samples if process in s.queue]
        slope = result.slope(process)
        slope_text = f"{slope:+.2f} MB/min" if slope is not None else "n/a"
        if rss:
            lines.append(f"{process} RSS: min {min(rss):.0f} / median {percentile(rss, 0.5):.0f} / max "
                         f"{max(rss):.0f} MB; slope over the second half {slope_text}")
        if queue:
            lines.append(f"{process} sync queue: median {percentile(queue, 0.5):.0f} / p99 "
                         f"{percentile(queue, 0.99):.0f} / max {max(queue):.0f} keys")
    lat = result.latencies_ms
    lines.append(f"event -> etcd latency ({result.measured:,} endpoint changes; {result.unseen:,} superseded or "
                 f"deleted before visible): p50 {percentile(lat, 0.5):.1f} / p99 {percentile(lat, 0.99):.1f} / "
                 f"max {max(lat, default=float('nan')):.0f} ms")
    calm = result.calm_latencies_ms
    lines.append(f"  outside fault windows (injection to ready + {CALM_AFTER:g} s; {len(calm):,} changes): p50 "
                 f"{percentile(calm, 0.5):.1f} / p99 {percentile(calm, 0.99):.1f} / "
                 f"max {max(calm, default=float('nan')):.0f} ms")
    lines.append("RSS (MB) and queue (keys) over time:")
    step = max(1, len(result.samples) // 20)
    for s in result.samples[::step]:
        cells = "  ".join(f"{p} {s.rss_mb.get(p, float('nan')):5.0f} MB q {s.queue.get(p, float('nan')):5.0f}"
                          for p in ("exporter", "kvstoremesh"))
        lines.append(f"  {s.at:6.0f} s  {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--fault-every", type=float, default=60.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = asyncio.run(soak(Path(tmp), minutes=args.minutes, rate=args.rate, fault_every=args.fault_every))
    print(report(result))
    return 0 if result.exporter_equal and result.mesh_equal else 1


if __name__ == "__main__":
    sys.exit(main())

