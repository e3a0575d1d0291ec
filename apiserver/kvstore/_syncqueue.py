"""The bookkeeping of one sync store: desired state, what etcd holds, and the coalescing work queue.

Pure and synchronous: no I/O, no clock of its own (callers pass ``now``), no logging. Keys are
relative to the store prefix. The I/O side (``syncstore.py``) takes batches out, writes them and
reports back with ``succeeded`` / ``failed``.

Invariants:
- a key is in ``order`` at most once, exactly when it is in ``pending`` and not in ``blocked``;
- a key is never in two batches at once: a queued key whose previous write is still in flight
  waits in ``blocked`` until that write is settled, so per-key order is preserved even with
  several batches in flight;
- what this run knows etcd holds is ``state`` except for the keys in ``unsynced``, which maps each
  key whose etcd value differs from its desired one to the etcd value (None: absent). One dict of
  every key instead of two: after the initial sync ``unsynced`` is nearly empty (10 MB less per
  200k keys). ``written`` is a read-only view of the result; ``uncertain`` holds the keys that may
  be in etcd although ``written`` does not say so (a failed, maybe applied, write; a leftover).

Every step is O(1) per key (bulk set operations where possible): the initial export of 300k+
keys goes through here.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from typing import Any

RETRY_MIN = 0.005
# client-go's workqueue caps at 1000 s; a key that failed for a while (an etcd outage, a value
# etcd refused) would then wait up to 17 minutes after the cause is gone. 30 s bounds that, and
# the worker's own pause already keeps an outage from costing more than a few calls per second.
RETRY_MAX = 30.0


def retry_delay(failures: int) -> float:
    """Per-key exponential back-off: 5 ms, 10 ms, ... capped at ``RETRY_MAX``."""
    return min(RETRY_MIN * 2.0 ** min(failures - 1, 40), RETRY_MAX)


_IN_SYNC: Any = object()  # ``unsynced.get(key, _IN_SYNC)``: etcd holds ``state[key]``


class Written(Mapping[str, bytes]):
    """What etcd holds as far as this run knows: ``state`` overlaid with ``unsynced``."""

    __slots__ = ("_queue",)

    def __init__(self, queue: SyncQueue) -> None:
        self._queue = queue

    def __getitem__(self, key: str) -> bytes:
        unsynced = self._queue.unsynced
        value = unsynced[key] if key in unsynced else self._queue.state[key]
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        unsynced = self._queue.unsynced
        yield from (key for key in self._queue.state if key not in unsynced)
        yield from (key for key, value in unsynced.items() if value is not None)

    def __len__(self) -> int:
        unsynced = self._queue.unsynced
        in_sync = len(self._queue.state) - sum(1 for key in unsynced if key in self._queue.state)
        return in_sync + sum(1 for value in unsynced.values() if value is not None)


class SyncQueue:
    """See the module docstring."""

    def __init__(self) -> None:
        self.state: dict[str, bytes] = {}  # desired: the last value upserted per key
        self.unsynced: dict[str, bytes | None] = {}  # key -> what etcd holds, where not state[key]
        self.written = Written(self)
        self.uncertain: set[str] = set()
        self.pending: set[str] = set()
        self.order: deque[str] = deque()
        self.blocked: list[str] = []
        self.inflight: set[str] = set()
        self.failures: dict[str, int] = {}
        self.retry_due: dict[str, float] = {}
        self._retry_heap: list[tuple[float, str]] = []
        self.marked = False
        self.sync_wait: set[str] = set()  # queued before mark() and not yet settled
        self.stale: set[str] = set()  # leftovers queued for deletion by the stale-key cleanup

    # ------------------------------------------------------------------ producer side

    def _enqueue(self, key: str) -> None:
        if key not in self.pending:
            self.pending.add(key)
            self.order.append(key)

    def upsert(self, key: str, value: bytes) -> bool:
        """Queue ``key`` unless ``value`` is what was last upserted; True if queued."""
        # ``upsert_many`` spelt out for one key: a KVStoreMesh mirror calls this per remote key.
        old = self.state.get(key)
        if old == value:
            return False
        if key not in self.unsynced:
            self.unsynced[key] = old  # it was in sync: etcd holds the previous value
        self.state[key] = value
        self._enqueue(key)
        return True

    def upsert_many(self, items: Iterable[tuple[str, bytes]]) -> int:
        """``upsert`` for each pair (inlined: a list of 100k endpoints comes through here)."""
        state, unsynced, pending, order = self.state, self.unsynced, self.pending, self.order
        queued = 0
        for key, value in items:
            old = state.get(key)
            if old == value:
                continue
            if key not in unsynced:
                unsynced[key] = old  # it was in sync: etcd holds the previous value
            state[key] = value
            queued += 1
            if key not in pending:
                pending.add(key)
                order.append(key)
        return queued

    def delete(self, key: str) -> bool:
        """Queue the deletion of a key upserted before; True if queued."""
        old = self.state.pop(key, None)
        if old is None:
            return False
        if key not in self.unsynced:
            self.unsynced[key] = old
        self._enqueue(key)
        return True

    def mark(self) -> int:
        """The initial listing is complete: remember what must be written before the canary."""
        if not self.marked:
            self.marked = True
            self.sync_wait = self.pending | self.inflight
            self.sync_wait.update(self.retry_due)
        return len(self.sync_wait)

    @property
    def sync_complete(self) -> bool:
        return self.marked and not self.sync_wait

    @property
    def pending_writes(self) -> int:
        return len(self.pending) + len(self.inflight) + len(self.retry_due)

    # ------------------------------------------------------------------ worker side

    def take(self, limit: int) -> tuple[list[str], list[bytes | None]]:
        """Up to ``limit`` keys that need an etcd op, with their value (None = delete). Keys that
        need none are settled on the spot; keys still in flight wait in ``blocked``."""
        order, pending, state, unsynced, inflight = self.order, self.pending, self.state, self.unsynced, self.inflight
        popleft = order.popleft
        keys: list[str] = []
        values: list[bytes | None] = []
        while order and len(keys) < limit:
            taken = [popleft() for _ in range(min(limit - len(keys), len(order)))]
            taken_values: list[bytes | None] = list(map(state.get, taken))
            # The bulk case (an initial sync): new keys, absent from etcd, none in flight, none
            # deleted. Set operations and ``map`` run in C; the per-key loop is for the rest.
            if ((inflight and not inflight.isdisjoint(taken)) or None in taken_values
                    or list(map(unsynced.get, taken, repeat(_IN_SYNC))).count(None) != len(taken)):
                taken, taken_values = self._filter_taken(taken, taken_values)
            else:
                pending.difference_update(taken)
            keys += taken
            values += taken_values
        inflight.update(keys)
        if not pending:
            # A set never shrinks its table: after the initial export this one would keep
            # ~2 MB per 50k keys for the life of the process.
            self.pending = set()
        return keys, values

    def _filter_taken(self, taken: list[str], taken_values: list[bytes | None]
                      ) -> tuple[list[str], list[bytes | None]]:
        pending, unsynced, uncertain, inflight = self.pending, self.unsynced, self.uncertain, self.inflight
        keys: list[str] = []
        values: list[bytes | None] = []
        settled: list[str] = []
        for key, value in zip(taken, taken_values, strict=True):
            if key in inflight:
                self.blocked.append(key)
                continue
            pending.discard(key)
            in_etcd = unsynced.get(key, _IN_SYNC)
            if (in_etcd is _IN_SYNC or in_etcd == value) and key not in uncertain:
                # e.g. A -> B -> A, or upserted then deleted, before anything was written
                unsynced.pop(key, None)
                settled.append(key)
                continue
            keys.append(key)
            values.append(value)
        if settled:
            self._settle(settled)
        return keys, values

    def _settle(self, keys: list[str]) -> None:
        if self.sync_wait:
            # A key queued again meanwhile is not done: its newer value must reach etcd first.
            pending = self.pending
            if pending.isdisjoint(keys):
                self.sync_wait.difference_update(keys)
            else:
                self.sync_wait.difference_update([k for k in keys if k not in pending])
            if not self.sync_wait:
                self.sync_wait = set()  # release its table (see ``take``)
        if self.failures:
            for key in keys:
                if self.failures.pop(key, None) is not None:
                    self.retry_due.pop(key, None)

    def _unblock(self, keys: list[str]) -> None:
        self.inflight.difference_update(keys)
        if self.blocked:
            self.order.extendleft(reversed(self.blocked))
            self.blocked.clear()

    def succeeded(self, keys: list[str], values: list[bytes | None]) -> tuple[list[str], int]:
        """A batch was applied. Returns the deleted keys and how many of them were stale."""
        state, unsynced = self.state, self.unsynced
        deleted = [key for key, value in zip(keys, values, strict=True) if value is None] if None in values else []
        if list(map(state.get, keys)) == values:  # the usual case: nothing changed meanwhile
            for key in keys:
                unsynced.pop(key, None)
        else:
            for key, value in zip(keys, values, strict=True):
                if state.get(key) == value:
                    unsynced.pop(key, None)
                else:
                    unsynced[key] = value  # a newer value (or a delete) is queued
        if not unsynced:
            self.unsynced = {}  # a dict never shrinks its table: release the initial sync's
        if self.uncertain:
            self.uncertain.difference_update(keys)
        stale_deleted = 0
        if self.stale and deleted:
            before = len(self.stale)
            self.stale.difference_update(deleted)
            stale_deleted = before - len(self.stale)
        self._settle(keys)
        self._unblock(keys)
        return deleted, stale_deleted

    def failed(self, keys: list[str], now: float) -> None:
        """A batch failed (it may or may not have been applied): retry each key after its back-off,
        or at once if a newer value was queued meanwhile."""
        self.uncertain.update(keys)
        for key in keys:
            failures = self.failures.get(key, 0) + 1
            self.failures[key] = failures
            if key in self.pending:
                continue
            due = now + retry_delay(failures)
            self.retry_due[key] = due
            heapq.heappush(self._retry_heap, (due, key))
        self._unblock(keys)

    def next_retry(self) -> float | None:
        return self._retry_heap[0][0] if self._retry_heap else None

    def promote(self, now: float) -> None:
        """Queue the keys whose back-off has elapsed."""
        heap, due_of = self._retry_heap, self.retry_due
        while heap and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            if due_of.get(key) == due:  # else superseded by a later failure or a success
                del due_of[key]
                self._enqueue(key)

    def retry_all_now(self) -> None:
        """One last attempt for every key in back-off (used when stopping)."""
        for key in list(self.retry_due):
            del self.retry_due[key]
            self._enqueue(key)

    # ------------------------------------------------------------------ lease loss, leftovers

    def lease_lost(self, keys: Iterable[str], *, hold_sync: bool = False) -> int:
        """These keys vanished with their lease: forget them as written, re-queue the wanted ones.
        ``hold_sync``: the canary vanished too; it is written again only after these keys."""
        requeued: list[str] = []
        for key in keys:
            self.uncertain.discard(key)
            if key in self.state:
                self.unsynced[key] = None
                self._enqueue(key)
                requeued.append(key)
            else:
                self.unsynced.pop(key, None)
        if hold_sync and self.marked:
            self.sync_wait.update(requeued)
        return len(requeued)

    def store_lost(self) -> int:
        """etcd lost everything (a new, empty store): every wanted key is written again, leftovers
        are forgotten, and the sync is complete again only once every wanted key is written."""
        self.unsynced = dict.fromkeys(self.state)
        self.uncertain = set(self.state)  # so that ``take`` writes a key even if a write settles it
        self.stale.clear()
        self.failures.clear()
        self.retry_due.clear()
        self._retry_heap.clear()
        for key in self.state:
            self._enqueue(key)
        for key in list(self.pending):
            if key not in self.state:  # a queued delete: nothing to delete any more
                self.pending.discard(key)
        self.order = deque(k for k in self.order if k in self.pending)
        if self.marked:
            self.sync_wait = set(self.state)
        return len(self.state)

    def refused(self, keys: list[str]) -> None:
        """etcd can never accept these values (too large): not retried until a new value is
        upserted, and they do not hold the sync back. etcd keeps what it had (``unsynced``)."""
        self.uncertain.difference_update(keys)
        for key in keys:
            if key in self.pending:  # a newer value is queued: that one is tried
                continue
            self.failures.pop(key, None)
            self.retry_due.pop(key, None)
        if self.sync_wait:
            self.sync_wait.difference_update(k for k in keys if k not in self.pending)
        self._unblock(keys)

    def rewrite(self, key: str, in_etcd: bytes | None, due: float = 0.0) -> None:
        """Someone else changed a key we want: etcd now holds ``in_etcd`` (None: nothing). Write
        ours again at once, or at ``due`` (> 0) through the retry queue."""
        self.unsynced[key] = in_etcd
        self.uncertain.add(key)
        if due > 0:
            self.retry_due[key] = due
            heapq.heappush(self._retry_heap, (due, key))
        else:
            self._enqueue(key)

    def queue_stale(self, listed: Iterable[str]) -> int:
        """Queue the deletion of every listed key this run neither wants nor wrote."""
        mine = (self.state, self.unsynced, self.pending, self.uncertain, self.inflight)
        stale = [key for key in listed if not any(key in m for m in mine)]
        for key in stale:
            self.uncertain.add(key)  # so that ``take`` issues the delete
            self.stale.add(key)
            self._enqueue(key)
        return len(stale)
