"""``MemoryKV``: an in-memory ``KVBackend`` that behaves like a single etcd 3.4 member, for unit tests.

What it reproduces: one global revision bumped once per effective write (a Txn is one revision,
a delete that deletes nothing is none), create/mod revisions, leases (whole-second TTLs; a lease
expiring deletes its keys in one revision), Txn compares and etcd's Txn rules (at most
``MAX_TXN_OPS`` ops, no key twice, every put's lease must exist, all-or-nothing), prefix watches
with history replay from a start revision, compaction (``CompactedError`` for older watches and
reads), and reads at a past revision.

What it adds for tests: time stands still unless ``advance()`` is called (lease expiry is
deterministic), ``expire_lease()``, ``fail_next()`` fault injection, ``pause()``/``resume()`` to
hold operations in flight (``in_flight`` counts them per method), an ``ops`` counter per method,
``applied`` (size of each ``apply`` call), ``status_errors`` (the alarms ``status()`` reports) and
synchronous inspection helpers (``snapshot``, ``entry``, ``lease_keys``).

It must never be used outside tests: it keeps every event since the last ``compact()``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field, replace

from apiserver.kvstore import (
    MAX_TXN_OPS,
    CompactedError,
    Compare,
    Delete,
    EventType,
    KeyValue,
    KVStoreError,
    LeaseNotFoundError,
    Op,
    Put,
    Status,
    UnavailableError,
    WatchBatch,
    WatchEvent,
)

__all__ = ["MemoryKV"]

_VERSION = "3.4.23"


@dataclass(slots=True)
class _Lease:
    id: int
    ttl: int
    deadline: float
    keys: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Change:
    """One key's change in one revision, with what it replaced (for reads in the past)."""

    event: WatchEvent
    previous: KeyValue | None


@dataclass(slots=True)
class _Fault:
    remaining: int
    exc: Exception
    ops: frozenset[str] | None
    after: bool


def _compare_holds(kv: KeyValue | None, cmp: Compare) -> bool:
    actual: int | bytes
    if cmp.target == "value":
        if kv is None:
            return False  # etcd: a value compare on a missing key never holds
        actual = kv.value
    elif cmp.target == "mod":
        actual = kv.mod_revision if kv else 0
    elif cmp.target == "create":
        actual = kv.create_revision if kv else 0
    elif cmp.target == "lease":
        actual = kv.lease if kv else 0
    else:
        raise KVStoreError(f"unsupported compare target {cmp.target!r}")
    expected = cmp.value
    if isinstance(actual, bytes) != isinstance(expected, bytes):
        raise KVStoreError(f"compare on {cmp.target!r} needs a {type(actual).__name__} value")
    if cmp.result == "=":
        return actual == expected
    if cmp.result == "!=":
        return actual != expected
    if cmp.result == "<":
        return actual < expected  # type: ignore[operator]
    if cmp.result == ">":
        return actual > expected  # type: ignore[operator]
    raise KVStoreError(f"unsupported compare result {cmp.result!r}")


