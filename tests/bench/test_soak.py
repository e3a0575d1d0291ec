"""The soak benchmark, shortened: 20 s of mixed events with every kind of fault once, then both
``verify``s equal; and the RSS slope's arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.soak import Result, Sample, percentile, report, soak
from localmesh.testing import synthetic as syn

SHAPE = syn.ClusterShape(name="cluster1", namespaces=2, nodes=5, identities=40, endpoints=500, services=10)


@pytest.mark.slow
async def test_a_short_soak_injects_every_fault_and_ends_verify_equal(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await soak(tmp_path, minutes=20 / 60, rate=500, fault_every=3.5, shape=SHAPE, log=lines.append)
    assert sum(result.events.values()) >= 0.9 * 500 * 20
    assert {"CEP update", "CEP create", "CEP delete", "identity create", "node update", "service update"} \
        <= set(result.events)
    assert len({f.name for f in result.faults}) == 5, result.faults
    assert all(f.recovered is not None for f in result.faults), result.faults
    assert result.exporter_equal, result.exporter_verify
    assert result.mesh_equal, result.mesh_verify
    assert result.measured > 1000 and percentile(result.latencies_ms, 0.99) > 0
    for process in ("exporter", "kvstoremesh"):
        assert any(process in s.rss_mb for s in result.samples), process
        assert any(process in s.queue for s in result.samples), process
    text = report(result)
    assert "final verify, exporter: equal" in text and "final verify, KVStoreMesh: equal" in text


def _samples(points: Sequence[tuple[float, int, float]]) -> list[Sample]:
    return [Sample(at, {"exporter": rss}, {"exporter": pid}, {}) for at, pid, rss in points]


def test_the_rss_slope_is_taken_within_each_process_lifetime_over_the_second_half() -> None:
    result = Result(seconds=600, rate=1000)
    # First lifetime grows by 2 MB/min; a restart at 400 s drops RSS, then it grows by 2 MB/min again.
    result.samples = _samples([(t, 1, 100 + 2 * t / 60) for t in range(0, 400, 10)]
                              + [(t, 2, 50 + 2 * (t - 400) / 60) for t in range(400, 600, 10)])
    slope = result.slope("exporter")
    assert slope is not None and abs(slope - 2.0) < 1e-6
    # Flat but for the warm-up after the restart (left out): flat.
    result.samples = _samples([(t, 1, 100.0) for t in range(0, 400, 10)]
                              + [(t, 2, 20.0 if t < 420 else 90.0) for t in range(400, 600, 10)])
    assert abs(result.slope("exporter") or 0.0) < 1e-6
    assert Result(seconds=600, rate=1000).slope("exporter") is None
