"""The one way a process of this project runs: start parts in order, stop them in reverse.

``PartRunner`` is an ``AsyncExitStack`` with names and logging, in the manner of aiohttp's
``web_runner`` (``setup()`` / ``cleanup()``): every part that ``start`` started, every ``on_stop``
callback and every ``spawn``-ed task is undone by ``stop()``, last first, and *every one* of them
runs even when one fails (the failure is logged and counted, the rest go on).

``run_process`` is a process's entry point around it: SIGTERM/SIGINT ask it to stop, at any time
-- also while a part is still starting (connecting to etcd may wait 15 minutes, and is cancelled)
-- and its result is the exit code. The exit codes are the same for every command:
``EXIT_OK`` (stopped by a signal), ``EXIT_FAILURE`` (a part failed to start or to stop, or a part
asked the process to fail), ``EXIT_USAGE`` (a bad flag, as upstream's cobra exits with).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "PartRunner", "run_process", "serve"]

log = get_logger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

T = TypeVar("T")
Stop = Callable[[], Awaitable[object]]


class PartRunner:
    """Parts started in order and stopped in reverse; see the module docstring."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stack = AsyncExitStack()
        self._stopped = False
        self.failed_stops: list[str] = []
        self._stop_requested = asyncio.Event()
        self.failure: str | None = None  # why the process should exit with EXIT_FAILURE

    async def start(self, part: str, start: Callable[[], Awaitable[T]], stop: Stop) -> T:
        """Run ``start``; once it returned, ``stop`` is owed (a failed start owes nothing)."""
        self._check_open(part)
        result = await start()
        self.on_stop(part, stop)
        return result

    def on_stop(self, part: str, stop: Stop) -> None:
        """Owe ``stop`` for something already started (a client ``connect`` returned)."""
        self._check_open(part)
        self._stack.push_async_callback(self._stop_one, part, stop)

    def spawn(self, part: str, coro: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        """A background task of the process, cancelled and awaited when the runner stops."""
        self._check_open(part)
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}: {part}")
        self.on_stop(part, lambda: cancel_and_wait(task))
        return task

    def request_stop(self, failure: str | None = None) -> None:
        """Ask the process to stop (signals call this); ``failure`` makes the exit code 1."""
        if failure is not None and self.failure is None:
            self.failure = failure
        self._stop_requested.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    async def wait_stop_requested(self) -> None:
        await self._stop_requested.wait()

    async def stop(self) -> None:
        """Undo everything, last first; idempotent. Each failure is logged, none stops the rest."""
        if self._stopped:
            return
        self._stopped = True
        await self._stack.aclose()

    async def __aenter__(self) -> PartRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _stop_one(self, part: str, stop: Stop) -> None:
        try:
            await stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed_stops.append(part)
            log.error("Failed to stop", process=self.name, part=part, error=str(exc) or type(exc).__name__)
        else:
            log.debug("Stopped", process=self.name, part=part)

    def _check_open(self, part: str) -> None:
        if self._stopped:
            raise RuntimeError(f"{self.name}: cannot add {part!r}, the runner is stopped")


Main = Callable[[PartRunner], Coroutine[Any, Any, None]]


async def serve(name: str, main: Main, *, signals: tuple[signal.Signals, ...] = (
        signal.SIGTERM, signal.SIGINT)) -> int:
    """Run ``main`` (which starts the parts through the runner and returns), serve until a stop is
    requested, then stop every part. Returns the exit code."""
    runner = PartRunner(name)
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, runner.request_stop)
    starting = loop.create_task(main(runner), name=f"{name}: start")
    stopping = loop.create_task(runner.wait_stop_requested(), name=f"{name}: wait for stop")
    code = EXIT_OK
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and not starting.cancelled() and starting.exception() is not None:
            error = starting.exception()
            log.error("Failed to start", process=name, error=str(error) or type(error).__name__)
            code = EXIT_FAILURE
        else:
            if not starting.done():
                log.info("Stop requested while starting", process=name)
            await stopping
            log.info("Shutting down", process=name)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await cancel_and_wait(starting, stopping)
        await runner.stop()
    if runner.failure is not None:
        log.error("Exiting on failure", process=name, reason=runner.failure)
        code = EXIT_FAILURE
    if runner.failed_stops:
        code = EXIT_FAILURE
    return code


def run_process(name: str, main: Main) -> int:
    """``serve`` in a fresh event loop: the body of a command's ``run``."""
    try:
        return asyncio.run(serve(name, main))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_OK
