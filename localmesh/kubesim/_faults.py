"""Fault injection, so consumers' error handling can be tested against misbehaving API servers.

``sim.faults`` offers: drop every open watch stream, answer the next watch(es) with a 410 Expired,
fail the next N requests to a resource with a status code, slow a resource down, pause the whole
server (requests and watch deliveries hang until ``resume``), and compact the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from localmesh.kubesim import _errors as errors


@dataclass(slots=True)
class _Failure:
    status: int
    remaining: int
    verbs: frozenset[str] | None
    message: str | None


class Faults:
    def __init__(self, close_watches: Callable[[], int], compact: Callable[[], None]) -> None:
        self._close_watches = close_watches
        self._compact = compact
        self._expire_watches = 0
        self._failures: dict[str, list[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._running = asyncio.Event()
        self._running.set()

    # -- the test-facing controls --------------------------------------------------------------------

    def close_watches(self) -> int:
        """End every open watch stream now (cleanly, as a server restart or timeout would)."""
        return self._close_watches()

    def expire_next_watch(self, count: int = 1) -> None:
        """The next ``count`` watch requests get an ERROR event with a 410 Expired Status."""
        self._expire_watches += count

    def compact(self) -> None:
        """Drop all event history: every resourceVersion older than now answers 410 Expired."""
        self._compact()

    def fail(self, resource: str, status: int = 503, count: int = 1, *, verbs: tuple[str, ...] | None = None,
             message: str | None = None) -> None:
        """The next ``count`` requests to ``resource`` (a plural, or ``*``) answer ``status``.

        ``verbs`` restricts it to some of get/list/watch/create/update/patch/delete/deletecollection.
        """
        self._failures.setdefault(resource, []).append(
            _Failure(status, count, frozenset(verbs) if verbs else None, message))

    def delay(self, resource: str, seconds: float) -> None:
        """Every request to ``resource`` (or ``*``) waits ``seconds`` first; 0 removes the delay."""
        if seconds > 0:
            self._delays[resource] = seconds
        else:
            self._delays.pop(resource, None)

    def pause(self) -> None:
        """Stop answering: requests and watch deliveries wait until ``resume()``."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def reset(self) -> None:
        self._expire_watches = 0
        self._failures.clear()
        self._delays.clear()
        self._running.set()

    # -- used by the HTTP layer ------------------------------------------------------------------------

    async def wait_running(self) -> None:
        if not self._running.is_set():
            await self._running.wait()

    async def before_request(self, resource: str | None, verb: str) -> None:
        """Apply pause, delays and injected failures for one request (raises ``KubeError``)."""
        await self.wait_running()
        if resource is None:
            return
        delay = self._delays.get(resource, self._delays.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)
            await self.wait_running()
        for name in (resource, "*"):
            for failure in self._failures.get(name, ()):
                if failure.remaining > 0 and (failure.verbs is None or verb in failure.verbs):
                    failure.remaining -= 1
                    if failure.remaining == 0:
                        self._failures[name].remove(failure)
                    raise errors.generic(failure.status, failure.message)

    def take_expired_watch(self) -> bool:
        if self._expire_watches > 0:
            self._expire_watches -= 1
            return True
        return False
