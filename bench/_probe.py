"""Watches an etcd prefix and records when each numbered change first became visible.

A change is numbered by its value: ``<marker><seq>"`` somewhere in the bytes (the churn writes
``"K8sServiceAccount":"churn-<seq>"``). The probe starts at the revision current when it is
created, so no change made after ``start()`` returns can be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection

from apiserver.kvstore import EventType
from apiserver.kvstore.etcd import EtcdClient

Change = tuple[str, int]  # (key, seq)
_POLL = 0.02


class VisibilityProbe:
    def __init__(self, client: EtcdClient, prefix: str, marker: bytes) -> None:
        self._client = client
        self._prefix = prefix
        self._marker = marker
        self.seen: dict[Change, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        revision = (await self._client.status()).revision
        self._task = asyncio.create_task(self._watch(revision + 1), name=f"probe:{self._prefix}")

    async def _watch(self, start_revision: int) -> None:
        marker, skip = self._marker, len(self._marker)
        watch = self._client.watch(self._prefix, start_revision=start_revision, progress_notify=False)
        try:
            async for batch in watch:
                now = time.monotonic()
                for event in batch.events:
                    if event.type is not EventType.PUT:
                        continue
                    at = event.value.find(marker)
                    if at < 0:
                        continue
                    end = event.value.index(b'"', at + skip)
                    self.seen.setdefault((event.key, int(event.value[at + skip:end])), now)
        finally:
            await watch.aclose()

    async def wait_for(self, changes: Collection[Change], timeout: float) -> bool:
        """True once every change was seen; False if ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pending = [c for c in changes if c not in self.seen]
        while pending:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(_POLL)
            pending = [c for c in pending if c not in self.seen]
        return True

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def last_changes(changes: Collection[Change]) -> list[Change]:
    """The latest change of every key: once those are visible, every change is."""
    last: dict[str, int] = {}
    for key, seq in changes:
        if seq > last.get(key, -1):
            last[key] = seq
    return list(last.items())


def visible_times(changes: Collection[Change], seen: dict[Change, float]) -> dict[Change, float]:
    """When each change became visible: when it, or a later change of the same key that replaced it
    before it was written (writers coalesce), was first seen. Changes never covered are left out."""
    by_key: dict[str, list[int]] = {}
    for key, seq in changes:
        by_key.setdefault(key, []).append(seq)
    out: dict[Change, float] = {}
    for key, seqs in by_key.items():
        earliest = float("inf")
        for seq in sorted(seqs, reverse=True):
            at = seen.get((key, seq))
            if at is not None and at < earliest:
                earliest = at
            if earliest != float("inf"):
                out[key, seq] = earliest
    return out
