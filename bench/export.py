"""Exporter benchmarks: initial export of the synthetic cluster, then steady-state churn.

Processes: the emulator (``_kubesim_child``), the exporter (``python -m apiserver clustermesh``) and
this driver, which watches etcd. The etcd is left holding the exported cluster, for KVStoreMesh.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apiserver.kvstore.etcd import EtcdClient
from apiserver.paths import CLUSTER_CONFIG_PREFIX, HEARTBEAT_PATH, IP_DEFAULT_PREFIX, STATE_PREFIX
from bench._dataset import CHURN_ACCOUNT, BenchShape, KeyValues, endpoint_entries, remote_control_keys
from bench._exporter import ExporterProcess
from bench._kv import IncorrectResult, dump, verify, wipe
from bench._probe import Change, VisibilityProbe, last_changes, visible_times
from bench._procs import Child, CpuMeter, cpu_seconds, memory_mb
from bench._stats import Backlog, Latency, median_run
from bench.floor import Floor, export_floor
from localmesh.testing.etcd import EtcdServer

READY_TIMEOUT = 600.0
# Initial exports measured (each from an empty etcd): the median counts, as for the ceilings.
REPEATS = 3
DRAIN_TIMEOUT = 30.0
_MARKER = b'"K8sServiceAccount":"' + CHURN_ACCOUNT.encode()


@dataclass
class InitialExport:
    keys: int
    bootstrap_seconds: float  # Exporter.start() -> ready (its own metric)
    wall_seconds: float  # process spawn -> /readyz 200 (includes imports and connecting)
    peak_rss_mb: float
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, spawn -> ready
    runs: list[float] = field(default_factory=list)  # bootstrap seconds of every run (this is the median)

    @property
    def keys_per_second(self) -> float:
        return self.keys / self.bootstrap_seconds


@dataclass
class Churn:
    rate: float
    seconds: float
    updates: int
    latency: Latency
    backlog: Backlog
    steady_rss_mb: float
    peak_rss_mb: float
    exporter_cpu: float = 0.0
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, ms)
    # True: steady RSS is the median of the samples taken once every endpoint had changed (the
    # plateau: each changed value lands in a new allocation); False: of the second half of the run.
    steady_after_all_changed: bool = False
    # Updates per second the emulator actually wrote (first to last write): the load generator's
    # own limit shows here, not as the exporter's latency.
    delivered_rate: float = 0.0
    # CPU seconds per process from the first write until every change was visible (``cpu_wall`` s).
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_wall: float = 0.0

    def keeps_up(self) -> bool:
        # Never more than half a second of changes outstanding, drained within a second, no trend.
        tolerance = int(self.rate * 2 * 0.5)
        return (self.backlog.max <= tolerance and self.backlog.drained_after <= 1.0
                and not self.backlog.growing(tolerance // 2))


async def start_kubesim(shape: BenchShape, workdir: Path) -> tuple[Child, Path, dict[str, Any]]:
    kubeconfig = workdir / f"{shape.name}.kubeconfig"
    child = Child("kubesim", ["-m", "bench._kubesim_child", "--shape", shape.to_json(),
                              "--kubeconfig", str(kubeconfig)], workdir / f"kubesim-{shape.name}.log")
    await child.start()
    try:
        hello = await child.read_message(READY_TIMEOUT)
    except BaseException:
        await child.stop()
        raise
    return child, kubeconfig, hello


async def check_control_keys(client: EtcdClient, shape: BenchShape) -> None:
    """Besides the data: exactly the cluster config, the five canaries and the heartbeat."""
    everything = await dump(client, "cilium/")
    others = {k: v for k, v in everything.items() if not k.startswith(STATE_PREFIX + "/")}
    expected = set(remote_control_keys(shape, b"")) | {HEARTBEAT_PATH}
    if set(others) != expected:
        raise IncorrectResult(f"control keys: got {sorted(others)}, want {sorted(expected)}")
    config_key = f"{CLUSTER_CONFIG_PREFIX}/{shape.name}"
    if others[config_key] != remote_control_keys(shape, b"")[config_key]:
        raise IncorrectResult(f"{config_key}: unexpected value {others[config_key]!r}")


async def initial_export(exporter: ExporterProcess, client: EtcdClient, shape: BenchShape,
                         expected: KeyValues, others: dict[str, list[int]]) -> InitialExport:
    meter = CpuMeter(others)
    await exporter.start()
    meter.add("exporter", exporter.child.pid)
    ready_at = await exporter.wait_ready(READY_TIMEOUT)
    cpu = meter.read()
    wall = ready_at - exporter.child.spawned_at
    bootstrap = await exporter.bootstrap_seconds()
    peak, _ = memory_mb(exporter.child.pid)
    await verify(client, STATE_PREFIX + "/", expected, "initial export")
    await check_control_keys(client, shape)
    return InitialExport(len(expected), bootstrap, wall, peak, cpu)


async def sample_rss(pid: int, samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """(monotonic time, RSS MB) every second until ``stop``."""
    while not stop.is_set():
        samples.append((time.monotonic(), memory_mb(pid)[1]))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def churn(kubesim: Child, exporter: ExporterProcess, client: EtcdClient, shape: BenchShape,
                expected: KeyValues, rate: float, seconds: float, drain_timeout: float = DRAIN_TIMEOUT,
                others: dict[str, list[int]] | None = None) -> Churn:
    """Update ``rate`` endpoints/s for ``seconds``; ``expected`` is updated to the final state.
    Every change must be visible within ``drain_timeout`` of the last write; the CPU of ``others``
    (e.g. etcd) is reported beside the emulator's, the exporter's and the driver's."""
    # The driver holds the whole expected data set: keep its collector from pausing the probe.
    gc.collect()
    gc.freeze()
    probe = VisibilityProbe(client, IP_DEFAULT_PREFIX + "/", _MARKER)
    await probe.start()
    rss: list[tuple[float, float]] = []
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(exporter.child.pid, rss, stop_sampling))
    cpu_before = cpu_seconds(exporter.child.pid)
    meter = CpuMeter({"kubesim": [kubesim.pid], "exporter": [exporter.child.pid], **(others or {}),
                      "driver": [os.getpid()]})
    started = time.monotonic()
    try:
        await kubesim.send({"cmd": "churn", "rate": rate, "seconds": seconds, "seed": 7})
        writes = (await kubesim.read_message(seconds + 120.0))["writes"]
        # Each endpoint update changes its two IP keys.
        changes: dict[Change, float] = {}
        for seq, index, at in writes:
            for key, value in endpoint_entries(shape, int(index), f"{CHURN_ACCOUNT}{seq}").items():
                changes[key, int(seq)] = at
                expected[key] = value
        if not await probe.wait_for(last_changes(changes), drain_timeout):
            missing = [c for c in last_changes(changes) if c not in probe.seen]
            raise IncorrectResult(f"churn: {len(missing)} of {len(changes)} changes never became visible "
                                  f"(e.g. {missing[:3]})")
        cpu = cpu_seconds(exporter.child.pid) - cpu_before
        cpu_all, cpu_wall = meter.read(), time.monotonic() - started
    finally:
        stop_sampling.set()
        await sampler
        await probe.stop()
    await verify(client, STATE_PREFIX + "/", expected, "after churn")
    seen = visible_times(changes, probe.seen)
    order = sorted(changes, key=changes.__getitem__)
    delays = [seen[c] - changes[c] for c in order]
    start = changes[order[0]]
    # The emulator updates a permutation of the endpoints: all have changed after endpoints/rate s.
    all_changed_at = started + shape.endpoints / rate
    plateau = [mb for at, mb in rss if at >= all_changed_at]
    steady = sorted(plateau or [mb for _, mb in rss[len(rss) // 2:]]) or [0.0]
    peak, _ = memory_mb(exporter.child.pid)
    return Churn(rate, seconds, len(writes), Latency.of(delays),
                 Backlog.of([changes[c] for c in order], [seen[c] for c in order]),
                 steady_rss_mb=steady[len(steady) // 2], peak_rss_mb=peak, exporter_cpu=cpu / seconds,
                 timeline=[(changes[c] - start, d * 1000.0) for c, d in zip(order[::20], delays[::20], strict=True)],
                 steady_after_all_changed=bool(plateau), delivered_rate=delivered(writes, rate),
                 cpu=cpu_all, cpu_wall=cpu_wall)


def delivered(writes: Sequence[Sequence[float]], rate: float) -> float:
    """Updates per second in ``[seq, index, time]`` writes: each write is taken to last 1/``rate`` s,
    so a generator exactly on time delivers ``rate``."""
    if not writes:
        return 0.0
    return len(writes) / (writes[-1][2] - writes[0][2] + 1.0 / rate)


async def run(server: EtcdServer, client: EtcdClient, shape: BenchShape, expected: KeyValues, workdir: Path,
              churn_rate: float, churn_seconds: float, kvstore_opts: Sequence[str] = ()
              ) -> tuple[Floor, InitialExport, Churn]:
    """The export floor, then both exporter benchmarks (the initial export ``REPEATS`` times), on
    an empty ``server``; leaves the exported keys in it."""
    kubesim, kubeconfig, hello = await start_kubesim(shape, workdir)
    exporter: ExporterProcess | None = None
    try:
        assert server.pid is not None
        floor = await export_floor(hello["url"], server, client, expected, kubesim.pid)
        runs: list[InitialExport] = []
        for attempt in range(REPEATS):
            if exporter is not None:  # the last run's exporter stays up for the churn
                await exporter.stop()
                await wipe(server, client)
            exporter = ExporterProcess(shape, server.endpoint, kubeconfig, workdir / f"exporter-{attempt}.log",
                                       kvstore_opts)
            runs.append(await initial_export(exporter, client, shape, expected,
                                             {"etcd": [server.pid], "kubesim": [kubesim.pid]}))
        initial = median_run(runs, lambda r: r.bootstrap_seconds)
        initial.runs = [r.bootstrap_seconds for r in runs]
        assert exporter is not None
        changing = await churn(kubesim, exporter, client, shape, expected, churn_rate, churn_seconds)
    finally:
        if exporter is not None:
            await exporter.stop()
        await kubesim.stop()
    return floor, initial, changing
