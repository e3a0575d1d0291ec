"""Owned, supervised background tasks for the kvstore write side.

A ``SupervisedTask`` runs one coroutine "forever": if the coroutine raises or returns while the
owner still wants it running, the exit is logged and the coroutine is started again after an
exponential back-off. ``stop()`` cancels and then awaits (``apiserver._tasks.cancel_and_wait``), so
no task outlives its owner, and the owner's own cancellation propagates out of ``stop()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait

log = get_logger(__name__)

RESTART_MIN = 0.1
RESTART_MAX = 30.0


def every(interval: Callable[[], float], step: Callable[[], Awaitable[object]]
          ) -> Callable[[], Coroutine[Any, Any, None]]:
    """The body of a periodic task: ``step()``, then ``interval()`` seconds of sleep (read each
    round, so a changed interval applies from the next one), forever."""
    async def loop() -> None:
        while True:
            await step()
            await asyncio.sleep(interval())
    return loop


class SupervisedTask:
    """One eternal coroutine, restarted on unexpected exit, stopped by cancel-then-await."""

    def __init__(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]], *,
                 restart_min: float = RESTART_MIN, restart_max: float = RESTART_MAX) -> None:
        self.name = name
        self._factory = factory
        self._restart_min = restart_min
        self._restart_max = restart_max
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"task {self.name!r} is already running")
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(self._restart_min, self._restart_max, jitter=0.0)
        while True:
            started = loop.time()
            try:
                await self._factory()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Background task failed; restarting", task=self.name)
            else:
                log.error("Background task exited unexpectedly; restarting", task=self.name)
            self.restarts += 1
            # A run that lasted a while was healthy: the next failure starts the back-off afresh.
            if loop.time() - started > self._restart_max:
                backoff.reset()
            await asyncio.sleep(backoff.next())
