"""Which watch events on a sync store's keys were someone else's doing (pure: no I/O, no clock).

The sync store records the revision of each of its Txns that put something (``OwnWrites``); a
Txn's puts all carry its revision, so an event at one of those revisions is our own write. Any
other event on a key the store wants is judged against the store's bookkeeping (``judge``):

- a put of the bytes the store wants: nothing to do, whoever wrote it (a second exporter of the
  same cluster writes the same bytes);
- a put of other bytes, or a delete, while the key is queued or waiting for a retry: the write to
  come restores it; the key is marked uncertain so that the write is not skipped;
- the same while a write of the key is in flight: undecidable until that write is settled (its
  revision may be the event's), so the caller asks again afterwards;
- otherwise: foreign, and the store's value must be written back.

Keys the store does not want are never touched here (a put by someone else of a key we do not
know is left to the stale-key cleanup of the next start).

``Strikes`` keeps two writers that disagree about a key (say two exporter versions encoding a
value differently during a rolling update) from rewriting it in a tight loop: a key restored more
than ``FREE_RESTORES`` times within ``WINDOW`` seconds waits 1 s, 2 s, ... up to ``MAX_DELAY``.
"""

from __future__ import annotations

import enum

from apiserver.kvstore._syncqueue import SyncQueue

FREE_RESTORES = 3
MAX_DELAY = 60.0
WINDOW = 300.0
_PRUNE_ABOVE = 4096


class OwnWrites:
    """Revisions of this store's Txns that put something; ``first``: the earliest since ``clear()``.
    Recorded only once ``enabled`` (by a watcher, which also prunes them)."""

    __slots__ = ("_limit", "enabled", "first", "revisions")

    def __init__(self) -> None:
        self.enabled = False
        self.first = 0
        self.revisions: set[int] = set()
        self._limit = _PRUNE_ABOVE

    def record(self, revision: int) -> None:
        if not self.enabled:
            return
        if not self.first or revision < self.first:
            self.first = revision
        self.revisions.add(revision)

    def forget_below(self, revision: int) -> None:
        """A watch past ``revision`` will not ask about older ones (kept small, pruned in bulk)."""
        if len(self.revisions) > self._limit:
            self.revisions = {r for r in self.revisions if r >= revision}
            self._limit = max(_PRUNE_ABOVE, 2 * len(self.revisions))  # amortised O(1) per write

    def clear(self) -> None:
        self.first = 0
        self.revisions = set()


class Verdict(enum.Enum):
    NOTHING = "nothing"  # ours, equal bytes, not our key, or a write is queued anyway
    UNDECIDED = "undecided"  # a write of the key is in flight: ask again once it is settled
    RESTORE = "restore"  # someone else changed it: write our value back


def judge(queue: SyncQueue, own: OwnWrites, key: str, value: bytes | None, revision: int, *,
          value_known: bool = True) -> Verdict:
    """An event on ``key`` (relative to the store prefix): a put of ``value``, or a delete (None).
    ``value_known=False``: a put seen in a keys-only listing, judged by its revision alone."""
    if revision in own.revisions:
        return Verdict.NOTHING
    wanted = queue.state.get(key)
    if wanted is None or (value_known and value == wanted):
        return Verdict.NOTHING
    if key in queue.inflight:
        return Verdict.UNDECIDED
    if key in queue.pending or key in queue.retry_due:
        queue.uncertain.add(key)  # so that ``take`` writes it even if it looks settled
        return Verdict.NOTHING
    return Verdict.RESTORE


def settled(queue: SyncQueue, under: str = "") -> set[str]:
    """The wanted keys (starting with ``under``) whose write is done: etcd holds them unless
    someone removed them."""
    keys = set(queue.state)  # set operations in C: 200k keys in a few ms
    keys -= queue.pending
    keys -= queue.inflight
    keys.difference_update(queue.retry_due)
    return {k for k in keys if k.startswith(under)} if under else keys


class Strikes:
    """How long a key's restore waits (see the module docstring)."""

    __slots__ = ("_limit", "_seen")

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float]] = {}  # key -> (restores in the window, last one)
        self._limit = _PRUNE_ABOVE

    def delay(self, key: str, now: float) -> float:
        count, last = self._seen.get(key, (0, now))
        count = count + 1 if now - last < WINDOW else 1
        self._seen[key] = (count, now)
        if len(self._seen) > self._limit:
            self._seen = {k: v for k, v in self._seen.items() if now - v[1] < WINDOW}
            self._limit = max(_PRUNE_ABOVE, 2 * len(self._seen))
        if count <= FREE_RESTORES:
            return 0.0
        return min(2.0 ** (count - FREE_RESTORES - 1), MAX_DELAY)
