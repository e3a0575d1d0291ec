"""Owned asyncio tasks: the one way to stop them, and the first real error of a group.

``cancel_and_wait`` is how every owner in the product stops its tasks: cancel, then wait until
they finished. The tasks' own outcomes (their cancellation, their errors) are theirs and are not
raised to the owner; the *owner's* cancellation always is: it is never mistaken for a task's. A
task that does not finish within ``grace`` seconds of being cancelled (it caught the
cancellation and went on) is reported and left behind rather than hanging its owner for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from apiserver._logging import get_logger

log = get_logger(__name__)

STOP_GRACE = 30.0  # seconds a cancelled task gets to finish before it is reported


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None,
                          grace: float = STOP_GRACE) -> set[asyncio.Future[Any]]:
    """Cancel the tasks and wait until they finished; returns (and logs) those that did not
    finish within ``grace`` seconds. Raises ``CancelledError`` only when the caller is cancelled."""
    live = {t for t in tasks if t is not None}
    for task in live:
        task.cancel()
    if not live:
        return set()
    # ``asyncio.wait`` never raises a task's outcome, so a CancelledError out of it is ours.
    _, pending = await asyncio.wait(live, timeout=grace)
    for task in live - pending:
        if not task.cancelled():
            task.exception()  # retrieved: a task's error on the way out is not the owner's
    for task in pending:
        name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
        log.error("Task ignored its cancellation and is still running", task=name, grace=grace)
    return pending


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
