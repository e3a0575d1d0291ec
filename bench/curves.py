"""Cost curves: how the exporter's initial export and memory grow with the cluster, how much churn it
keeps up with, and how KVStoreMesh's initial mirror grows with the number of remotes.

- Export: the synthetic cluster's proportions (dual-stack endpoints, identities, nodes, services)
  scaled to about 10k, 100k and 1M keys; one initial export per point from an empty etcd, checked
  key by key and byte by byte; peak RSS (VmHWM) at ready, steady RSS (median of VmRSS sampled while
  the exporter idles after ready). Growth exponents: log-log least squares over the points.
- Churn saturation, on the exporter of the point nearest 100k keys: CEP updates at each rate, latency
  from the emulator's write to the IP key in etcd, backlog, and the rate the emulator delivered.
- KVStoreMesh: mirror of 4, 16 and 64 remote etcds of the same size each (``mesh.mirror_remotes``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import export, mesh
from bench._dataset import BenchShape, KeyValues, cluster_objects, expected_state
from bench._exporter import ExporterProcess
from bench._kv import connect
from bench._stats import growth_exponent
from localmesh.testing.etcd import EtcdServer

BASE_KEYS = 213_000  # the keys of BenchShape(): 2 per dual-stack endpoint, identities, nodes, services
KEPT_UP_P99_MS = 100.0
# Churn steps may fall far behind at the top rates: every change must still arrive, later.
CHURN_DRAIN_TIMEOUT = 300.0
Log = Callable[[str], None]


@dataclass(frozen=True)
class CurvePlan:
    keys: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    churn_keys: int = 100_000  # churn runs on the export point nearest this
    rates: tuple[float, ...] = (1_000.0, 2_000.0, 5_000.0, 10_000.0, 20_000.0)
    churn_seconds: float = 10.0
    remotes: tuple[int, ...] = (4, 16, 64)
    keys_per_remote: int = 5_000
    settle_seconds: float = 5.0  # steady RSS: sampled this long after ready

    def scaled(self, factor: float) -> CurvePlan:
        """Every data set ``factor`` times as large (rates and remotes stay)."""
        def n(v: int) -> int:
            return max(10, round(v * factor))

        return dataclasses.replace(self, keys=tuple(n(k) for k in self.keys), churn_keys=n(self.churn_keys),
                                   keys_per_remote=n(self.keys_per_remote))


def shape_for(keys: int) -> BenchShape:
    """The benchmark cluster's proportions at about ``keys`` keys."""
    return BenchShape().scaled(keys / BASE_KEYS)


@dataclass
class ExportPoint:
    keys: int  # verified: every key with its bytes, nothing else
    value_bytes: int
    endpoints: int
    bootstrap_seconds: float
    wall_seconds: float
    peak_rss_mb: float
    steady_rss_mb: float
    verified: bool = False


@dataclass
class ChurnPoint:
    rate: float
    delivered_rate: float
    updates: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    backlog_max: int
    drained_after: float
    exporter_cpu: float
    backlog_ok: bool  # export.Churn.keeps_up: no growing backlog, drained within a second
    cpu: dict[str, float]  # CPU seconds per process over ``cpu_wall`` s (first write -> all visible)
    cpu_wall: float
    verified: bool = False

    @property
    def kept_up(self) -> bool:
        return self.verified and self.backlog_ok and self.p99_ms <= KEPT_UP_P99_MS


@dataclass
class MeshPoint:
    remotes: int
    keys: int  # verified under cilium/cache/
    seconds: float
    peak_rss_mb: float
    verified: bool = False


