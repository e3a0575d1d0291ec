"""Keys and canaries deleted or overwritten behind a sync store's back are written back
(``KeyRestorer``, ``CanaryRestorer`` against MemoryKV); our own writes never count as someone
else's; what happened before the watch started is read from a listing; two writers that disagree do not
rewrite a key in a tight loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from apiserver.kvstore import StoreResetError
from apiserver.kvstore._restore import FREE_RESTORES, MAX_DELAY, WINDOW, OwnWrites, Strikes, Verdict, judge
from apiserver.kvstore._syncqueue import SyncQueue
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.restore import CanaryRestorer, KeyRestorer
from apiserver.kvstore.syncstore import SyncStore
from apiserver.metrics import Metrics
from localmesh.memory.kv import MemoryKV

PREFIX = "cilium/state/ip/v1/default"
Eventually = Callable[..., Awaitable[None]]


class Exported:
    """One synced store with 20 keys, its key and canary restorers running."""

    def __init__(self, kv: MemoryKV, leases: LeaseManager) -> None:
        self.kv = kv
        self.metrics = Metrics()
        self.store = SyncStore(kv, leases, prefix=PREFIX, cluster_name="c1", metrics=self.metrics)
        self.keys = KeyRestorer(kv, self.store)
        self.canaries = CanaryRestorer(kv, "c1", [self.store])

    async def start(self, eventually: Eventually) -> None:
        await self.store.start()
        for i in range(20):
            self.store.upsert(f"10.0.0.{i}", b'{"v":%d}' % i)
        self.store.mark_synced()
        await asyncio.wait_for(self.store.synced.wait(), 10)
        self.keys.start()
        self.canaries.start()

    async def stop(self) -> None:
        await self.keys.stop()
        await self.canaries.stop()
        await self.store.stop(drain_timeout=1.0)

    def etcd(self) -> dict[str, bytes]:
        return self.kv.snapshot(PREFIX + "/")

    def restored(self) -> float:
        value = self.metrics.registry.get_sample_value(
            "cilium_clustermesh_apiserver_kvstore_keys_restored_total", {"scope": self.store.scope})
        return 0.0 if value is None else value

    def wanted(self) -> dict[str, bytes]:
        return {f"{PREFIX}/{k}": v for k, v in self.store.desired().items()}


@pytest.fixture
async def exported(kv: MemoryKV, leases: LeaseManager, eventually: Eventually) -> AsyncIterator[Exported]:
    world = Exported(kv, leases)
    await world.start(eventually)
    yield world
    await world.stop()


async def test_a_key_deleted_behind_our_back_is_written_back(
        exported: Exported, eventually: Eventually, caplog: pytest.LogCaptureFixture) -> None:
    await exported.kv.delete(f"{PREFIX}/10.0.0.3")
    await eventually(lambda: exported.etcd() == exported.wanted(), what="the deleted key back")
    assert exported.restored() == 1
    named = [r._fields for r in caplog.records  # type: ignore[attr-defined]
             if r.getMessage().startswith("Key deleted or overwritten by someone else")]
    assert [(f["key"], f["event"]) for f in named] == [(f"{PREFIX}/10.0.0.3", "delete")]


async def test_a_key_overwritten_behind_our_back_is_written_back_on_our_lease(
        exported: Exported, eventually: Eventually) -> None:
    key = f"{PREFIX}/10.0.0.4"
    ours = exported.kv.entry(key)
    assert ours is not None
    await exported.kv.put(key, b"garbage")
    await eventually(lambda: exported.etcd() == exported.wanted(), what="our value back")
    entry = exported.kv.entry(key)
    assert entry is not None and entry.value == b'{"v":4}' and entry.lease == ours.lease
    assert exported.restored() == 1


async def test_our_own_writes_are_never_taken_for_someone_elses(exported: Exported, eventually: Eventually) -> None:
    store = exported.store
    for round_ in range(5):  # churn: changes, deletes, re-adds, A -> B -> A
        for i in range(20):
            store.upsert(f"10.0.0.{i}", b'{"v":%d,"r":%d}' % (i, round_))
        store.delete("10.0.0.5")
        store.upsert("10.0.0.5", b"back")
        store.upsert("10.0.0.6", b"B")
        store.upsert("10.0.0.6", b'{"v":6,"r":%d}' % round_)
        await asyncio.sleep(0)
    store.delete("10.0.0.7")
    await eventually(lambda: store.pending_writes == 0 and exported.etcd() == exported.wanted())
    # The watch has seen every event of ours: a marker write after them, then nothing restored.
    await exported.kv.delete(f"{PREFIX}/10.0.0.8")
    await eventually(lambda: exported.restored() >= 1, what="the marker restored")
    await eventually(lambda: exported.etcd() == exported.wanted())
    assert exported.restored() == 1
    assert exported.keys.restored == 1


async def test_a_foreign_put_of_a_key_we_do_not_want_is_left_alone(
        exported: Exported, eventually: Eventually) -> None:
    await exported.kv.put(f"{PREFIX}/10.9.9.9", b"not ours")
    await exported.kv.delete(f"{PREFIX}/10.0.0.1")  # a marker the restorer reacts to, after it
    await eventually(lambda: exported.restored() == 1)
    await eventually(lambda: exported.etcd() == {**exported.wanted(), f"{PREFIX}/10.9.9.9": b"not ours"})


async def test_a_canary_deleted_or_overwritten_is_written_back(exported: Exported, eventually: Eventually) -> None:
    canary = exported.store.canary_key
    await exported.kv.delete(canary)
    await eventually(lambda: exported.kv.entry(canary) is not None, what="the canary back")
    await exported.kv.put(canary, b"garbage")
    await eventually(lambda: (e := exported.kv.entry(canary)) is not None and e.value != b"garbage",
                     what="the canary rewritten")
    assert exported.canaries.restored == 2
    assert exported.restored() == 2


async def test_damage_before_the_watch_is_found_by_a_keys_only_listing_even_with_history_compacted(
        kv: MemoryKV, leases: LeaseManager, eventually: Eventually) -> None:
    world = Exported(kv, leases)
    world.keys.start = lambda: None  # type: ignore[method-assign]  # started below, after the damage
    world.canaries.start = lambda: None  # type: ignore[method-assign]
    await world.start(eventually)
    try:
        await kv.delete(f"{PREFIX}/10.0.0.1")
        await kv.put(f"{PREFIX}/10.0.0.2", b"garbage")
        await kv.delete(world.store.canary_key)
        kv.compact(kv.revision)  # no history to replay: the listing's revisions tell
        KeyRestorer.start(world.keys)
        CanaryRestorer.start(world.canaries)
        await eventually(lambda: world.etcd() == world.wanted(), what="both keys back")
        await eventually(lambda: kv.entry(world.store.canary_key) is not None, what="the canary back")
        assert world.keys.restored == 2 and world.canaries.restored == 1
        # ... and it watches on from the listing: a later delete is seen too.
        await kv.delete(f"{PREFIX}/10.0.0.3")
        await eventually(lambda: world.etcd() == world.wanted(), what="a later delete restored")
    finally:
        await world.stop()


def test_an_event_on_a_key_in_flight_waits_until_its_write_is_settled() -> None:
    queue, own = SyncQueue(), OwnWrites()
    own.enabled = True
    queue.upsert("k", b"ours")
    keys, values = queue.take(10)
    # Our put is in flight (revision unknown): an event on the key cannot be judged yet.
    assert judge(queue, own, "k", None, 7) is Verdict.UNDECIDED
    own.record(7)
    queue.succeeded(keys, values)
    assert judge(queue, own, "k", b"ours", 7) is Verdict.NOTHING  # it was ours
    assert judge(queue, own, "k", None, 8) is Verdict.RESTORE  # after ours: someone else's
    assert judge(queue, own, "other", None, 8) is Verdict.NOTHING  # not ours to keep


def test_a_changed_key_already_queued_is_written_even_if_its_value_looks_settled() -> None:
    queue, own = SyncQueue(), OwnWrites()
    queue.upsert("k", b"A")
    queue.succeeded(*queue.take(10))
    queue.upsert("k", b"B")
    queue.upsert("k", b"A")  # A -> B -> A: nothing to write, as far as the queue knows
    assert judge(queue, own, "k", b"garbage", 9) is Verdict.NOTHING  # the queued write will do
    keys, values = queue.take(10)
    assert (keys, values) == (["k"], [b"A"])


def test_a_key_fought_over_waits_longer_each_time() -> None:
    strikes = Strikes()
    delays = [strikes.delay("k", float(t)) for t in range(FREE_RESTORES + 8)]
    assert delays[:FREE_RESTORES] == [0.0] * FREE_RESTORES
    assert delays[FREE_RESTORES:] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_DELAY, MAX_DELAY]
    assert strikes.delay("other", 20.0) == 0.0
    assert strikes.delay("k", 20.0 + WINDOW) == 0.0  # a quiet window forgives


def test_own_write_revisions_are_recorded_only_when_watched_and_pruned_in_bulk() -> None:
    own = OwnWrites()
    own.record(5)
    assert own.first == 0 and not own.revisions
    own.enabled = True
    for revision in range(10, 10_010):
        own.record(revision)
    assert own.first == 10
    own.forget_below(9_000)
    assert min(own.revisions) == 9_000 and own.first == 10


async def test_after_a_store_reset_the_watch_starts_again_on_the_new_store(
        exported: Exported, eventually: Eventually) -> None:
    store = exported.store
    store.store_lost()  # as the exporter does when etcd comes back empty: every key written again
    assert store.own_writes.first == 0 and store.canary_revision == 0
    await exported.keys.restart()
    await exported.canaries.restart()
    await asyncio.wait_for(store.synced.wait(), 10)
    await eventually(lambda: store.pending_writes == 0)
    assert store.own_writes.first > 0
    await exported.kv.delete(f"{PREFIX}/10.0.0.9")
    await exported.kv.delete(store.canary_key)
    await eventually(lambda: exported.etcd() == exported.wanted(), what="the key back after the reset")
    await eventually(lambda: exported.kv.entry(store.canary_key) is not None, what="the canary back")
    assert exported.keys.restored == 1 and exported.canaries.restored == 1


async def test_a_watch_that_cannot_resume_on_a_reset_store_tells_the_owner_and_compares_every_key(
        kv: MemoryKV, leases: LeaseManager, eventually: Eventually) -> None:
    told: list[str] = []
    exported = Exported(kv, leases)
    exported.keys = KeyRestorer(kv, exported.store, told.append)
    exported.canaries = CanaryRestorer(kv, "c1", [exported.store], told.append)
    reset = StoreResetError("etcd store was reset: the watch on 'cilium/' resumes at revision 99")
    kv.fail_next(1, reset, ops={"watch"})  # the first watch of either restorer
    await exported.start(eventually)
    try:
        await eventually(lambda: told != [], what="the owner told")
        assert told == [str(reset)]
        # It compared every key instead (a listing), and watches on: damage is still repaired.
        await kv.delete(f"{PREFIX}/10.0.0.3")
        await eventually(lambda: exported.etcd() == exported.wanted(), what="the key back")
    finally:
        await exported.stop()


async def test_two_writers_that_disagree_back_off_instead_of_fighting(
        kv: MemoryKV, leases: LeaseManager, eventually: Eventually, caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = Exported(kv, leases), Exported(kv, leases)
    await ours.start(eventually)
    await theirs.start(eventually)  # same keys; "theirs" encodes 10.0.0.0 differently
    try:
        theirs.store.upsert("10.0.0.0", b'{"v":"other encoding"}')
        # Each rewrites the other's value a few times at once, then waits 1 s, 2 s, ...
        await eventually(lambda: ours.keys.restored + theirs.keys.restored > 2 * FREE_RESTORES,
                         what="the free restores used up")
        await eventually(lambda: ours.store.retrying + theirs.store.retrying == 1, what="a delayed restore")
        delays = [r._fields["delay"] for r in caplog.records  # type: ignore[attr-defined]
                  if r.getMessage().startswith("Key deleted or overwritten") and "delay" in r._fields]
        assert delays == [1.0]
    finally:
        await theirs.stop()
        await ours.stop()
