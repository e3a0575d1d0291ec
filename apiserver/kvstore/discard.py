"""``DiscardingBackend``: a ``KVBackend`` that accepts every write and keeps nothing.

It lets a writer (the exporter, with its sync stores) run its whole pipeline to learn what it
*would* write -- each sync store's desired state -- without writing anything anywhere; the drift
verifier compares that with what etcd holds. Reads find nothing, leases never expire, watches
never yield (they end when the backend is closed).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

from apiserver.kvstore._backend import Compare, KeyValue, Op, Status, WatchBatch

__all__ = ["DiscardingBackend"]


class DiscardingBackend:
    """See the module docstring."""

    def __init__(self) -> None:
        self._revision = itertools.count(1)
        self._leases = itertools.count(1)
        self._closed = asyncio.Event()

    async def get(self, key: str) -> KeyValue | None:
        return None

    async def list_prefix(self, prefix: str, *, revision: int = 0, page_size: int = 0,
                          keys_only: bool = False) -> tuple[list[KeyValue], int]:
        return [], next(self._revision)

    async def iter_prefix(self, prefix: str, *, page_size: int,
                          keys_only: bool = False) -> AsyncIterator[tuple[list[KeyValue], int]]:
        yield [], next(self._revision)

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        return next(self._revision)

    async def delete(self, key: str) -> int:
        return 0

    async def delete_prefix(self, prefix: str) -> int:
        return 0

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> bool:
        next(self._revision)
        return True

    async def apply(self, ops: Sequence[Op]) -> int:
        return next(self._revision)

    async def grant_lease(self, ttl: float) -> int:
        return next(self._leases)

    async def keepalive(self, lease_id: int) -> float:
        return 900.0

    async def revoke_lease(self, lease_id: int) -> None:
        return None

    async def watch(self, prefix: str, *, start_revision: int = 0,
                    progress_notify: bool = True) -> AsyncIterator[WatchBatch]:
        await self._closed.wait()
        return
        yield  # an async generator that never yields

    async def status(self) -> Status:
        return Status(cluster_id=1, member_id=1, version="discard", db_size=0, leader=1, raft_term=1,
                      revision=next(self._revision))

    async def close(self) -> None:
        self._closed.set()
