"""Who owns an IP-cache key when several Kubernetes objects claim the same IP. Pure.

The "newer main" rule of upstream's ``CachedConverter`` (spec section 1.4): the first object
to produce a key is its *primary* owner and only the primary's value is written; later
claimants queue up (FIFO) as *pending* owners whose latest value is remembered, not written.
When the primary stops producing the key (update or delete) the first pending owner takes
over and its remembered value is written; the key is deleted only when nobody claims it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["IPOwnership"]


class _Claim:
    """Owners of one key: the primary plus pending owners in arrival order with their values."""

    __slots__ = ("pending", "primary")

    def __init__(self, primary: str) -> None:
        self.primary = primary
        self.pending: dict[str, bytes] = {}  # insertion-ordered: the FIFO queue


class IPOwnership:
    """Turns per-object entry sets into the upserts and deletes the sync store must apply."""

    __slots__ = ("_claims", "_keys_of")

    def __init__(self) -> None:
        self._claims: dict[str, _Claim] = {}
        self._keys_of: dict[str, frozenset[str]] = {}

    def update(self, owner: str, entries: Mapping[str, bytes]) -> tuple[dict[str, bytes], list[str]]:
        """``owner`` now produces exactly ``entries``; return ``(upserts, deletes)`` to apply.

        ``upserts`` holds the keys ``owner`` is primary for plus keys handed over to a pending
        owner; ``deletes`` the keys no object claims any more.
        """
        upserts: dict[str, bytes] = {}
        claims = self._claims
        for key, value in entries.items():
            claim = claims.get(key)
            if claim is None:
                claims[key] = _Claim(owner)
                upserts[key] = value
            elif claim.primary == owner:
                upserts[key] = value
            else:
                # Re-assignment keeps the owner's place in the queue (dicts keep first insertion).
                claim.pending[owner] = value
        previous = self._keys_of.get(owner, frozenset())
        if entries:
            self._keys_of[owner] = frozenset(entries)
        else:
            self._keys_of.pop(owner, None)
        deletes: list[str] = []
        for key in previous.difference(entries):
            self._release(owner, key, upserts, deletes)
        return upserts, deletes

    def remove(self, owner: str) -> tuple[dict[str, bytes], list[str]]:
        """``owner`` was deleted: hand over or delete every key it claimed."""
        return self.update(owner, {})

    def _release(self, owner: str, key: str, upserts: dict[str, bytes], deletes: list[str]) -> None:
        claim = self._claims[key]
        if claim.primary != owner:
            claim.pending.pop(owner, None)
            return
        if claim.pending:
            successor = next(iter(claim.pending))
            upserts[key] = claim.pending.pop(successor)
            claim.primary = successor
        else:
            del self._claims[key]
            deletes.append(key)

    def primary(self, key: str) -> str | None:
        """The owner whose value is written for ``key``, ``None`` if nobody claims it."""
        claim = self._claims.get(key)
        return None if claim is None else claim.primary

    def claimants(self, key: str) -> list[str]:
        """Primary first, then pending owners in hand-over order."""
        claim = self._claims.get(key)
        return [] if claim is None else [claim.primary, *claim.pending]

    def owners(self) -> int:
        """Number of objects that claim at least one key."""
        return len(self._keys_of)

    def __len__(self) -> int:
        """Number of keys claimed (hence written) right now."""
        return len(self._claims)

    def __contains__(self, key: object) -> bool:
        return key in self._claims
