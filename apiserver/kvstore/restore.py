"""Write back what someone else deleted or overwrote under the prefixes the sync stores own.

Upstream's clustermesh-apiserver does not: its sync store (``pkg/kvstore/store/syncstore.go``,
``wqSyncStore``) only writes what its upserts and deletes ask for, so a key removed or changed
behind its back stays so until its value changes, its lease is lost or the process restarts. The
agent's older shared store (``pkg/kvstore/store/store.go``, ``SharedStore``) watches its prefix
and re-creates a local key as soon as it sees it deleted ("Received delete event for local key.
Re-creating the key in the kvstore"), and re-writes every local key every
``--kvstore-periodic-sync`` with ``UpdateIfDifferent``. This module does the former for deletes
and overwrites alike, at once.

One watch per sync store, on its owned prefix, and one on the cluster's canaries
(``cilium/synced/<C>/``). Each starts once its store is synced, so the initial export is not slowed
by decoding its own events. What happened to the keys before is read from a keys-only listing
(paged, as the stale-key cleanup reads): a wanted key absent from it was deleted, one whose
revision is none of our Txns' was overwritten. Replaying the watch from our first write instead
would hold the whole history in memory at once (measured: +190 MB for 200k keys). The watch then
starts after the listing; a watch whose start was compacted away lists again. Our own events are
recognised by revision (``_restore``). The cluster config has its own watch
(``config_enforcer``).

Each restored key is logged by name (the first ``LOG_EACH`` of a watch response; a count for the
rest) and counted in ``kvstore_keys_restored_total``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from apiserver._logging import get_logger
from apiserver.kvstore._backend import CompactedError, EventType, KeyValue, KVBackend, StoreResetError, WatchEvent
from apiserver.kvstore._restore import Verdict
from apiserver.kvstore._supervise import SupervisedTask
from apiserver.kvstore.syncstore import SyncStore
from apiserver.paths import SYNCED_PREFIX, join_key

__all__ = ["CanaryRestorer", "KeyRestorer"]

log = get_logger(__name__)

LOG_EACH = 20
SETTLE_POLL = 0.005  # while a write of a key we have an event about is in flight
# As the stale-key cleanup's: the client doubles later pages up to 64x, and a page of 64k keys
# costs 60 MB at once. Measured for 200k keys: +20 MB, 0.5 CPU-s for the whole listing.
PAGE_SIZE = 256
_PUT = EventType.PUT


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class _PrefixRestorer:
    """The watch loop shared by the key and canary restorers: wait for the store(s) to be synced,
    watch from ``_start_revision()``, judge every event, relist after a compaction."""

    def __init__(self, backend: KVBackend, prefix: str, stores: Sequence[SyncStore], name: str,
                 on_store_reset: Callable[[str], None] | None = None) -> None:
        self._backend = backend
        self._on_store_reset = on_store_reset
        self.prefix = prefix
        self._stores = stores
        self._task = SupervisedTask(name, self._run)
        self.restored = 0

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def restart(self) -> None:
        """The store behind was reset: watch again from the first write to the new one."""
        await self._task.stop()
        self._task.start()

    async def _catch_up(self) -> int:
        """Judge what happened before the watch; the revision to watch from (0: now)."""
        raise NotImplementedError

    async def _relist(self) -> int:
        """Judge every key anew (the watch's history is gone); the revision to watch from."""
        raise NotImplementedError

    def _judge(self, events: Iterable[WatchEvent]) -> list[WatchEvent]:
        """Act on ``events``; return those that cannot be judged yet (a write of ours in flight)."""
        raise NotImplementedError

    def _undecided(self, event: WatchEvent) -> bool:
        raise NotImplementedError

    async def _run(self) -> None:
        await asyncio.gather(*(s.synced.wait() for s in self._stores))
        start = await self._catch_up()
        while True:
            watch = self._backend.watch(self.prefix, start_revision=start, progress_notify=False)
            try:
                async for batch in watch:
                    await self._settle(batch.events)
                    self._watched_past(batch.events[-1].mod_revision if batch.events else 0)
            except (CompactedError, StoreResetError) as exc:
                # The watch's history is gone (compacted, or the store was reset: the owner's reset
                # path, told here, writes everything again and restarts this restorer).
                log.info("Watch of our own keys cannot resume; comparing every key instead",
                         prefix=self.prefix, error=str(exc))
                if isinstance(exc, StoreResetError) and self._on_store_reset is not None:
                    self._on_store_reset(str(exc))
                start = await self._relist()
            finally:
                await _aclose(watch)

    def _watched_past(self, revision: int) -> None:
        for store in self._stores:
            store.own_writes.forget_below(revision)

    async def _settle(self, events: Iterable[WatchEvent]) -> None:
        undecided = self._judge(events)
        while undecided:
            # A Txn settles within milliseconds (at most its timeout); nothing signals one key's.
            while any(self._undecided(ev) for ev in undecided):  # noqa: ASYNC110
                await asyncio.sleep(SETTLE_POLL)
            undecided = self._judge(undecided)



class KeyRestorer(_PrefixRestorer):
    """Keeps the keys of one sync store under its owned prefix (see the module docstring)."""

    def __init__(self, backend: KVBackend, store: SyncStore,
                 on_store_reset: Callable[[str], None] | None = None) -> None:
        super().__init__(backend, store.owned_prefix, [store], f"key-restorer:{store.owned_prefix}",
                         on_store_reset)
        self._store = store
        store.own_writes.enabled = True
        self._base = store.prefix + "/"

    async def _catch_up(self) -> int:
        return await self._relist()

    async def _relist(self) -> int:
        store, cut = self._store, len(self._base)
        # Taken before the listing's revision is fixed: each of these is in it unless removed.
        expected = store.settled_keys(self.prefix[cut:])
        own = store.own_writes.revisions
        revision = 0
        pages = self._backend.iter_prefix(self.prefix, page_size=PAGE_SIZE, keys_only=True)
        try:
            async for page, at in pages:
                revision = at
                overwritten = []
                for kv in page:
                    key = kv.key[cut:]
                    expected.discard(key)
                    if kv.mod_revision not in own:
                        overwritten.append(kv)
                # A put at a revision none of ours had: another writer's (its value unread).
                await self._settle_listed(overwritten)
        finally:
            await _aclose(pages)
        await self._settle([WatchEvent(EventType.DELETE, self._base + key, b"", 0) for key in expected])
        return revision + 1 if revision else 0

    async def _settle_listed(self, kvs: Sequence[KeyValue]) -> None:
        store, cut = self._store, len(self._base)
        undecided = [WatchEvent(_PUT, kv.key, b"", kv.mod_revision) for kv in kvs
                     if store.judge(kv.key[cut:], None, kv.mod_revision, value_known=False) is not Verdict.NOTHING]
        await self._settle(undecided)

    def _undecided(self, event: WatchEvent) -> bool:
        return self._store.in_flight(event.key[len(self._base):])

    def _judge(self, events: Iterable[WatchEvent]) -> list[WatchEvent]:
        store, cut = self._store, len(self._base)
        events = list(events)
        own = store.own_writes.revisions
        if all(ev.mod_revision in own for ev in events):
            return []  # the replay of our own writes: nearly every response
        undecided: list[WatchEvent] = []
        restored = 0
        judge = store.judge
        for ev in events:
            value = ev.value if ev.type is _PUT else None
            # A put listed without its value (``_relist``) carries b"": never a value of ours.
            verdict = judge(ev.key[cut:], value, ev.mod_revision, value_known=value != b"")
            if verdict is Verdict.NOTHING:
                continue
            if verdict is Verdict.UNDECIDED:
                undecided.append(ev)
                continue
            delay = store.restore(ev.key[cut:], value)
            restored += 1
            if restored <= LOG_EACH:
                log.warning("Key deleted or overwritten by someone else; writing ours back", key=ev.key,
                            event="delete" if value is None else "put", revision=ev.mod_revision,
                            **({"delay": delay} if delay else {}))
        if restored > LOG_EACH:
            log.warning("More keys deleted or overwritten by someone else; writing ours back",
                        prefix=self.prefix, more=restored - LOG_EACH)
        self.restored += restored
        return undecided



class CanaryRestorer(_PrefixRestorer):
    """Keeps every store's canary ``cilium/synced/<C>/...`` once it is written."""

    def __init__(self, backend: KVBackend, cluster_name: str, stores: Sequence[SyncStore],
                 on_store_reset: Callable[[str], None] | None = None) -> None:
        prefix = join_key(SYNCED_PREFIX, cluster_name) + "/"
        super().__init__(backend, prefix, stores, f"canary-restorer:{prefix}", on_store_reset)
        self._by_key = {s.canary_key: s for s in stores}

    async def _catch_up(self) -> int:
        # One write per canary so far: replaying them costs nothing.
        return min(s.canary_revision for s in self._stores)

    async def _relist(self) -> int:
        kvs, revision = await self._backend.list_prefix(self.prefix)
        listed = {kv.key for kv in kvs}
        await self._settle([WatchEvent(_PUT, kv.key, kv.value, kv.mod_revision) for kv in kvs])
        # Past every canary write of ours, so that a missing canary is not read as "superseded".
        after = max(s.canary_revision for s in self._stores) + 1
        await self._settle([WatchEvent(EventType.DELETE, key, b"", after) for key in self._by_key
                            if key not in listed])
        return revision + 1
    def _undecided(self, event: WatchEvent) -> bool:
        store = self._by_key.get(event.key)
        return store is not None and store.judge_canary(event.mod_revision) is Verdict.UNDECIDED

    def _judge(self, events: Iterable[WatchEvent]) -> list[WatchEvent]:
        undecided: list[WatchEvent] = []
        for ev in events:
            store = self._by_key.get(ev.key)
            if store is None:
                continue
            verdict = store.judge_canary(ev.mod_revision)
            if verdict is Verdict.UNDECIDED:
                undecided.append(ev)
            elif verdict is Verdict.RESTORE:
                log.warning("Sync canary deleted or overwritten by someone else; writing it back", key=ev.key,
                            event=ev.type.value, revision=ev.mod_revision)
                store.restore_canary()
                self.restored += 1
        return undecided

    def _watched_past(self, revision: int) -> None:
        pass  # canary revisions are one per store, nothing to prune
