"""SyncStore against MemoryKV: dedup, coalescing, batching, retries, canary ordering, lease loss,
stale-key cleanup, rate limits, draining on stop, metrics."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from apiserver.kvstore import EventType, WatchEvent
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.kvstore.syncstore import SyncStore
from apiserver.metrics import Metrics
from localmesh.memory.kv import MemoryKV

PREFIX = "cilium/state/nodes/v1"
CANARY = "cilium/synced/c1/cilium/state/nodes/v1"
RFC3339 = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

Eventually = Callable[..., Awaitable[None]]
MakeStore = Callable[..., Awaitable[SyncStore]]


@pytest.fixture
async def make_store(kv: MemoryKV, leases: LeaseManager) -> AsyncIterator[MakeStore]:
    stores: list[SyncStore] = []

    async def make(**overrides: Any) -> SyncStore:
        options: dict[str, Any] = {"prefix": PREFIX, "cluster_name": "c1"}
        options.update(overrides)
        store = SyncStore(kv, options.pop("leases", leases), **options)
        await store.start()
        stores.append(store)
        return store

    yield make
    kv.resume()
    for store in stores:
        await store.stop(drain_timeout=1.0)


def data(kv: MemoryKV) -> dict[str, bytes]:
    return kv.snapshot(PREFIX + "/")


async def warm_up(store: SyncStore, eventually: Eventually) -> None:
    """Write one key so a lease exists: a paused MemoryKV then holds the next ``apply`` itself."""
    store.upsert("warm-up", b"1")
    await eventually(lambda: "warm-up" in store.exported())


async def history(kv: MemoryKV) -> list[WatchEvent]:
    watch = kv.watch("", start_revision=1)
    try:
        return (await anext(watch)).events
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"cilium_clustermesh_apiserver_{name}", labels)
    return 0.0 if value is None else value


async def hold_in_flight(kv: MemoryKV, store: SyncStore, eventually: Eventually, key: str, value: bytes) -> None:
    """Pause the backend and upsert ``key``: returns once its write is in flight (and held)."""
    kv.pause()
    store.upsert(key, value)
    await eventually(lambda: kv.in_flight["apply"] == 1)


async def test_upserts_are_written_with_a_lease(kv: MemoryKV, make_store: MakeStore,
                                                eventually: Eventually) -> None:
    store = await make_store()
    store.upsert("c1/a", b"A")
    store.upsert("c1/b", b"B")
    await eventually(lambda: data(kv) == {f"{PREFIX}/c1/a": b"A", f"{PREFIX}/c1/b": b"B"})
    entry = kv.entry(f"{PREFIX}/c1/a")
    assert entry is not None and entry.lease in kv.lease_ids()
    await eventually(lambda: store.pending_writes == 0)
    assert dict(store.exported()) == {"c1/a": b"A", "c1/b": b"B"}
    store.delete("c1/a")
    await eventually(lambda: data(kv) == {f"{PREFIX}/c1/b": b"B"})
    await eventually(lambda: dict(store.exported()) == {"c1/b": b"B"})


async def test_identical_upsert_is_a_no_op(kv: MemoryKV, make_store: MakeStore, eventually: Eventually) -> None:
    store = await make_store()
    store.upsert("a", b"1")
    await eventually(lambda: store.exported().get("a") == b"1")
    revision = kv.entry(f"{PREFIX}/a").mod_revision  # type: ignore[union-attr]
    store.upsert("a", b"1")
    store.upsert("b", b"1")
    await eventually(lambda: store.exported().get("b") == b"1")
    assert kv.applied == [1, 1]  # the second batch held only "b"
    assert kv.entry(f"{PREFIX}/a").mod_revision == revision  # type: ignore[union-attr]


async def test_back_and_forth_before_a_write_costs_nothing(kv: MemoryKV, make_store: MakeStore,
                                                           eventually: Eventually) -> None:
    store = await make_store()
    store.upsert("a", b"A")
    await eventually(lambda: store.exported().get("a") == b"A")
    store.upsert("a", b"B")
    store.upsert("a", b"A")  # back to what etcd already has
    store.upsert("never", b"x")
    store.delete("never")  # upserted then deleted before any write
    store.upsert("c", b"1")
    await eventually(lambda: store.exported().get("c") == b"1")
    assert kv.applied == [1, 1]
    assert data(kv) == {f"{PREFIX}/a": b"A", f"{PREFIX}/c": b"1"}


async def test_delete_of_a_never_written_key_does_not_touch_etcd(kv: MemoryKV, make_store: MakeStore) -> None:
    store = await make_store()
    store.delete("ghost")
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    assert kv.ops["apply"] == 0 and kv.ops["delete"] == 0


async def test_queued_delete_then_same_upsert_keeps_the_key(kv: MemoryKV, make_store: MakeStore,
                                                            eventually: Eventually) -> None:
    store = await make_store()
    store.upsert("a", b"A")
    await eventually(lambda: store.exported().get("a") == b"A")
    store.delete("a")
    store.upsert("a", b"A")
    store.upsert("marker", b"1")
    await eventually(lambda: store.pending_writes == 0 and "marker" in store.exported())
    assert data(kv)[f"{PREFIX}/a"] == b"A"


async def test_same_upsert_after_an_in_flight_delete_writes_again(kv: MemoryKV, make_store: MakeStore,
                                                                  eventually: Eventually) -> None:
    store = await make_store()
    store.upsert("a", b"A")
    await eventually(lambda: store.exported().get("a") == b"A")
    kv.pause()
    store.delete("a")
    await eventually(lambda: kv.in_flight["apply"] == 1)
    store.upsert("a", b"A")
    kv.resume()
    await eventually(lambda: store.pending_writes == 0 and data(kv) == {f"{PREFIX}/a": b"A"})
    assert [e.type for e in await history(kv) if e.key == f"{PREFIX}/a"] == [
        EventType.PUT, EventType.DELETE, EventType.PUT]


async def test_batches_are_pipelined_and_per_key_order_holds(
        kv: MemoryKV, make_store: MakeStore, eventually: Eventually) -> None:
    store = await make_store(batch_size=1, max_batches_in_flight=3)
    await warm_up(store, eventually)
    kv.pause()
    store.upsert("a", b"v1")
    store.upsert("b", b"v1")
    await eventually(lambda: kv.in_flight["apply"] == 2)
    store.upsert("a", b"v2")  # waits for v1 (see test_syncstore_queue); "c" goes out meanwhile
    store.upsert("c", b"v1")
    await eventually(lambda: kv.in_flight["apply"] == 3)
    kv.resume()
    await eventually(lambda: store.pending_writes == 0)
    writes = [(e.key, e.value) for e in await history(kv) if e.key == f"{PREFIX}/a"]
    assert writes == [(f"{PREFIX}/a", b"v1"), (f"{PREFIX}/a", b"v2")]


async def test_queue_coalesces_by_key(kv: MemoryKV, make_store: MakeStore, eventually: Eventually) -> None:
    store = await make_store()
    for i in range(100):
        store.upsert("k", f"v{i}".encode())
    await eventually(lambda: store.exported().get("k") == b"v99")
    entry = kv.entry(f"{PREFIX}/k")
    assert entry is not None and entry.create_revision == entry.mod_revision  # written exactly once


@pytest.mark.parametrize("batch_size", [pytest.param(128, id="default"), pytest.param(10, id="small")])
async def test_batches_never_exceed_the_batch_size(kv: MemoryKV, make_store: MakeStore, eventually: Eventually,
                                                   batch_size: int) -> None:
    store = await make_store(batch_size=batch_size)
    for i in range(1000):
        store.upsert(f"n{i:04d}", b"v")
    await eventually(lambda: len(store.exported()) == 1000)
    assert max(kv.applied) == batch_size
    assert sum(kv.applied) == 1000
    assert len(kv.applied) == -(-1000 // batch_size)
    assert len(data(kv)) == 1000


async def test_failed_batches_are_retried_and_counted(kv: MemoryKV, make_store: MakeStore,
                                                      eventually: Eventually) -> None:
    metrics = Metrics()
    store = await make_store(metrics=metrics)
    kv.fail_next(3, ops={"apply"})
    for i in range(5):
        store.upsert(f"k{i}", b"v")
    await eventually(lambda: len(data(kv)) == 5 and store.pending_writes == 0)
    assert kv.ops["apply"] == 4
    assert sample(metrics, "kvstore_sync_errors_total", scope="nodes/v1", source_cluster="c1") == 15
    txn = {"scope": "nodes/v1", "kind": "set", "action": "Txn"}
    assert sample(metrics, "kvstore_operations_duration_seconds_count", outcome="fail", **txn) == 3
    assert sample(metrics, "kvstore_operations_duration_seconds_count", outcome="success", **txn) == 1


async def test_unexpected_exceptions_are_retried_too(kv: MemoryKV, make_store: MakeStore,
                                                     eventually: Eventually) -> None:
    store = await make_store()
    kv.fail_next(1, RuntimeError("boom"), ops={"apply"})
    store.upsert("k", b"v")
    await eventually(lambda: data(kv) == {f"{PREFIX}/k": b"v"})


async def test_delete_after_an_ambiguous_put_failure_still_deletes(kv: MemoryKV, make_store: MakeStore,
                                                                    eventually: Eventually) -> None:
    store = await make_store()
    await warm_up(store, eventually)
    await hold_in_flight(kv, store, eventually, "k", b"v")
    kv.fail_next(1, ops={"apply"}, after=True)  # the put lands, but is reported as failed
    store.delete("k")
    kv.resume()
    await eventually(lambda: store.pending_writes == 0 and kv.ops["apply"] >= 3)
    assert data(kv) == {f"{PREFIX}/warm-up": b"1"}


async def newer_behind_in_flight(kv: MemoryKV, make_store: MakeStore, eventually: Eventually) -> SyncStore:
    """A store whose write of ``k=v1`` is held in flight while ``k=v2`` is queued behind it."""
    store = await make_store()
    await warm_up(store, eventually)
    await hold_in_flight(kv, store, eventually, "k", b"v1")
    store.upsert("k", b"v2")
    return store


async def test_newer_value_arriving_while_older_is_in_flight_wins(kv: MemoryKV, make_store: MakeStore,
                                                                  eventually: Eventually) -> None:
    store = await newer_behind_in_flight(kv, make_store, eventually)
    kv.resume()
    await eventually(lambda: store.pending_writes == 0 and data(kv)[f"{PREFIX}/k"] == b"v2")
    assert store.exported()["k"] == b"v2"


async def test_newer_value_survives_a_failure_of_the_older_write(kv: MemoryKV, make_store: MakeStore,
                                                                 eventually: Eventually) -> None:
    store = await newer_behind_in_flight(kv, make_store, eventually)
    kv.fail_next(1, ops={"apply"})
    kv.resume()
    await eventually(lambda: store.pending_writes == 0 and data(kv).get(f"{PREFIX}/k") == b"v2")


async def test_canary_is_written_after_the_data(kv: MemoryKV, make_store: MakeStore) -> None:
    metrics = Metrics()
    store = await make_store(metrics=metrics)
    synced = {"scope": "nodes/v1", "source_cluster": "c1", "action": "write"}
    assert sample(metrics, "kvstore_initial_sync_completed", **synced) == 0
    for i in range(300):
        store.upsert(f"n{i}", b"v")
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    canary = kv.entry(CANARY)
    assert canary is not None and RFC3339.match(canary.value) and canary.lease
    assert len(data(kv)) == 300
    assert canary.mod_revision > max(kv.entry(k).mod_revision for k in data(kv))  # type: ignore[union-attr]
    assert sample(metrics, "kvstore_initial_sync_completed", **synced) == 1


async def test_canary_waits_for_keys_in_back_off(kv: MemoryKV, make_store: MakeStore,
                                                 eventually: Eventually) -> None:
    store = await make_store()
    kv.fail_next(4, ops={"apply"})
    for i in range(3):
        store.upsert(f"n{i}", b"v")
    await eventually(lambda: store.retrying == 3)
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    assert [e.key for e in await history(kv)][-1] == CANARY
    assert len(data(kv)) == 3


async def test_canary_waits_for_a_failing_in_flight_batch(kv: MemoryKV, make_store: MakeStore,
                                                          eventually: Eventually) -> None:
    store = await make_store()
    await warm_up(store, eventually)
    await hold_in_flight(kv, store, eventually, "n", b"v")
    kv.fail_next(1, ops={"apply"})
    store.mark_synced()
    kv.resume()
    await asyncio.wait_for(store.synced.wait(), 5)
    assert [e.key for e in await history(kv)] == [f"{PREFIX}/warm-up", f"{PREFIX}/n", CANARY]


async def test_canary_waits_for_a_value_queued_behind_an_in_flight_write(
        kv: MemoryKV, make_store: MakeStore, eventually: Eventually) -> None:
    store = await make_store()
    await warm_up(store, eventually)
    await hold_in_flight(kv, store, eventually, "n", b"v1")
    store.upsert("n", b"v2")
    store.mark_synced()
    kv.resume()
    await asyncio.wait_for(store.synced.wait(), 5)
    assert [(e.key, e.value) for e in await history(kv)][-3:-1] == [
        (f"{PREFIX}/n", b"v1"), (f"{PREFIX}/n", b"v2")]
    assert kv.entry(CANARY).mod_revision > kv.entry(f"{PREFIX}/n").mod_revision  # type: ignore[union-attr]


async def test_canary_key_override_and_empty_sync(kv: MemoryKV, make_store: MakeStore) -> None:
    store = await make_store(prefix="cilium/state/identities/v1/id", synced_key="cilium/state/identities/v1")
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    assert kv.entry("cilium/synced/c1/cilium/state/identities/v1") is not None


async def test_lost_lease_rewrites_keys_and_canary(kv: MemoryKV, make_store: MakeStore,
                                                   eventually: Eventually) -> None:
    store = await make_store()
    for i in range(5):
        store.upsert(f"n{i}", b"v")
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    old = kv.entry(f"{PREFIX}/n0").lease  # type: ignore[union-attr]
    kv.expire_lease(old)
    assert data(kv) == {} and kv.entry(CANARY) is None
    await eventually(lambda: len(data(kv)) == 5 and kv.entry(CANARY) is not None)
    assert {kv.entry(k).lease for k in data(kv)} - {old} == {kv.entry(CANARY).lease}  # type: ignore[union-attr]
    await eventually(lambda: len(store.exported()) == 5)


async def test_lease_loss_seen_by_a_put_rewrites_the_other_keys(kv: MemoryKV, make_store: MakeStore,
                                                                eventually: Eventually) -> None:
    quiet = LeaseManager(kv, ttl=60)  # no keepalive loop: only the failing put can notice
    store = await make_store(leases=quiet)
    store.upsert("a", b"1")
    await eventually(lambda: "a" in store.exported())
    kv.expire_lease(kv.entry(f"{PREFIX}/a").lease)  # type: ignore[union-attr]
    store.upsert("b", b"1")
    await eventually(lambda: data(kv) == {f"{PREFIX}/a": b"1", f"{PREFIX}/b": b"1"})
    await eventually(lambda: store.pending_writes == 0)
    assert quiet.lease_count == 1


async def test_stale_keys_of_a_previous_run_are_deleted_after_the_canary(
        kv: MemoryKV, make_store: MakeStore, eventually: Eventually) -> None:
    await kv.put(f"{PREFIX}/c1/old", b"x")  # left over: deleted
    await kv.put(f"{PREFIX}/c1/kept", b"old")  # re-exported by this run: kept, rewritten
    await kv.put(f"{PREFIX}/c1x/not-ours", b"x")  # string-prefix match only: untouched
    await kv.put(f"{PREFIX}/c2/other", b"x")  # outside the stale prefix: untouched
    metrics = Metrics()
    store = await make_store(stale_prefix=f"{PREFIX}/c1", metrics=metrics)
    store.upsert("c1/kept", b"new")
    store.upsert("c1/new", b"v")
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    expected = {f"{PREFIX}/c1/kept": b"new", f"{PREFIX}/c1/new": b"v", f"{PREFIX}/c1x/not-ours": b"x",
                f"{PREFIX}/c2/other": b"x"}
    await eventually(lambda: data(kv) == expected)
    keys = [(e.type, e.key) for e in await history(kv)]
    assert keys.index((EventType.PUT, CANARY)) < keys.index((EventType.DELETE, f"{PREFIX}/c1/old"))
    await eventually(lambda: sample(metrics, "kvstore_stale_keys_deleted_total", scope="nodes/v1") == 1)


async def test_without_stale_prefix_leftovers_stay(kv: MemoryKV, make_store: MakeStore) -> None:
    await kv.put(f"{PREFIX}/c1/old", b"x")
    store = await make_store()
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    await store.stop()
    assert data(kv) == {f"{PREFIX}/c1/old": b"x"}
    assert kv.ops["list_prefix"] == 0


async def test_rate_limit_counts_one_token_per_batch(kv: MemoryKV, make_store: MakeStore) -> None:
    fake_now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        fake_now[0] += seconds
        await asyncio.sleep(0)

    limiter = APILimiter(20, burst=1, clock=lambda: fake_now[0], sleep=fake_sleep)
    store = await make_store(limiter=limiter)
    for i in range(1000):
        store.upsert(f"n{i:04d}", b"v")
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 5)
    operations = -(-1000 // 128) + 1  # 8 batches and the canary
    assert limiter.acquired == operations
    assert fake_now[0] >= (operations - 1) / 20 - 1e-9


async def test_stop_drains_pending_writes(kv: MemoryKV, leases: LeaseManager) -> None:
    store = SyncStore(kv, leases, prefix=PREFIX, cluster_name="c1")
    await store.start()
    for i in range(500):
        store.upsert(f"n{i}", b"v")
    await store.stop()
    assert len(data(kv)) == 500


async def test_stop_is_bounded_when_etcd_hangs(kv: MemoryKV, leases: LeaseManager,
                                               eventually: Eventually) -> None:
    store = SyncStore(kv, leases, prefix=PREFIX, cluster_name="c1")
    await store.start()
    await warm_up(store, eventually)
    await hold_in_flight(kv, store, eventually, "k", b"v")
    started = time.monotonic()
    await store.stop(drain_timeout=0.2)
    assert time.monotonic() - started < 2.0
    kv.resume()
    assert kv.in_flight["apply"] == 0


async def test_keys_are_normalised(kv: MemoryKV, make_store: MakeStore, eventually: Eventually) -> None:
    store = await make_store()
    store.upsert("/c1//n1/", b"v")
    await eventually(lambda: data(kv) == {f"{PREFIX}/c1/n1": b"v"})
    with pytest.raises(ValueError, match="invalid sync store key"):
        store.upsert("//", b"v")


async def test_queue_size_metric_returns_to_zero(kv: MemoryKV, make_store: MakeStore,
                                                 eventually: Eventually) -> None:
    metrics = Metrics()
    store = await make_store(metrics=metrics)
    for i in range(300):
        store.upsert(f"n{i}", b"v")
    await eventually(lambda: len(store.exported()) == 300)
    await eventually(lambda: sample(metrics, "kvstore_sync_queue_size", scope="nodes/v1",
                                    source_cluster="c1") == 0)


@pytest.mark.parametrize("options", [
    pytest.param({"stale_prefix": "cilium/state/services/v1/c1/"}, id="stale-prefix-outside"),
    pytest.param({"batch_size": 0}, id="batch-size-zero"),
    pytest.param({"batch_size": 129}, id="batch-size-above-txn-limit"),
    pytest.param({"prefix": "/"}, id="empty-prefix"),
])
def test_invalid_options_are_refused(kv: MemoryKV, options: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"prefix": PREFIX, "cluster_name": "c1"}
    arguments.update(options)
    with pytest.raises(ValueError):
        SyncStore(kv, LeaseManager(kv), **arguments)
