"""The emulator's storage: objects, one global resourceVersion counter, per-resource event history.

Like etcd under kube-apiserver, the store knows nothing of Kubernetes semantics (validation, conflicts,
finalizers live in ``_api``). It keeps, per resource type:

* the current objects, serialized once (``Stored.raw``) so lists and watch fan-out only join bytes;
* a sorted key list for paging (rebuilt lazily after bulk loads);
* a bounded event history: watches resume from it, and list pages reconstruct the snapshot a
  ``continue`` token refers to by undoing the events that came after it. Older versions are "compacted":
  asking for them is a 410.

All methods are synchronous and run on the event loop thread, so a write and its fan-out to watchers
are atomic with respect to every request.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._selectors import FieldSelector, LabelSelector
from localmesh.kubesim._watch import ADDED, DELETED, MODIFIED, Key, Stored, Watcher, encode_event

# Keep the sorted key list up to date with insort only while reads are frequent; during a bulk load
# it is cheaper to re-sort once on the next read.
_INSORT_BUDGET = 512


@dataclass(slots=True)
class Event:
    rv: int
    type: str
    obj: Stored
    prev: Stored | None


class Bucket:
    """Everything stored for one resource type."""

    __slots__ = ("_keys", "_writes_since_read", "evicted_rv", "log", "objects", "rt", "watchers")

    def __init__(self, rt: ResourceType, history: int) -> None:
        self.rt = rt
        self.objects: dict[Key, Stored] = {}
        self._keys: list[Key] | None = []
        self._writes_since_read = 0
        self.log: deque[Event] = deque(maxlen=history)
        self.evicted_rv = 0  # every event with rv <= this is gone from the history
        self.watchers: set[Watcher] = set()

    def sorted_keys(self) -> list[Key]:
        self._writes_since_read = 0
        if self._keys is None:
            self._keys = sorted(self.objects)
        return self._keys

    def _key_added(self, key: Key) -> None:
        keys = self._keys
        if keys is None:
            return
        if not keys or key > keys[-1]:
            keys.append(key)
        elif self._writes_since_read < _INSORT_BUDGET:
            bisect.insort(keys, key)
        else:
            self._keys = None
        self._writes_since_read += 1

    def _key_removed(self, key: Key) -> None:
        keys = self._keys
        if keys is None:
            return
        if self._writes_since_read < _INSORT_BUDGET:
            i = bisect.bisect_left(keys, key)
            del keys[i]
        else:
            self._keys = None
        self._writes_since_read += 1

    def record(self, event: Event) -> None:
        log = self.log
        if log.maxlen is not None and len(log) == log.maxlen:
            self.evicted_rv = log[0].rv if log.maxlen else event.rv
        log.append(event)

    def oldest_valid_rv(self) -> int:
        """The smallest resourceVersion a watch or snapshot can still start from."""
        return self.evicted_rv

    def overlay(self, rv: int) -> dict[Key, Stored | None]:
        """How to turn current state into the state at ``rv``: key -> old state (None = absent)."""
        out: dict[Key, Stored | None] = {}
        for ev in reversed(self.log):
            if ev.rv <= rv:
                break
            # Walking backwards, the last assignment is the earliest event after rv: the one that
            # tells what the key looked like at rv.
            out[ev.obj.key] = None if ev.type == ADDED else ev.prev
        return out


@dataclass(slots=True)
class Page:
    items: list[Stored]
    last_key: Key | None  # set when more candidates follow
    remaining: int | None  # exact count of what follows, when cheaply known


def _serialize(obj: dict[str, Any]) -> bytes:
    # orjson's result keeps its whole write buffer (4 KiB or more) allocated; stored objects live
    # long, so keep an exact-size copy (a tenth of the memory for a typical object).
    return bytes(memoryview(orjson.dumps(obj)))


def _labels(obj: dict[str, Any]) -> dict[str, str] | None:
    labels = obj["metadata"].get("labels")
    return labels if labels else None


class Store:
    def __init__(self, history: int = 10000) -> None:
        if history < 0:
            raise ValueError("history must be >= 0")
        self.history = history
        self._rv = 0
        # Keyed by URL identity, not by the ResourceType row: a CRD update that re-registers a type
        # (new columns, say) must keep its objects.
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        self._rv_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._subscribed = asyncio.Event()
        # Called with every committed event, after the watchers (in-process controllers). A listener
        # must not write to the store: it only takes note and acts later.
        self.listeners: list[Callable[[ResourceType, Event], None]] = []

    @property
    def resource_version(self) -> int:
        return self._rv

    def bucket(self, rt: ResourceType) -> Bucket:
        b = self._buckets.get((rt.group, rt.version, rt.plural))
        if b is None:
            b = self._buckets[(rt.group, rt.version, rt.plural)] = Bucket(rt, self.history)
        return b

    def buckets(self) -> list[Bucket]:
        return list(self._buckets.values())

    def get(self, rt: ResourceType, key: Key) -> Stored | None:
        b = self._buckets.get((rt.group, rt.version, rt.plural))
        return b.objects.get(key) if b is not None else None

    # -- writes ------------------------------------------------------------------------------------

    def write(self, rt: ResourceType, obj: dict[str, Any]) -> Stored:
        """Create or replace ``obj`` (already validated and stamped): assigns the next resourceVersion."""
        b = self.bucket(rt)
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"]) if rt.namespaced else ("", meta["name"])
        prev = b.objects.get(key)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        stored = Stored(_serialize(obj), self._rv, key, _labels(obj))
        b.objects[key] = stored
        if prev is None:
            b._key_added(key)
        self._commit(b, Event(self._rv, MODIFIED if prev else ADDED, stored, prev))
        return stored

    def remove(self, rt: ResourceType, key: Key) -> Stored | None:
        """Delete ``key``; the DELETED event carries the last state stamped with the delete's version."""
        b = self.bucket(rt)
        prev = b.objects.pop(key, None)
        if prev is None:
            return None
        b._key_removed(key)
        self._rv += 1
        obj = orjson.loads(prev.raw)
        obj["metadata"]["resourceVersion"] = str(self._rv)
        stored = Stored(_serialize(obj), self._rv, key, prev.labels)
        self._commit(b, Event(self._rv, DELETED, stored, prev))
        return stored

    def _commit(self, b: Bucket, event: Event) -> None:
        b.record(event)
        if b.watchers:
            line = encode_event(event.type, event.obj)
            for w in tuple(b.watchers):
                w.offer(event.type, event.obj, event.prev, line)
                if w.closed:
                    b.watchers.discard(w)
        if self._rv_waiters:
            self._wake_rv_waiters()
        for listener in self.listeners:
            listener(b.rt, event)

    def compact(self) -> None:
        """Forget all history, as an etcd compaction does: older versions now answer 410."""
        for b in self._buckets.values():
            b.log.clear()
            b.evicted_rv = self._rv

    # -- reads -------------------------------------------------------------------------------------

    def keys_in(self, b: Bucket, namespace: str | None) -> tuple[list[Key], int, int]:
        keys = b.sorted_keys()
        if not namespace:
            return keys, 0, len(keys)
        # (ns + "\0", "") sorts right after every (ns, name).
        return keys, bisect.bisect_left(keys, (namespace, "")), bisect.bisect_left(keys, (namespace + "\0", ""))

    def page(self, rt: ResourceType, snapshot_rv: int, *, namespace: str | None = None,
             after: Key | None = None, limit: int = 0, labels: LabelSelector | None = None,
             fields: FieldSelector | None = None) -> Page:
        """Objects as of ``snapshot_rv`` (must be >= ``oldest_valid_rv``), in key order, after ``after``."""
        b = self.bucket(rt)
        keys, lo, hi = self.keys_in(b, namespace)
        if after is not None:
            lo = max(lo, bisect.bisect_right(keys, after))
        name = fields.exact_name() if fields is not None else None
        if name is not None and (namespace or not rt.namespaced):
            # metadata.name=x in one namespace: at most one key (kubectl get NAME --watch lists this way).
            at = bisect.bisect_left(keys, (namespace or "", name), lo, hi)
            lo, hi = at, min(hi, at + 1)
        overlay = b.overlay(snapshot_rv) if b.log and b.log[-1].rv > snapshot_rv else {}
        filtered = (labels is not None and not labels.empty) or (fields is not None and not fields.empty)
        objects = b.objects
        if not overlay and not filtered:
            end = hi if limit <= 0 else min(hi, lo + limit)
            more = end < hi
            return Page([objects[k] for k in keys[lo:end]], keys[end - 1] if more else None,
                        hi - end if more else None)
        # Keys that exist in the snapshot but no longer now (deleted since) must be merged in.
        gone = sorted(k for k, v in overlay.items() if v is not None and k not in objects
                      and (after is None or k > after) and (not namespace or k[0] == namespace))
        items: list[Stored] = []
        i, j = lo, 0
        last: Key | None = None
        while i < hi or j < len(gone):
            if limit > 0 and len(items) >= limit:
                return Page(items, last, None)
            if j < len(gone) and (i >= hi or gone[j] < keys[i]):
                key = gone[j]
                j += 1
            else:
                key = keys[i]
                i += 1
            last = key
            state = overlay[key] if key in overlay else objects[key]
            if state is None:
                continue
            if fields is not None and not fields.matches(key[0], key[1]):
                continue
            if fields is not None and fields.on_object and not fields.matches_object(orjson.loads(state.raw)):
                continue
            if labels is not None and not labels.matches(state.labels):
                continue
            items.append(state)
        return Page(items, None, None)

    def iter_current(self, rt: ResourceType, namespace: str | None = None) -> Iterator[Stored]:
        b = self.bucket(rt)
        keys, lo, hi = self.keys_in(b, namespace)
        objects = b.objects
        for k in keys[lo:hi]:
            yield objects[k]

    # -- watches -----------------------------------------------------------------------------------

    def subscribe(self, rt: ResourceType, watcher: Watcher, since: int | None) -> None:
        """Register ``watcher``: synthetic ADDED for current state (``since`` None) or replay after since.

        The caller checks ``since`` against ``oldest_valid_rv`` first. Registration and replay happen
        in one synchronous step, so no event can fall between them.
        """
        b = self.bucket(rt)
        if since is None:
            for obj in self.iter_current(rt, watcher.namespace):
                watcher.offer(ADDED, obj, None)
        else:
            for ev in self._events_after(b, since):
                watcher.offer(ev.type, ev.obj, ev.prev)
        b.watchers.add(watcher)
        self._subscribed.set()

    def unsubscribe(self, rt: ResourceType, watcher: Watcher) -> None:
        self.bucket(rt).watchers.discard(watcher)

    @staticmethod
    def _events_after(b: Bucket, rv: int) -> list[Event]:
        out: list[Event] = []
        for ev in reversed(b.log):
            if ev.rv <= rv:
                break
            out.append(ev)
        out.reverse()
        return out

    def watchers(self) -> list[Watcher]:
        return [w for b in self._buckets.values() for w in b.watchers]

    async def wait_for_watchers(self, rt: ResourceType, count: int) -> None:
        """Wait until ``count`` watches are open on ``rt`` (the caller bounds the wait)."""
        b = self.bucket(rt)
        while len(b.watchers) < count:
            self._subscribed.clear()
            await self._subscribed.wait()

    async def wait_for_rv(self, rv: int, within: float) -> bool:
        """Wait until the store reached ``rv`` (a client ahead of us, e.g. after a restart)."""
        if self._rv >= rv:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (rv, fut)
        self._rv_waiters.append(entry)
        try:
            async with asyncio.timeout(within):
                await fut
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._rv_waiters:
                self._rv_waiters.remove(entry)

    def _wake_rv_waiters(self) -> None:
        for target, fut in self._rv_waiters:
            if target <= self._rv and not fut.done():
                fut.set_result(None)
