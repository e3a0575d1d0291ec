"""Start each remote watch only once the remote says that prefix is complete.

With ``syncedCanaries: true`` a remote writes ``cilium/synced/<R>/<prefix>`` after the initial
list of ``<prefix>`` was fully written; watching earlier would mirror a partial state and let the
local canary claim completeness too soon. Without the capability every watch starts at once.
The canary value is never parsed; a canary deleted later changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from apiserver._logging import get_logger
from apiserver._tasks import first_error
from apiserver.kvstore import KVBackend
from apiserver.kvstore.watchstore import WatchStore
from apiserver.kvstoremesh._resources import remote_synced_prefix

log = get_logger(__name__)

WatchFn = Callable[[], Coroutine[Any, Any, None]]


class WatchStoreManager:
    """Runs registered watch functions, each gated on its canary when ``wait_for_canaries``."""

    def __init__(self, cluster: str, *, wait_for_canaries: bool) -> None:
        self._cluster = cluster
        self._wait = wait_for_canaries
        self._registered: dict[str, WatchFn] = {}
        self._started: set[str] = set()
        self._group: asyncio.TaskGroup | None = None

    def register(self, synced_key: str, fn: WatchFn) -> None:
        self._registered[synced_key] = fn

    @property
    def started(self) -> frozenset[str]:
        return frozenset(self._started)

    async def run(self, backend: KVBackend) -> None:
        """Until cancelled, or until a watch function fails (its error is raised)."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                if not self._wait:
                    for key in self._registered:
                        self._start(key)
                else:
                    canaries = WatchStore(self, source_cluster=self._cluster)
                    group.create_task(canaries.watch(backend, remote_synced_prefix(self._cluster)),
                                      name=f"canaries:{self._cluster}")
        except BaseExceptionGroup as group_error:
            raise first_error(group_error) from None
        finally:
            self._group = None

    def _start(self, key: str) -> None:
        if key in self._started or key not in self._registered or self._group is None:
            return
        self._started.add(key)
        log.info("Starting to watch remote prefix", cluster=self._cluster, synced_key=key,
                 gated=self._wait)
        self._group.create_task(self._registered[key](), name=f"watch:{self._cluster}:{key}")

    # WatchStoreObserver of the canary prefix: a canary appearing opens its gate.
    def on_upsert(self, key: str, value: bytes) -> None:
        self._start(key)

    def on_upsert_many(self, items: dict[str, bytes]) -> None:
        for key in items:
            self._start(key)

    def on_delete(self, key: str) -> None:
        pass
