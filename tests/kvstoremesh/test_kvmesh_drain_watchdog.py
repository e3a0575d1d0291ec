"""Drain on removal (order, grace period, retries) and the connection watchdog's pure checks."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.kvstore import ClusterIDChangedError, Status
from apiserver.kvstoremesh._drain import drain_cluster
from apiserver.kvstoremesh._watchdog import ConnectionLostError, ConnectionWatchdog
from localmesh.memory.kv import MemoryKV

OTHERS = {"cilium/cache/nodes/v1/c20/n": b"x", "cilium/synced/c20/cilium/cache/nodes/v1": b"t",
          "cilium/cluster-config/c20": b"{}", "cilium/cache/identities/v1/c20/id/1": b"l;"}
MINE = {"cilium/cache/nodes/v1/c2/n": b"x", "cilium/cache/services/v1/c2/ns/s": b"x",
        "cilium/cache/serviceexports/v1/c2/ns/s": b"x", "cilium/cache/identities/v1/c2/id/1": b"l;",
        "cilium/cache/ip/v1/c2/10.0.0.1": b"{}", "cilium/synced/c2/cilium/cache/ip/v1": b"t"}


async def seeded() -> MemoryKV:
    kv = MemoryKV()
    for key, value in {**OTHERS, **MINE, "cilium/cluster-config/c2": b"{}"}.items():
        await kv.put(key, value)
    return kv


async def test_drain_deletes_config_first_then_everything_of_the_cluster_only() -> None:
    kv = await seeded()
    task = asyncio.create_task(drain_cluster(kv, "c2", grace_period=0.2, retries=5, backoff=0.01))
    deadline = asyncio.get_running_loop().time() + 5
    while kv.entry("cilium/cluster-config/c2") is not None:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.005)
    assert set(MINE) <= set(kv.snapshot())  # cache kept during the grace period
    assert await task is True
    assert kv.snapshot() == OTHERS  # "c20" shares a prefix with "c2" and is untouched


async def test_drain_retries_then_gives_up() -> None:
    kv = await seeded()
    kv.fail_next(2, ops={"delete_prefix"})
    assert await drain_cluster(kv, "c2", grace_period=0, retries=5, backoff=0.001) is True
    assert kv.snapshot() == OTHERS
    kv = await seeded()
    kv.fail_next(100, ops={"delete_prefix"})
    assert await drain_cluster(kv, "c2", grace_period=0, retries=2, backoff=0.001) is False
    assert kv.ops["delete_prefix"] == 3  # first attempt + 2 retries


def status(cluster_id: int = 1, revision: int = 10) -> Status:
    return Status(cluster_id=cluster_id, member_id=2, version="3.4.23", db_size=0, leader=2, raft_term=2,
                  revision=revision)


async def test_watchdog_detects_another_cluster_and_a_reset_store() -> None:
    texts: list[str] = []
    dog = ConnectionWatchdog("c2", status(revision=10), heartbeat_timeout=0, status_interval=1, max_failures=2,
                             request_timeout=1, on_status=texts.append)
    assert texts == ["etcd: 1/1 connected: 3.4.23, ID: 1"]
    dog.check_status(status(revision=12))
    with pytest.raises(ConnectionLostError, match="revision went back from 12 to 3"):
        dog.check_status(status(revision=3))
    with pytest.raises(ClusterIDChangedError, match="from 1 to ff"):
        dog.check_status(status(cluster_id=0xFF, revision=20))


async def test_watchdog_probe_failures_and_heartbeat() -> None:
    kv = MemoryKV()
    dog = ConnectionWatchdog("c2", await kv.status(), heartbeat_timeout=0, status_interval=0.01, max_failures=3,
                             request_timeout=1)
    kv.fail_next(3, ops={"status"})
    with pytest.raises(ConnectionLostError, match="3 consecutive status checks failed"):
        await asyncio.wait_for(dog.run(kv), 5)
    # Heartbeats keep the connection; their absence ends it.
    kv = MemoryKV()
    dog = ConnectionWatchdog("c2", await kv.status(), heartbeat_timeout=0.2, status_interval=10, max_failures=3,
                             request_timeout=1)
    run = asyncio.create_task(dog.run(kv))
    for _ in range(10):
        await kv.put("cilium/.heartbeat", b"2026-01-01T00:00:00Z")
        await asyncio.sleep(0.05)
    assert not run.done()
    with pytest.raises(ConnectionLostError, match="no heartbeat"):
        await asyncio.wait_for(run, 5)
