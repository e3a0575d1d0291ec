"""WatchStore: list at R then watch from R+1, relist on compaction and on restart, stale detection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from apiserver.kvstore import CompactedError, KeyValue, UnavailableError, WatchBatch
from apiserver.kvstore.watchstore import WatchStore, WatchStoreBusyError
from localmesh.memory.kv import MemoryKV
from localmesh.testing.polling import eventually

PREFIX = "cilium/state/nodes/v1/cluster1"


class Recorder:
    """Observer keeping the mirrored state and the ordered list of notifications."""

    def __init__(self) -> None:
        self.state: dict[str, bytes] = {}
        self.log: list[tuple[str, str]] = []

    def on_upsert(self, key: str, value: bytes) -> None:
        self.state[key] = value
        self.log.append(("upsert", key))

    def on_upsert_many(self, items: dict[str, bytes]) -> None:
        for key, value in items.items():
            self.on_upsert(key, value)

    def on_delete(self, key: str) -> None:
        del self.state[key]  # a delete for an unknown key is a bug: KeyError fails the test
        self.log.append(("delete", key))


def remote_state(kv: MemoryKV, prefix: str = PREFIX) -> dict[str, bytes]:
    base = prefix + "/"
    return {k[len(base):]: v for k, v in kv.snapshot(base).items()}


async def run(store: WatchStore, backend: object, prefix: str = PREFIX) -> asyncio.Task[None]:
    task = asyncio.create_task(store.watch(backend, prefix))  # type: ignore[arg-type]
    await eventually(lambda: store.synced)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_initial_list_then_live_events_with_sibling_prefix_excluded() -> None:
    kv = MemoryKV()
    await kv.put(f"{PREFIX}/a", b"1")
    await kv.put(f"{PREFIX}/b", b"2")
    await kv.put("cilium/state/nodes/v1/cluster10/x", b"not mine")
    synced: list[int] = []
    rec = Recorder()
    store = WatchStore(rec, source_cluster="cluster1", on_sync=lambda: synced.append(len(rec.state)))
    task = await run(store, kv)
    assert rec.state == {"a": b"1", "b": b"2"}
    assert synced == [2]  # called once, after the whole initial list

    await kv.put(f"{PREFIX}/c", b"3")
    await kv.put(f"{PREFIX}/a", b"1'")
    await kv.delete(f"{PREFIX}/b")
    await kv.put("cilium/state/nodes/v1/cluster10/y", b"not mine either")
    await eventually(lambda: rec.state == remote_state(kv))
    assert rec.state == {"a": b"1'", "c": b"3"}
    assert store.num_entries == 2
    await stop(task)
    assert not store.synced


async def test_values_are_passed_byte_for_byte_and_unchanged_values_not_renotified() -> None:
    kv = MemoryKV()
    garbage = b"\xff\x00not json{"
    await kv.put(f"{PREFIX}/n1", garbage)
    rec = Recorder()
    store = WatchStore(rec)
    task = await run(store, kv)
    await kv.put(f"{PREFIX}/n1", garbage)  # same bytes again: no new notification
    await kv.put(f"{PREFIX}/n2", b"")
    await eventually(lambda: "n2" in rec.state)
    assert rec.state == {"n1": garbage, "n2": b""}
    assert rec.log == [("upsert", "n1"), ("upsert", "n2")]
    await stop(task)


async def test_restart_reports_exactly_the_keys_that_disappeared() -> None:
    kv = MemoryKV()
    for name in ("keep", "change", "gone"):
        await kv.put(f"{PREFIX}/{name}", b"v1")
    synced: list[bool] = []
    rec = Recorder()
    store = WatchStore(rec, on_sync=lambda: synced.append(True))
    await stop(await run(store, kv))

    # While nobody watches: one key deleted, one changed, one added.
    await kv.delete(f"{PREFIX}/gone")
    await kv.put(f"{PREFIX}/change", b"v2")
    await kv.put(f"{PREFIX}/new", b"v1")
    rec.log.clear()
    task = await run(store, kv)
    assert rec.state == remote_state(kv)
    assert sorted(rec.log) == [("delete", "gone"), ("upsert", "change"), ("upsert", "new")]
    assert synced == [True]  # on_sync only after the first list ever
    await stop(task)


class CompactingWatch:
    """A backend whose first watch waits for ``gate`` and then reports a compaction."""

    def __init__(self, kv: MemoryKV) -> None:
        self.kv = kv
        self.gate = asyncio.Event()
        self.watches: list[int] = []
        self.lists = 0

    async def iter_prefix(self, prefix: str, **kw: object) -> AsyncIterator[object]:
        self.lists += 1
        yield await self.kv.list_prefix(prefix)

    def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[WatchBatch]:
        self.watches.append(start_revision)
        if len(self.watches) == 1:
            return self._compacted()
        return self.kv.watch(prefix, start_revision=start_revision)

    async def _compacted(self) -> AsyncIterator[WatchBatch]:
        await self.gate.wait()
        raise CompactedError(self.kv.revision)
        yield WatchBatch()  # pragma: no cover - makes this an async generator


async def test_compaction_relists_and_deletes_what_disappeared_meanwhile() -> None:
    kv = MemoryKV()
    for i in range(5):
        await kv.put(f"{PREFIX}/n{i}", b"v1")
    backend = CompactingWatch(kv)
    rec = Recorder()
    store = WatchStore(rec)
    task = await run(store, backend)
    first_list_rev = backend.watches[0] - 1
    assert first_list_rev == (await kv.status()).revision  # watch starts right after the list

    await kv.delete(f"{PREFIX}/n0")
    await kv.delete(f"{PREFIX}/n1")
    await kv.put(f"{PREFIX}/n2", b"v2")
    await kv.put(f"{PREFIX}/n9", b"v1")
    kv.compact(kv.revision)
    rec.log.clear()
    backend.gate.set()
    await eventually(lambda: backend.lists == 2 and rec.state == remote_state(kv))
    assert sorted(rec.log) == [("delete", "n0"), ("delete", "n1"), ("upsert", "n2"), ("upsert", "n9")]
    # ... and it keeps watching from the new list revision.
    await kv.put(f"{PREFIX}/n3", b"v3")
    await eventually(lambda: rec.state.get("n3") == b"v3")
    assert backend.watches[1] == first_list_rev + 4 + 1  # relisted after the 4 changes, watch from +1
    await stop(task)


async def test_events_between_list_and_watch_are_not_skipped() -> None:
    """A write landing between the list and the watch start is replayed (watch from rev+1)."""
    kv = MemoryKV()
    await kv.put(f"{PREFIX}/a", b"1")

    class SlowWatch:
        def __init__(self) -> None:
            self.kv = kv

        async def iter_prefix(self, prefix: str, **kw: object) -> AsyncIterator[object]:
            result = await kv.list_prefix(prefix)
            await kv.put(f"{PREFIX}/b", b"written right after the list")
            await kv.delete(f"{PREFIX}/a")
            yield result

        def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[WatchBatch]:
            return kv.watch(prefix, start_revision=start_revision)

    rec = Recorder()
    store = WatchStore(rec)
    task = await run(store, SlowWatch())
    await eventually(lambda: rec.state == {"b": b"written right after the list"})
    await stop(task)


async def test_watch_errors_propagate_and_the_store_can_restart() -> None:
    kv = MemoryKV()
    await kv.put(f"{PREFIX}/a", b"1")
    rec = Recorder()
    store = WatchStore(rec)
    task = asyncio.create_task(store.watch(kv, PREFIX))
    await eventually(lambda: store.synced)
    with pytest.raises(WatchStoreBusyError):
        await store.watch(kv, PREFIX)
    with pytest.raises(WatchStoreBusyError):
        store.drain()
    await kv.close()  # the connection dies
    with pytest.raises(UnavailableError):
        await task
    assert not store.synced
    assert rec.state == {"a": b"1"}  # nothing is deleted just because the connection broke


async def test_drain_reports_every_key_deleted() -> None:
    kv = MemoryKV()
    for name in ("a", "b", "c"):
        await kv.put(f"{PREFIX}/{name}", b"x")
    rec = Recorder()
    store = WatchStore(rec)
    await stop(await run(store, kv))
    store.drain()
    assert rec.state == {}
    assert store.num_entries == 0
    assert sorted(k for op, k in rec.log if op == "delete") == ["a", "b", "c"]


async def test_ended_watch_stream_is_a_connection_error() -> None:
    kv = MemoryKV()

    class EndingWatch:
        async def iter_prefix(self, prefix: str, **kw: object) -> AsyncIterator[object]:
            yield await kv.list_prefix(prefix)

        def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[WatchBatch]:
            async def nothing() -> AsyncIterator[WatchBatch]:
                return
                yield WatchBatch()  # pragma: no cover

            return nothing()

    store = WatchStore(Recorder())
    with pytest.raises(UnavailableError, match="ended unexpectedly"):
        await store.watch(EndingWatch(), PREFIX)  # type: ignore[arg-type]


class PagedList:
    """A backend listing ``pages`` pages of ``per_page`` keys, failing at page ``fail_at`` if set."""

    def __init__(self, pages: int, per_page: int, fail_at: int | None = None) -> None:
        self.kv = MemoryKV()
        self.pages, self.per_page, self.fail_at = pages, per_page, fail_at
        self.served = 0

    async def iter_prefix(self, prefix: str, **kw: object) -> AsyncIterator[object]:
        for page in range(self.pages):
            if page == self.fail_at:
                raise UnavailableError("listing broke")
            self.served += 1
            yield [KeyValue(f"{prefix}p{page}-{i:05}", b"%d" % i) for i in range(self.per_page)], 7

    def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[WatchBatch]:
        return self.kv.watch(prefix, start_revision=start_revision)


async def test_paged_listing_is_delivered_in_order_and_complete() -> None:
    backend = PagedList(pages=3, per_page=2_500)  # pages larger than one slice between yields
    rec = Recorder()
    store = WatchStore(rec)
    task = await run(store, backend)
    assert [k for _, k in rec.log] == [f"p{p}-{i:05}" for p in range(3) for i in range(2_500)]
    await stop(task)


async def test_an_error_on_a_later_page_propagates_and_nothing_is_deleted() -> None:
    backend = PagedList(pages=3, per_page=10, fail_at=1)
    rec = Recorder()
    store = WatchStore(rec)
    with pytest.raises(UnavailableError, match="listing broke"):
        await store.watch(backend, PREFIX)  # type: ignore[arg-type]
    assert len(rec.state) == 10 and not store.synced and backend.served == 1
