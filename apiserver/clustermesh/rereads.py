"""Re-evaluating a namespace's CiliumEndpoints when its global setting flips.

The endpoint reflector caches only resourceVersions (``MetadataCache``): 100k endpoints kept as
objects cost 30 MB and several microseconds each per list, for an event (a namespace annotation
change) that is rare. When a namespace becomes global or stops being global, its endpoints are
read again from the API server, limited to the versions the handler has seen, and handed to the
handler, which applies the namespace's current setting. API errors are retried with back-off.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.kube import KubeObject, Reflector

log = get_logger(__name__)


class Resyncable(Protocol):
    def resync(self, objects: list[KubeObject]) -> None: ...


class NamespaceRereads:
    """A namespace-gate listener: ``rereads(namespace)`` schedules the re-read of that namespace."""

    def __init__(self, reflector: Reflector, handler: Resyncable, *, backoff_initial: float = 0.2,
                 backoff_max: float = 30.0) -> None:
        self._reflector = reflector
        self._handler = handler
        self._backoff = (backoff_initial, backoff_max)
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, namespace: str) -> None:
        if namespace not in self._reflector.cache.namespaces():
            return  # nothing of it was handled yet: what comes will be judged by the current setting
        task = asyncio.get_running_loop().create_task(self._reread(namespace))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _reread(self, namespace: str) -> None:
        backoff = Backoff(*self._backoff)
        resource = self._reflector.name
        while True:
            try:
                objects = await self._reflector.reread_namespace(namespace)
            except Exception as exc:  # API trouble: the flip must still be applied, later
                delay = backoff.next()
                log.warning("Re-reading a namespace failed, retrying", resource=resource, namespace=namespace,
                            error=str(exc) or type(exc).__name__, retry_in=f"{delay:.2f}s")
                await asyncio.sleep(delay)
                continue
            self._handler.resync(objects)
            log.info("Namespace re-evaluated after its global setting changed", resource=resource,
                     namespace=namespace, objects=len(objects))
            return

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
