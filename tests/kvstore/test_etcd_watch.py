"""EtcdClient.watch against a real etcd: history, progress, clean cancel, resume after SIGKILL, compaction.

Resume tests hold the consumer still (the generator is suspended at a ``yield``) while etcd is
killed, restarted and written to, so the watch deterministically re-creates itself *after* the
writes: events are then only seen if it resumes from the right revision.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from apiserver.kvstore import CompactedError, EventType, Put, StoreResetError, WatchBatch, WatchEvent
from apiserver.kvstore.etcd import EtcdClient
from localmesh.testing.etcd import EtcdServer

Eventually = Callable[..., Awaitable[None]]
PROGRESS_ARGS = ["--experimental-watch-progress-notify-interval", "100ms"]


@pytest.fixture
def etcd_progress() -> Iterator[EtcdServer]:
    """An etcd of this test's own that sends watch progress notifications every 100 ms."""
    with EtcdServer(extra_args=PROGRESS_ARGS, name="progress") as srv:
        yield srv


@pytest.fixture
async def progress_client(etcd_progress: EtcdServer) -> AsyncIterator[EtcdClient]:
    async with await EtcdClient.connect(etcd_progress.etcd_config()) as client:
        yield client


def _watchers(srv: EtcdServer) -> int:
    with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("etcd_debugging_mvcc_watcher_total "):
                return int(float(line.split()[1]))
    raise AssertionError("etcd exposes no watcher gauge")


async def _next_events(watch: AsyncIterator[WatchBatch], count: int) -> list[WatchEvent]:
    """Events from the next batches (skipping progress notifications) until ``count`` arrived."""
    events: list[WatchEvent] = []
    async with asyncio.timeout(20):
        while len(events) < count:
            events.extend((await anext(watch)).events)
    return events


async def _next_progress(watch: AsyncIterator[WatchBatch]) -> WatchBatch:
    async with asyncio.timeout(20):
        while True:
            batch = await anext(watch)
            if not batch.events:
                return batch


def _keys(events: list[WatchEvent]) -> list[str]:
    return [e.key for e in events]


