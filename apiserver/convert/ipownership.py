"""Who owns an IP-cache key when several Kubernetes objects claim the same IP. Pure.

The "newer main" rule of upstream's ``CachedConverter``: the first object
to produce a key is its *primary* owner and only the primary's value is written; later
claimants queue up (FIFO) as *pending* owners whose latest value is remembered, not written.
When the primary stops producing the key (update or delete) the first pending owner takes
over and its remembered value is written; the key is deleted only when nobody claims it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["IPOwnership"]


class IPOwnership:
    """Turns per-object entry sets into the upserts and deletes the sync store must apply."""

    # Plain dicts rather than one object per key: at 100k+ endpoints per-key objects cost
    # allocations and garbage-collector time, and almost every key has a single owner.
    __slots__ = ("_keys_of", "_pending", "_primary")

    def __init__(self) -> None:
        self._primary: dict[str, str] = {}  # key -> owner whose value is written
        self._pending: dict[str, dict[str, bytes]] = {}  # key -> FIFO of other claimants' values
        # Tuples, not frozensets: an owner has one or two keys, and a tuple of two is a quarter
        # of the memory (this map has one entry per endpoint).
        self._keys_of: dict[str, tuple[str, ...]] = {}  # owner -> keys it produces

    def update(self, owner: str, entries: Mapping[str, bytes]) -> tuple[dict[str, bytes], list[str]]:
        """``owner`` now produces exactly ``entries``; return ``(upserts, deletes)`` to apply.

        ``upserts`` holds the keys ``owner`` is primary for plus keys handed over to a pending
        owner; ``deletes`` the keys no object claims any more.
        """
        primary = self._primary
        if owner not in self._keys_of and type(entries) is dict:
            # A new owner (every endpoint of an initial list): nothing to release, and usually no
            # key claimed by anybody else, so its entries are the upserts as they are.
            contested = [key for key in entries if primary.setdefault(key, owner) != owner]
            if entries:
                self._keys_of[owner] = tuple(entries)
            if not contested:
                return entries, []
            pending = self._pending
            for key in contested:
                pending.setdefault(key, {})[owner] = entries[key]
            return {k: v for k, v in entries.items() if primary[k] == owner}, []
        upserts: dict[str, bytes] = {}
        for key, value in entries.items():
            current = primary.setdefault(key, owner)
            if current == owner:
                upserts[key] = value
            else:
                # Re-assignment keeps the owner's place in the queue (dicts keep first insertion).
                self._pending.setdefault(key, {})[owner] = value
        previous = self._keys_of.get(owner)
        if entries:
            # An update with the same addresses (the usual one) keeps the old tuple: its key
            # strings are the ones every other map holds already, where a new tuple would keep a
            # second copy of each alive (+13 MB once 100k endpoints have changed once).
            if previous is None or len(previous) != len(entries) or not all(k in entries for k in previous):
                self._keys_of[owner] = tuple(entries)
        elif previous is not None:
            del self._keys_of[owner]
        deletes: list[str] = []
        if previous:
            for key in previous:
                if key not in entries:
                    self._release(owner, key, upserts, deletes)
        return upserts, deletes

    def remove(self, owner: str) -> tuple[dict[str, bytes], list[str]]:
        """``owner`` was deleted: hand over or delete every key it claimed."""
        return self.update(owner, {})

    def _release(self, owner: str, key: str, upserts: dict[str, bytes], deletes: list[str]) -> None:
        pending = self._pending.get(key)
        if self._primary[key] != owner:
            if pending is not None:
                pending.pop(owner, None)
                if not pending:
                    del self._pending[key]
            return
        if pending:
            successor = next(iter(pending))
            upserts[key] = pending.pop(successor)
            self._primary[key] = successor
            if not pending:
                del self._pending[key]
        else:
            del self._primary[key]
            deletes.append(key)

    def primary(self, key: str) -> str | None:
        """The owner whose value is written for ``key``, ``None`` if nobody claims it."""
        return self._primary.get(key)

    def claimants(self, key: str) -> list[str]:
        """Primary first, then pending owners in hand-over order."""
        primary = self._primary.get(key)
        return [] if primary is None else [primary, *self._pending.get(key, ())]

    def owners(self) -> int:
        """Number of objects that claim at least one key."""
        return len(self._keys_of)

    def __len__(self) -> int:
        """Number of keys claimed (hence written) right now."""
        return len(self._primary)

    def __contains__(self, key: object) -> bool:
        return key in self._primary
