"""Client-side request rate limit (``--k8s-client-qps`` / ``--k8s-client-burst``): a token bucket.

Shared by every reflector of a process, as client-go shares one limiter per client. Only request
starts are limited; a long-running watch holds no token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Token bucket: ``burst`` requests at once, then ``qps`` per second. ``qps <= 0``: unlimited."""

    __slots__ = ("_burst", "_clock", "_last", "_lock", "_qps", "_tokens")

    def __init__(self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._qps = qps
        self._burst = max(1, burst)
        self._tokens = float(self._burst)
        self._clock = clock
        self._last = clock()
        self._lock = asyncio.Lock()

    @property
    def unlimited(self) -> bool:
        return self._qps <= 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self._burst), self._tokens + (now - self._last) * self._qps)
        self._last = now

    def try_acquire(self) -> float:
        """Take a token if one is there (returns 0), else return the seconds until one is."""
        if self._qps <= 0:
            return 0.0
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._qps

    async def acquire(self) -> None:
        if self._qps <= 0:
            return
        # The lock keeps waiters first-come first-served.
        async with self._lock:
            wait = self.try_acquire()
            if wait > 0:
                await asyncio.sleep(wait)
                # The token we waited for is ours; rounding may leave the bucket a hair below
                # zero, which the next caller's wait accounts for.
                self._refill()
                self._tokens -= 1.0
