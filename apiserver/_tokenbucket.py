"""A token bucket: ``burst`` tokens, refilled at ``rate`` per second. No I/O, any clock.

The one bucket of the product: the Kubernetes client's request limit (``--k8s-client-qps`` /
``--k8s-client-burst``, shared by every reflector of a process as client-go shares one limiter
per client) and the etcd limiter (``kvstore.ratelimit.APILimiter``) are both made of it. Callers
are served first come, first served: a token taken ahead of its refill (``reserve``) puts the
bucket in debt, and the next caller's wait includes that debt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved. ``rate`` None or <= 0: unlimited."""

    __slots__ = ("_burst", "_clock", "_last", "_rate", "_sleep", "_tokens")

    def __init__(self, rate: float | None, burst: int, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._rate = rate if rate is not None and rate > 0 else None
        self._burst = max(1, int(burst))
        self._tokens = float(self._burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    @property
    def unlimited(self) -> bool:
        return self._rate is None

    @property
    def rate(self) -> float | None:
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    def set_rate(self, rate: float | None) -> None:
        """From now on refill at ``rate`` (what was earned at the old rate is kept)."""
        self._refill()
        self._rate = rate if rate is not None and rate > 0 else None

    def _refill(self) -> None:
        now = self._clock()
        if self._rate is not None:
            self._tokens = min(float(self._burst), self._tokens + (now - self._last) * self._rate)
        self._last = now

    def try_acquire(self) -> float:
        """Take a token if one is there (returns 0), else return the seconds until one is."""
        if self._rate is None:
            return 0.0
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def reserve(self) -> float:
        """Take one token now, going into debt if there is none; return how long to wait for it."""
        if self._rate is None:
            return 0.0
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def unreserve(self) -> None:
        """Give back a reserved token that was not used (its waiter was cancelled)."""
        if self._rate is not None:
            self._tokens += 1.0

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited. A cancelled wait gives its token back."""
        wait = self.reserve()
        if wait > 0:
            try:
                await self._sleep(wait)
            except BaseException:
                self.unreserve()
                raise
        return wait
