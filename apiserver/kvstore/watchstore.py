"""Restartable list+watch of one prefix of a (remote) kvstore, with stale-key detection.

A ``WatchStore`` mirrors the keys under one prefix into an observer (``on_upsert`` /
``on_delete``, keys relative to the prefix). ``watch()`` may be called again after it returned
(typically on a new connection to the same remote cluster): every known key is then marked
stale, the prefix is listed again, and exactly the keys that disappeared meanwhile are reported
as deleted before any new watch event is applied. The same relist happens inside one ``watch()``
call when the backend reports ``CompactedError`` (the resume point was compacted away).

Ordering guarantee: the list is taken at revision R and the watch starts at R+1; the backend
resumes broken streams from the last *event* revision + 1, so no event is skipped or applied
twice. The store never parses values: they are passed on byte for byte.

It must never write to the kvstore it reads from; errors that require a new connection
(``ClusterIDChangedError``, ``UnavailableError``, ...) propagate to the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from apiserver._logging import get_logger
from apiserver.kvstore._backend import CompactedError, EventType, KeyValue, KVBackend, UnavailableError
from apiserver.metrics import Metrics, kvstore_scope

log = get_logger(__name__)


class WatchStoreObserver(Protocol):
    """Receives the mirrored state; keys are relative to the watched prefix."""

    def on_upsert(self, key: str, value: bytes) -> None: ...

    def on_upsert_many(self, items: dict[str, bytes]) -> None:
        """``on_upsert`` of each pair: the changed keys of one listed page, in one call."""
        ...

    def on_delete(self, key: str) -> None: ...


class WatchStoreBusyError(RuntimeError):
    """``watch()`` or ``drain()`` was called while a watch is still running."""


def _with_slash(prefix: str) -> str:
    # The trailing "/" keeps sibling prefixes apart: watching ".../cluster1/" must not
    # return the keys of ".../cluster10/".
    return prefix if prefix.endswith("/") else prefix + "/"


async def _close(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class WatchStore:
    """Mirror of one kvstore prefix; see the module docstring for the guarantees."""

    def __init__(self, observer: WatchStoreObserver, *, source_cluster: str = "",
                 on_sync: Callable[[], None] | None = None, metrics: Metrics | None = None,
                 page_size: int = 0, resource: str = "") -> None:
        self._observer = observer
        self._source = source_cluster
        self._on_sync = on_sync
        self._metrics = metrics
        self._page_size = page_size
        self._resource = resource
        self._state: dict[str, bytes] = {}
        self._stale: set[str] = set()
        self._watching = False
        self._synced = False
        self._first_sync_done = False

    @property
    def synced(self) -> bool:
        """True while the initial list is complete and events are being watched."""
        return self._synced

    @property
    def num_entries(self) -> int:
        return len(self._state)

    def entries(self) -> dict[str, bytes]:
        """A copy of the mirrored state (relative key -> value)."""
        return dict(self._state)

    async def watch(self, backend: KVBackend, prefix: str) -> None:
        """List then watch ``prefix`` on ``backend`` until cancelled or a connection-level error."""
        if self._watching:
            raise WatchStoreBusyError(f"watch store for {prefix!r} is already running")
        prefix = _with_slash(prefix)
        self._watching = True
        self._set_sync_metric(prefix, False)
        log.info("Starting watch store", prefix=prefix, cluster=self._source)
        try:
            while True:
                revision = await self._relist(backend, prefix)
                try:
                    await self._follow(backend, prefix, revision)
                except CompactedError as exc:
                    # The resume point is gone: the only safe way forward is a full relist,
                    # which also reports the keys deleted during the gap.
                    log.warning("Watch revision compacted, relisting", prefix=prefix,
                                cluster=self._source, compact_revision=exc.compact_revision)
        finally:
            self._watching = False
            self._synced = False
            self._set_sync_metric(prefix, False)
            log.info("Stopped watch store", prefix=prefix, cluster=self._source)

    def drain(self) -> None:
        """Report every known key as deleted (only while no watch is running)."""
        if self._watching:
            raise WatchStoreBusyError("cannot drain a watch store while it is watching")
        for key in list(self._state):
            self._delete(key)

    async def _relist(self, backend: KVBackend, prefix: str) -> int:
        self._stale = set(self._state)
        revision = 0
        # Page by page (all at one revision): the observer gets the first keys while later pages
        # are still being fetched, and the whole listing is never held at once.
        pages = backend.iter_prefix(prefix, page_size=self._page_size)
        try:
            async for kvs, page_revision in pages:
                revision = page_revision
                self._upsert_page(prefix, kvs)
        finally:
            await _close(pages)
        stale, self._stale = self._stale, set()
        for key in sorted(stale):
            log.debug("Deleting stale key", key=key, prefix=prefix, cluster=self._source)
            self._delete(key)
        self._synced = True
        self._set_sync_metric(prefix, True)
        if not self._first_sync_done:
            self._first_sync_done = True
            log.info("Initial list completed", prefix=prefix, cluster=self._source, entries=len(self._state))
            if self._on_sync is not None:
                self._on_sync()
        return revision

    async def _follow(self, backend: KVBackend, prefix: str, revision: int) -> None:
        iterator = backend.watch(prefix, start_revision=revision + 1)
        try:
            async for batch in iterator:
                for event in batch.events:
                    if event.type is EventType.PUT:
                        self._upsert(prefix, event.key, event.value)
                    else:
                        self._delete_full(prefix, event.key)
        finally:
            await _close(iterator)
        # A watch that ends by itself lost its stream for good: the caller must reconnect.
        raise UnavailableError(f"watch on {prefix!r} ended unexpectedly")

    def _relative(self, prefix: str, key: str) -> str | None:
        if not key.startswith(prefix):
            return None
        relative = key[len(prefix):]
        return relative or None

    def _upsert(self, prefix: str, key: str, value: bytes) -> None:
        relative = self._relative(prefix, key)
        if relative is None:
            log.warning("Ignoring key outside of the watched prefix", key=key, prefix=prefix,
                        cluster=self._source)
            if self._metrics is not None:
                self._metrics.malformed_objects_total.labels(self._resource or prefix, "invalid-key").inc()
            return
        self._stale.discard(relative)
        if self._state.get(relative) == value:
            return
        self._state[relative] = value
        self._observer.on_upsert(relative, value)

    def _upsert_page(self, prefix: str, kvs: Sequence[KeyValue]) -> None:
        """``_upsert`` of every key of a listed page, with one observer call for the page: a
        KVStoreMesh mirror lists 200k+ keys, and one call per key through the observer into the
        sync store cost 1.30 instead of 1.07 us per key. Keys of a page are distinct, so order
        does not matter."""
        start, state, stale = len(prefix), self._state, self._stale
        changed: dict[str, bytes] = {}
        for kv in kvs:
            key, value = kv.key, kv.value
            if len(key) <= start or not key.startswith(prefix):
                self._upsert(prefix, key, value)  # logged and counted there
                continue
            relative = key[start:]
            if stale:
                stale.discard(relative)
            if state.get(relative) != value:
                changed[relative] = value
        if changed:
            state.update(changed)
            self._observer.on_upsert_many(changed)

    def _delete_full(self, prefix: str, key: str) -> None:
        relative = self._relative(prefix, key)
        if relative is not None and relative in self._state:
            self._delete(relative)

    def _delete(self, relative: str) -> None:
        del self._state[relative]
        self._stale.discard(relative)
        self._observer.on_delete(relative)

    def _set_sync_metric(self, prefix: str, value: bool) -> None:
        if self._metrics is not None:
            self._metrics.kvstore_initial_sync_completed.labels(
                kvstore_scope(prefix), self._source, "read").set(1.0 if value else 0.0)
