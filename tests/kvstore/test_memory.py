"""MemoryKV behaves like a single etcd member: revisions, txn rules, leases, watch, compaction, faults."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.kvstore import (
    CompactedError,
    Compare,
    Delete,
    EventType,
    KVStoreError,
    LeaseNotFoundError,
    Put,
    UnavailableError,
    WatchBatch,
)
from localmesh.memory.kv import MemoryKV


async def _next(it: object, timeout: float = 2.0) -> WatchBatch:
    async with asyncio.timeout(timeout):
        return await it.__anext__()  # type: ignore[attr-defined, no-any-return]


async def test_revisions_follow_etcd_rules() -> None:
    kv = MemoryKV()
    assert kv.revision == 1
    assert await kv.put("a", b"1") == 2
    assert await kv.put("a", b"2") == 3
    entry = await kv.get("a")
    assert entry is not None
    assert (entry.value, entry.create_revision, entry.mod_revision) == (b"2", 2, 3)
    assert await kv.delete("missing") == 0
    assert kv.revision == 3  # deleting nothing is not a write
    assert await kv.delete("a") == 1
    assert kv.revision == 4
    assert await kv.get("a") is None


async def test_list_prefix_sorted_keys_only_and_past_revision() -> None:
    kv = MemoryKV()
    await kv.put("p/b", b"B")
    rev = await kv.put("p/a", b"A")
    await kv.put("q/x", b"X")
    await kv.put("p/a", b"A2")
    await kv.delete("p/b")
    kvs, at = await kv.list_prefix("p/")
    assert [(x.key, x.value) for x in kvs] == [("p/a", b"A2")]
    assert at == kv.revision
    old, at_old = await kv.list_prefix("p/", revision=rev)
    assert [(x.key, x.value) for x in old] == [("p/a", b"A"), ("p/b", b"B")]
    assert at_old == rev
    keys, _ = await kv.list_prefix("p/", keys_only=True)
    assert [(x.key, x.value) for x in keys] == [("p/a", b"")]
    kv.compact(kv.revision)
    with pytest.raises(CompactedError):
        await kv.list_prefix("p/", revision=rev)


async def test_iter_prefix_pages() -> None:
    kv = MemoryKV()
    for i in range(5):
        await kv.put(f"p/{i}", b"v")
    pages = [page async for page in kv.iter_prefix("p/", page_size=2, keys_only=True)]
    assert [[x.key for x in page] for page, _ in pages] == [["p/0", "p/1"], ["p/2", "p/3"], ["p/4"]]
    assert {x.value for page, _ in pages for x in page} == {b""}
    assert {at for _, at in pages} == {kv.revision}
    assert [page async for page in kv.iter_prefix("none/", page_size=2)] == [([], kv.revision)]


@pytest.mark.parametrize(("compare", "holds"), [
    pytest.param(Compare("k", "value", "=", b"v"), True, id="value-equal"),
    pytest.param(Compare("k", "value", "!=", b"v"), False, id="value-not-equal"),
    pytest.param(Compare("missing", "value", "=", b""), False, id="value-of-missing-key-never-holds"),
    pytest.param(Compare("missing", "mod", "=", 0), True, id="missing-key-has-mod-0"),
    pytest.param(Compare("k", "mod", ">", 1), True, id="mod-greater"),
    pytest.param(Compare("k", "create", "<", 2), False, id="create-less"),
    pytest.param(Compare("k", "lease", "=", 0), True, id="no-lease"),
])
async def test_txn_compares(compare: Compare, holds: bool) -> None:
    kv = MemoryKV()
    await kv.put("k", b"v")
    assert await kv.txn([compare], [Put("ok", b"1")], [Put("ko", b"1")]) is holds
    assert kv.snapshot() == {"k": b"v", ("ok" if holds else "ko"): b"1"}


async def test_txn_is_one_revision_and_all_or_nothing() -> None:
    kv = MemoryKV()
    before = kv.revision
    assert await kv.txn([], [Put("a", b"1"), Put("b", b"2"), Delete("none")])
    assert kv.revision == before + 1
    with pytest.raises(LeaseNotFoundError):
        await kv.txn([], [Put("c", b"3"), Put("d", b"4", lease=12345)])
    with pytest.raises(KVStoreError, match="duplicate key"):
        await kv.txn([], [Put("c", b"3"), Delete("c")])
    with pytest.raises(KVStoreError, match="duplicate key"):
        await kv.txn([], [Put("x/c", b"3"), Delete("x/", prefix=True)])
    with pytest.raises(KVStoreError, match="too many operations"):
        await kv.txn([], [Put(f"k{i}", b"") for i in range(129)])
    assert kv.snapshot() == {"a": b"1", "b": b"2"}
    assert kv.revision == before + 1


async def test_apply_chunks_into_txns_of_128() -> None:
    kv = MemoryKV()
    before = kv.revision
    await kv.apply([Put(f"k/{i:04d}", b"v") for i in range(300)])
    assert kv.revision == before + 3
    assert kv.applied == [300]
    assert len(kv.snapshot("k/")) == 300


async def test_delete_prefix() -> None:
    kv = MemoryKV()
    await kv.apply([Put("d/a", b""), Put("d/b", b""), Put("e", b"")])
    assert await kv.delete_prefix("d/") == 2
    assert kv.snapshot() == {"e": b""}


async def test_leases_expire_with_the_fake_clock_and_keepalive_extends() -> None:
    kv = MemoryKV()
    lease = await kv.grant_lease(9.2)  # rounded up to 10 s
    await kv.put("l/a", b"1", lease=lease)
    await kv.put("l/b", b"1", lease=lease)
    await kv.put("plain", b"1")
    assert kv.lease_keys(lease) == {"l/a", "l/b"}
    kv.advance(8)
    assert await kv.keepalive(lease) == 10.0
    kv.advance(8)
    assert kv.snapshot("l/") == {"l/a": b"1", "l/b": b"1"}  # refreshed at t=8, due at t=18
    rev = kv.revision
    kv.advance(2)
    assert kv.snapshot() == {"plain": b"1"}
    assert kv.revision == rev + 1  # both keys went in one revision
    with pytest.raises(LeaseNotFoundError):
        await kv.keepalive(lease)
    with pytest.raises(LeaseNotFoundError):
        await kv.put("l/c", b"1", lease=lease)


async def test_reattaching_a_key_moves_it_between_leases() -> None:
    kv = MemoryKV()
    first, second = await kv.grant_lease(30), await kv.grant_lease(30)
    await kv.put("k", b"1", lease=first)
    await kv.put("k", b"2", lease=second)
    assert kv.lease_keys(first) == set()
    kv.expire_lease(first)
    assert kv.snapshot() == {"k": b"2"}
    await kv.revoke_lease(second)
    assert kv.snapshot() == {}
    with pytest.raises(LeaseNotFoundError):
        await kv.revoke_lease(second)


async def test_watch_replays_history_then_streams_live_events() -> None:
    kv = MemoryKV()
    start = await kv.put("w/a", b"1")
    await kv.put("other", b"x")
    await kv.delete("w/a")
    watch = kv.watch("w/", start_revision=start)
    batch = await _next(watch)
    assert [(e.type, e.key, e.value, e.mod_revision) for e in batch.events] == [
        (EventType.PUT, "w/a", b"1", start), (EventType.DELETE, "w/a", b"", start + 2)]
    assert batch.revision == kv.revision
    pending = asyncio.ensure_future(_next(watch))
    await kv.put("other", b"y")
    rev = await kv.put("w/b", b"2")
    live = await pending
    assert [(e.key, e.mod_revision) for e in live.events] == [("w/b", rev)]
    kv.request_progress()
    progress = await _next(watch)
    assert progress.events == [] and progress.revision == kv.revision
    await watch.aclose()  # type: ignore[attr-defined]


async def test_watch_from_now_skips_history() -> None:
    kv = MemoryKV()
    await kv.put("w/old", b"1")
    watch = kv.watch("w/")
    pending = asyncio.ensure_future(_next(watch))
    await asyncio.sleep(0)
    await kv.put("w/new", b"1")
    assert [e.key for e in (await pending).events] == ["w/new"]
    await watch.aclose()  # type: ignore[attr-defined]


async def test_compaction_cancels_old_and_lagging_watches() -> None:
    kv = MemoryKV()
    first = await kv.put("w/a", b"1")
    await kv.put("w/a", b"2")
    lagging = kv.watch("w/", start_revision=first)
    kv.compact(kv.revision)
    with pytest.raises(CompactedError) as info:
        await _next(kv.watch("w/", start_revision=first))
    assert info.value.compact_revision == kv.revision
    with pytest.raises(CompactedError):
        await _next(lagging)


async def test_fail_next_injects_faults_by_operation() -> None:
    kv = MemoryKV()
    kv.fail_next(2, ops={"apply"})
    await kv.put("a", b"1")  # not an apply: unaffected
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await kv.apply([Put("b", b"1")])
    await kv.apply([Put("b", b"1")])
    kv.fail_next(1, LeaseNotFoundError("gone"))
    with pytest.raises(LeaseNotFoundError):
        await kv.get("a")
    kv.fail_next(1, ops={"put"}, after=True)  # applied, then reported as failed
    with pytest.raises(UnavailableError):
        await kv.put("c", b"1")
    assert kv.snapshot() == {"a": b"1", "b": b"1", "c": b"1"}
    assert kv.ops["apply"] == 3 and kv.ops["put"] == 2 and kv.ops["get"] == 1


async def test_pause_holds_operations_in_flight() -> None:
    kv = MemoryKV()
    kv.pause()
    put = asyncio.ensure_future(kv.put("a", b"1"))
    await asyncio.sleep(0)
    assert kv.in_flight["put"] == 1 and not put.done()
    kv.resume()
    await put
    assert kv.in_flight["put"] == 0 and kv.snapshot() == {"a": b"1"}


async def test_close_makes_operations_and_watches_fail() -> None:
    kv = MemoryKV()
    watch = kv.watch("")
    pending = asyncio.ensure_future(_next(watch))
    await asyncio.sleep(0)
    await kv.close()
    with pytest.raises(UnavailableError):
        await pending
    with pytest.raises(UnavailableError):
        await kv.get("a")


async def test_status_reports_revision() -> None:
    kv = MemoryKV()
    await kv.put("a", b"1")
    status = await kv.status()
    assert status.revision == kv.revision and status.leader == status.member_id