async def test_watch_replays_history_from_start_revision(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    rev_a = await etcd_client.put(f"{etcd_prefix}a", b"1")
    await etcd_client.put(f"{etcd_prefix}b", b"2")
    await etcd_client.delete(f"{etcd_prefix}a")
    watch = etcd_client.watch(etcd_prefix, start_revision=rev_a, progress_notify=False)
    try:
        events = await _next_events(watch, 3)
        assert [(e.type, e.key, e.value) for e in events] == [
            (EventType.PUT, f"{etcd_prefix}a", b"1"), (EventType.PUT, f"{etcd_prefix}b", b"2"),
            (EventType.DELETE, f"{etcd_prefix}a", b"")]
        assert [e.mod_revision for e in events] == [rev_a, rev_a + 1, rev_a + 2]
    finally:
        await watch.aclose()


async def test_watch_from_now_skips_the_past(progress_client: EtcdClient) -> None:
    await progress_client.put("n/old", b"1")
    watch = progress_client.watch("n/")
    try:
        await _next_progress(watch)  # the watch is established
        rev = await progress_client.put("n/new", b"2")
        events = await _next_events(watch, 1)
        assert [(e.key, e.mod_revision) for e in events] == [("n/new", rev)]
    finally:
        await watch.aclose()


async def test_watch_is_string_prefix_scoped(progress_client: EtcdClient) -> None:
    watch = progress_client.watch("x/")
    try:
        await _next_progress(watch)
        await progress_client.apply([Put("x0", b"outside"), Put("x", b"outside")])
        await progress_client.put("x/in", b"inside")
        assert _keys(await _next_events(watch, 1)) == ["x/in"]
    finally:
        await watch.aclose()


async def test_progress_notifications_and_clean_cancel(progress_client: EtcdClient, etcd_progress: EtcdServer,
                                                       eventually: Eventually) -> None:
    rev = await progress_client.put("other/key", b"v")
    watch = progress_client.watch("quiet/")
    batch = await _next_progress(watch)
    assert batch.events == [] and batch.revision >= rev
    assert await asyncio.to_thread(_watchers, etcd_progress) == 1
    await watch.aclose()

    async def cancelled() -> bool:
        return await asyncio.to_thread(_watchers, etcd_progress) == 0

    await eventually(cancelled, timeout=10, what="etcd to drop the watcher after aclose()")


async def test_resume_after_sigkill_delivers_each_event_once(progress_client: EtcdClient,
                                                             etcd_progress: EtcdServer) -> None:
    watch = progress_client.watch("w/")
    try:
        await _next_progress(watch)  # the watch exists; no event seen yet
        await progress_client.apply([Put(f"w/{i:02d}", b"before") for i in range(5)])
        seen = await _next_events(watch, 5)
        # The consumer now holds the watch still while etcd crashes and comes back with more data.
        await etcd_progress.kill()
        await etcd_progress.start()
        for i in range(5, 10):
            await etcd_progress.etcdctl_async("put", f"w/{i:02d}", "after")
        seen += await _next_events(watch, 5)
        assert _keys(seen) == [f"w/{i:02d}" for i in range(10)]
        assert [e.value for e in seen] == [b"before"] * 5 + [b"after"] * 5
        revisions = [e.mod_revision for e in seen]
        assert revisions == sorted(revisions)
    finally:
        await watch.aclose()


async def test_resume_before_any_event_starts_after_the_created_revision(
        progress_client: EtcdClient, etcd_progress: EtcdServer) -> None:
    watch = progress_client.watch("w/")
    try:
        await _next_progress(watch)
        await etcd_progress.kill()
        await etcd_progress.start()
        # Written before the watch re-creates itself: a resume "from now" would miss it.
        await etcd_progress.etcdctl_async("put", "w/during", "x")
        assert _keys(await _next_events(watch, 1)) == ["w/during"]
    finally:
        await watch.aclose()


async def test_compaction_during_outage_raises_compacted(progress_client: EtcdClient,
                                                         etcd_progress: EtcdServer) -> None:
    watch = progress_client.watch("w/")
    try:
        await _next_progress(watch)
        await progress_client.put("w/a", b"1")
        await _next_events(watch, 1)
        await etcd_progress.kill()
        await etcd_progress.start()
        await etcd_progress.etcdctl_async("put", "w/b", "2")
        await etcd_progress.etcdctl_async("put", "w/c", "3")
        status = await progress_client.status()
        await progress_client.compact(status.revision)
        with pytest.raises(CompactedError) as info:
            await _next_events(watch, 1)
        assert info.value.compact_revision == status.revision
    finally:
        await watch.aclose()


async def test_resume_on_a_store_restarted_empty_raises_store_reset(progress_client: EtcdClient,
                                                                   etcd_progress: EtcdServer) -> None:
    # An etcd restarted with an empty data dir keeps its cluster ID and would accept the watch at
    # the old revision, then wait for revisions that mean something else on the new store.
    watch = progress_client.watch("w/")
    try:
        await _next_progress(watch)
        for i in range(20):
            await progress_client.put(f"w/{i:02d}", b"old")
        await _next_events(watch, 20)
        await etcd_progress.kill()
        await etcd_progress.restart(wipe=True)
        await etcd_progress.etcdctl_async("put", "w/new", "x")  # the new store: a few revisions
        with pytest.raises(StoreResetError, match="resumes at revision"):
            await _next_events(watch, 1)
    finally:
        await watch.aclose()


async def test_watch_from_compacted_revision(progress_client: EtcdClient) -> None:
    first = await progress_client.put("c/a", b"1")
    last = await progress_client.put("c/a", b"2")
    await progress_client.compact(last)
    watch = progress_client.watch("c/", start_revision=first)
    try:
        with pytest.raises(CompactedError) as info:
            await anext(watch)
        assert info.value.compact_revision == last
    finally:
        await watch.aclose()
    with pytest.raises(CompactedError):
        await progress_client.list_prefix("c/", revision=first)
