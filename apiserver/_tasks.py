"""Small helpers for owned asyncio tasks: cancel-then-await, and the first real error of a group."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel the tasks and wait until they finished; their own errors are not re-raised."""
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    for task in live:
        # Suppress only the task's own outcome: if *we* are cancelled meanwhile, ``cancelling()``
        # is non-zero and the CancelledError must propagate.
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:
            pass


def first_error(exc: BaseException) -> BaseException:
    """The first leaf of a (nested) exception group, or ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """True if ``event`` was set within ``seconds``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