async def steady_rss(pid: int, seconds: float) -> float:
    """Median VmRSS of ``pid`` over ``seconds`` (one sample a second, at least one)."""
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(export.sample_rss(pid, samples, stop))
    try:
        await asyncio.sleep(seconds)
    finally:
        stop.set()
        await sampler
    ordered = sorted(mb for _, mb in samples)
    return ordered[len(ordered) // 2]


def _churn_point(result: export.Churn) -> ChurnPoint:
    lat = result.latency
    return ChurnPoint(result.rate, result.delivered_rate, result.updates, lat.p50, lat.p99, lat.max,
                      result.backlog.max, result.backlog.drained_after, result.exporter_cpu, result.keeps_up(),
                      result.cpu, result.cpu_wall, verified=True)


async def export_point(keys: int, plan: CurvePlan, workdir: Path, churn: bool, log: Log
                       ) -> tuple[ExportPoint, list[ChurnPoint]]:
    shape = shape_for(keys)
    log(f"Curve: export of ~{keys:,} keys ({shape.endpoints:,} endpoints)")
    expected: KeyValues = expected_state(shape, cluster_objects(shape))
    point_dir = workdir / f"curve-{keys}"
    churned: list[ChurnPoint] = []
    async with EtcdServer(name=f"bench-curve-{keys}") as server:
        client = await connect(server.endpoint)
        kubesim, kubeconfig, _ = await export.start_kubesim(shape, point_dir)
        exporter = ExporterProcess(shape, server.endpoint, kubeconfig, point_dir / "exporter.log")
        try:
            assert server.pid is not None
            initial = await export.initial_export(exporter, client, shape, expected,
                                                  {"etcd": [server.pid], "kubesim": [kubesim.pid]})
            point = ExportPoint(initial.keys, sum(map(len, expected.values())), shape.endpoints,
                                initial.bootstrap_seconds, initial.wall_seconds, initial.peak_rss_mb,
                                await steady_rss(exporter.child.pid, plan.settle_seconds), verified=True)
            for rate in plan.rates if churn else ():
                log(f"Curve: churn at {rate:,.0f} CEP updates/s for {plan.churn_seconds:g} s")
                churned.append(_churn_point(await export.churn(kubesim, exporter, client, shape, expected, rate,
                                                               plan.churn_seconds, CHURN_DRAIN_TIMEOUT,
                                                               {"etcd": [server.pid]})))
        finally:
            await exporter.stop()
            await kubesim.stop()
            await client.close()
    return point, churned


def _exponents(points: list[dict[str, Any]], x: str, ys: tuple[str, ...]) -> dict[str, float]:
    if len(points) < 2:
        return {}
    return {y: growth_exponent([p[x] for p in points], [p[y] for p in points]) for y in ys}


def highest_kept_up(points: list[dict[str, Any]]) -> float:
    """The highest delivered rate among the churn steps that kept up (0 if none did)."""
    return max((p["delivered_rate"] for p in points if p["kept_up"]), default=0.0)


def _plain(point: Any) -> dict[str, Any]:
    out = dataclasses.asdict(point)
    if isinstance(point, ChurnPoint):
        out["kept_up"] = point.kept_up
    return out


async def run(plan: CurvePlan, workdir: Path, log: Log) -> dict[str, Any]:
    """Every curve of ``plan``; the JSON-able ``results["curves"]`` of the suite."""
    churn_at = min(plan.keys, key=lambda k: abs(math.log(k / plan.churn_keys)))
    exports: list[dict[str, Any]] = []
    churned: list[dict[str, Any]] = []
    for keys in plan.keys:
        point, churn_points = await export_point(keys, plan, workdir, keys == churn_at and bool(plan.rates), log)
        exports.append(_plain(point))
        churned += map(_plain, churn_points)
    meshes: list[dict[str, Any]] = []
    for remotes in plan.remotes:
        log(f"Curve: KVStoreMesh mirroring {remotes} remotes of {plan.keys_per_remote:,} keys")
        mirror, _ = await mesh.mirror_remotes(remotes, plan.keys_per_remote, workdir / f"curve-mesh-{remotes}",
                                              with_ceiling=False)
        meshes.append(_plain(MeshPoint(remotes, mirror.keys, mirror.seconds, mirror.peak_rss_mb, verified=True)))
    return {
        "export": exports,
        "export_exponents": _exponents(exports, "keys", ("bootstrap_seconds", "peak_rss_mb", "steady_rss_mb")),
        "churn_keys": next(p["keys"] for p in exports if p["endpoints"] == shape_for(churn_at).endpoints),
        "churn_seconds": plan.churn_seconds,
        "churn": churned,
        "highest_kept_up": highest_kept_up(churned),
        "mesh": meshes,
        "mesh_exponents": _exponents(meshes, "keys", ("seconds", "peak_rss_mb")),
    }
