"""Heartbeat on MemoryKV: value and lease, periodic writes, failures counted, write timeout."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from apiserver.kvstore.heartbeat import Heartbeat
from apiserver.kvstore.leases import LeaseManager
from apiserver.metrics import Metrics
from localmesh.memory.kv import MemoryKV

Eventually = Callable[..., Awaitable[None]]
NEW_YEAR_2026 = 1767225600.0


async def test_beat_writes_rfc3339_with_a_lease() -> None:
    kv = MemoryKV()
    heartbeat = Heartbeat(kv, LeaseManager(kv, ttl=60), clock=lambda: NEW_YEAR_2026 + 0.75)
    assert await heartbeat.beat()
    entry = kv.entry("cilium/.heartbeat")
    assert entry is not None and entry.value == b"2026-01-01T00:00:00Z" and entry.lease in kv.lease_ids()


async def test_heartbeat_keeps_writing_through_failures(eventually: Eventually) -> None:
    kv = MemoryKV()
    metrics = Metrics()
    heartbeat = Heartbeat(kv, LeaseManager(kv, ttl=60), interval=0.01, metrics=metrics)
    kv.fail_next(2, ops={"put"})
    heartbeat.start()
    try:
        await eventually(lambda: heartbeat.writes >= 3)
    finally:
        await heartbeat.stop()
    assert heartbeat.failures == 2
    labels = {"scope": "cilium/.hear", "kind": "set", "action": "Update"}
    count = "cilium_clustermesh_apiserver_kvstore_operations_duration_seconds_count"
    assert metrics.registry.get_sample_value(count, {**labels, "outcome": "fail"}) == 2
    assert metrics.registry.get_sample_value(count, {**labels, "outcome": "success"}) == heartbeat.writes
    entry = kv.entry("cilium/.heartbeat")
    assert entry is not None and entry.mod_revision > entry.create_revision


async def test_a_hanging_write_times_out() -> None:
    kv = MemoryKV()
    leases = LeaseManager(kv, ttl=60)
    await leases.lease_for("cilium/.heartbeat")  # granted before etcd hangs
    heartbeat = Heartbeat(kv, leases, write_timeout=0.05)
    kv.pause()
    started = time.monotonic()
    assert not await heartbeat.beat()
    assert time.monotonic() - started < 2.0 and heartbeat.failures == 1
    kv.resume()
