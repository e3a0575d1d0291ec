"""``eventually``: poll a condition with a deadline, the tests' one way to wait (no blind sleeps)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Check = Callable[[], object | Awaitable[object]]


async def eventually(check: Check, timeout: float = 10.0, what: str = "", *, interval: float = 0.01) -> Any:
    """Call ``check`` (sync or async) until it returns something true, and return that; or fail
    after ``timeout`` seconds naming ``what`` and the last result. An ``AssertionError`` raised by
    ``check`` counts as "not yet" (so a check may assert), and is the last result shown when time
    runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last = result
        except AssertionError as exc:
            last = exc
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check} (last: {last!r})")
        await asyncio.sleep(interval)