class MemoryKV:
    """A faithful single-member etcd in memory (see the module docstring)."""

    def __init__(self, *, cluster_id: int = 0x1C1057E4, member_id: int = 0x3E3B3E4) -> None:
        self.cluster_id = cluster_id
        self.member_id = member_id
        self._data: dict[str, KeyValue] = {}
        self._rev = 1  # an empty etcd reports revision 1
        self._compact_rev = 0
        self._history: list[_Change] = []
        self._history_revs: list[int] = []
        self._history_dropped = 0  # entries removed by compaction: positions stay absolute
        self._leases: dict[int, _Lease] = {}
        self._lease_ids = itertools.count(0x694D_0000_0001)
        self._now = 0.0
        self._changed = asyncio.Event()
        self._progress = 0
        self._faults: list[_Fault] = []
        self._gate = asyncio.Event()
        self._gate.set()
        self._closed = False
        self.ops: Counter[str] = Counter()
        self.applied: list[int] = []
        self.in_flight: Counter[str] = Counter()  # operations started and not finished, by method
        self.status_errors: list[str] = []  # what ``status()`` reports as etcd's alarms/errors

    # ------------------------------------------------------------------ test controls

    @property
    def revision(self) -> int:
        return self._rev

    @property
    def now(self) -> float:
        """The fake clock that lease deadlines are measured on (starts at 0)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the fake clock; leases whose deadline has passed expire (their keys are deleted)."""
        self._now += seconds
        due = sorted((lease.deadline, lease.id) for lease in self._leases.values()
                     if lease.deadline <= self._now)
        for _, lease_id in due:
            self._drop_lease(lease_id)

    def expire_lease(self, lease_id: int) -> None:
        """Expire a lease now, as if its TTL had run out (its keys are deleted in one revision)."""
        if lease_id not in self._leases:
            raise LeaseNotFoundError(f"lease {lease_id:x} not found")
        self._drop_lease(lease_id)

    def expire_all_leases(self) -> None:
        """What an etcd restart after a long outage looks like to lease holders."""
        for lease_id in list(self._leases):
            self._drop_lease(lease_id)

    def fail_next(self, n: int = 1, exc: Exception | None = None, *, ops: Collection[str] | None = None,
                  after: bool = False) -> None:
        """Make the next ``n`` operations (optionally only those named in ``ops``, e.g. ``{"apply"}``)
        raise ``exc`` (default ``UnavailableError``). With ``after=True`` a write is applied first
        and then reported as failed -- the ambiguous outcome of a timeout."""
        self._faults.append(_Fault(n, exc if exc is not None else UnavailableError("injected fault"),
                                   frozenset(ops) if ops is not None else None, after))

    def pause(self) -> None:
        """Hold every operation that starts from now on until ``resume()``."""
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    def compact(self, revision: int) -> None:
        """Forget history before ``revision``: older watches and reads raise ``CompactedError``."""
        if revision <= self._compact_rev:
            raise CompactedError(self._compact_rev)
        if revision > self._rev:
            raise KVStoreError("mvcc: required revision is a future revision")
        self._compact_rev = revision
        cut = bisect.bisect_left(self._history_revs, revision)
        del self._history[:cut]
        del self._history_revs[:cut]
        self._history_dropped += cut
        self._notify()  # lagging watchers must notice they were compacted away

    def request_progress(self) -> None:
        """Send every watch with ``progress_notify`` an empty batch carrying the current revision."""
        self._progress += 1
        self._notify()

    def snapshot(self, prefix: str = "") -> dict[str, bytes]:
        return {k: kv.value for k, kv in sorted(self._data.items()) if k.startswith(prefix)}

    def entry(self, key: str) -> KeyValue | None:
        return self._data.get(key)

    def lease_keys(self, lease_id: int) -> set[str]:
        lease = self._leases.get(lease_id)
        return set(lease.keys) if lease else set()

    def lease_ids(self) -> list[int]:
        return list(self._leases)

    # ------------------------------------------------------------------ internals

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _take_fault(self, op: str, after: bool) -> Exception | None:
        for fault in self._faults:
            if fault.after == after and (fault.ops is None or op in fault.ops):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault.exc
        return None

    @contextlib.asynccontextmanager
    async def _op(self, name: str) -> AsyncIterator[None]:
        self.ops[name] += 1
        self.in_flight[name] += 1
        try:
            await self._gate.wait()
            await asyncio.sleep(0)  # a real client always yields to the loop
            if self._closed:
                raise UnavailableError("client is closed")
            exc = self._take_fault(name, after=False)
            if exc is not None:
                raise exc
            yield
            exc = self._take_fault(name, after=True)
            if exc is not None:
                raise exc
        finally:
            self.in_flight[name] -= 1

    def _commit(self, changes: Sequence[tuple[str, KeyValue | None]]) -> int:
        """Apply puts (KeyValue) and deletes (None) as one revision; no-op deletes are skipped."""
        effective = [(k, kv) for k, kv in changes if kv is not None or k in self._data]
        if not effective:
            return self._rev
        self._rev += 1
        rev = self._rev
        for key, kv in effective:
            previous = self._data.get(key)
            if previous is not None and previous.lease:
                lease = self._leases.get(previous.lease)
                if lease is not None:
                    lease.keys.discard(key)
            if kv is None:
                del self._data[key]
                event = WatchEvent(EventType.DELETE, key, b"", rev)
            else:
                kv = replace(kv, create_revision=previous.create_revision if previous else rev,
                             mod_revision=rev)
                self._data[key] = kv
                if kv.lease:
                    self._leases[kv.lease].keys.add(key)
                event = WatchEvent(EventType.PUT, key, kv.value, rev)
            self._history.append(_Change(event, previous))
            self._history_revs.append(rev)
        self._notify()
        return rev

    def _drop_lease(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id)
        self._commit([(k, None) for k in sorted(lease.keys)])

    def _check_branch(self, ops: Sequence[Op]) -> None:
        if len(ops) > MAX_TXN_OPS:
            raise KVStoreError("etcdserver: too many operations in txn request")
        # etcd: no key may be put twice, nor put and deleted, in one Txn (deleting twice is fine).
        puts: set[str] = set()
        deleted: set[str] = set()
        prefixes: list[str] = []
        for op in ops:
            if isinstance(op, Put):
                if op.lease and op.lease not in self._leases:
                    raise LeaseNotFoundError("etcdserver: requested lease not found")
                if op.key in puts:
                    raise KVStoreError("etcdserver: duplicate key given in txn request")
                puts.add(op.key)
            elif op.prefix:
                prefixes.append(op.key)
            else:
                deleted.add(op.key)
        if not puts.isdisjoint(deleted) or any(k.startswith(p) for p in prefixes for k in puts):
            raise KVStoreError("etcdserver: duplicate key given in txn request")

    def _changes_of(self, ops: Sequence[Op]) -> list[tuple[str, KeyValue | None]]:
        changes: list[tuple[str, KeyValue | None]] = []
        for op in ops:
            if isinstance(op, Put):
                changes.append((op.key, KeyValue(op.key, op.value, lease=op.lease)))
            elif op.prefix:
                changes.extend((k, None) for k in sorted(self._data) if k.startswith(op.key))
            else:
                changes.append((op.key, None))
        return changes

    def _state_at(self, prefix: str, revision: int) -> dict[str, KeyValue]:
        if revision < self._compact_rev:
            raise CompactedError(self._compact_rev)
        if revision > self._rev:
            raise KVStoreError("mvcc: required revision is a future revision")
        state = {k: kv for k, kv in self._data.items() if k.startswith(prefix)}
        start = bisect.bisect_right(self._history_revs, revision)
        for change in reversed(self._history[start:]):
            key = change.event.key
            if not key.startswith(prefix):
                continue
            if change.previous is None:
                state.pop(key, None)
            else:
                state[key] = change.previous
        return state

    # ------------------------------------------------------------------ KVBackend

    async def get(self, key: str) -> KeyValue | None:
        async with self._op("get"):
            return self._data.get(key)

    async def list_prefix(self, prefix: str, *, revision: int = 0, page_size: int = 0,
                          keys_only: bool = False) -> tuple[list[KeyValue], int]:
        async with self._op("list_prefix"):
            at = revision or self._rev
            state = self._state_at(prefix, at) if revision else {
                k: kv for k, kv in self._data.items() if k.startswith(prefix)}
            kvs = [state[k] for k in sorted(state)]
            if keys_only:
                kvs = [replace(kv, value=b"") for kv in kvs]
            return kvs, at

    async def iter_prefix(self, prefix: str, *, page_size: int,
                          keys_only: bool = False) -> AsyncIterator[tuple[list[KeyValue], int]]:
        kvs, at = await self.list_prefix(prefix, keys_only=keys_only)
        step = page_size if page_size > 0 else max(len(kvs), 1)
        for start in range(0, max(len(kvs), 1), step):
            yield kvs[start:start + step], at

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        async with self._op("put"):
            ops = [Put(key, value, lease)]
            self._check_branch(ops)
            return self._commit(self._changes_of(ops))

    async def delete(self, key: str) -> int:
        async with self._op("delete"):
            existed = key in self._data
            self._commit([(key, None)])
            return int(existed)

    async def delete_prefix(self, prefix: str) -> int:
        async with self._op("delete_prefix"):
            changes = self._changes_of([Delete(prefix, prefix=True)])
            self._commit(changes)
            return len(changes)

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op],
                  failure: Sequence[Op] = ()) -> bool:
        async with self._op("txn"):
            self._check_branch(success)
            self._check_branch(failure)
            held = all(_compare_holds(self._data.get(c.key), c) for c in compares)
            self._commit(self._changes_of(success if held else failure))
            return held

    async def apply(self, ops: Sequence[Op]) -> int:
        async with self._op("apply"):
            self.applied.append(len(ops))
            chunks = [ops[i:i + MAX_TXN_OPS] for i in range(0, len(ops), MAX_TXN_OPS)]
            for chunk in chunks:
                self._check_branch(chunk)
                self._commit(self._changes_of(chunk))
            return self._rev

    async def grant_lease(self, ttl: float) -> int:
        async with self._op("grant_lease"):
            seconds = max(1, math.ceil(ttl))
            lease_id = next(self._lease_ids)
            self._leases[lease_id] = _Lease(lease_id, seconds, self._now + seconds)
            return lease_id

    async def keepalive(self, lease_id: int) -> float:
        async with self._op("keepalive"):
            lease = self._leases.get(lease_id)
            if lease is None:
                raise LeaseNotFoundError(f"lease {lease_id:x} not found")
            lease.deadline = self._now + lease.ttl
            return float(lease.ttl)

    async def revoke_lease(self, lease_id: int) -> None:
        async with self._op("revoke_lease"):
            if lease_id not in self._leases:
                raise LeaseNotFoundError(f"lease {lease_id:x} not found")
            self._drop_lease(lease_id)

    def watch(self, prefix: str, *, start_revision: int = 0,
              progress_notify: bool = True) -> AsyncIterator[WatchBatch]:
        return self._watch(prefix, start_revision, progress_notify)

    async def _watch(self, prefix: str, start_revision: int, progress_notify: bool) -> AsyncIterator[WatchBatch]:
        async with self._op("watch"):
            if start_revision and start_revision < self._compact_rev:
                raise CompactedError(self._compact_rev)
            start = start_revision or self._rev + 1
        # Absolute position in the history of the next event to look at.
        position = self._history_dropped + bisect.bisect_left(self._history_revs, start)
        progress_seen = self._progress
        while True:
            if self._closed:
                raise UnavailableError("client is closed")
            if position < self._history_dropped:
                raise CompactedError(self._compact_rev)
            changed, progress = self._changed, self._progress
            local = position - self._history_dropped
            events = [c.event for c in itertools.islice(self._history, local, None)
                      if c.event.key.startswith(prefix)]
            position = self._history_dropped + len(self._history)
            if events:
                yield WatchBatch(events, self._rev)
            elif progress_notify and progress != progress_seen:
                yield WatchBatch([], self._rev)
            progress_seen = progress
            if changed is self._changed:
                await changed.wait()

    async def status(self) -> Status:
        async with self._op("status"):
            size = sum(len(k) + len(kv.value) for k, kv in self._data.items())
            return Status(cluster_id=self.cluster_id, member_id=self.member_id, version=_VERSION,
                          db_size=size, leader=self.member_id, raft_term=2, revision=self._rev,
                          errors=tuple(self.status_errors))

    async def close(self) -> None:
        self._closed = True
        self._gate.set()
        self._notify()
