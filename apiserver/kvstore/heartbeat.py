"""The heartbeat: ``cilium/.heartbeat`` = RFC 3339 time, with lease, written now and every 60 s.

Remote readers (agents, KVStoreMesh) count a quorum error when this key has not been modified
for more than 2 x 60 s, and reconnect after a few of them, so a writer that
silently stops is an outage for every peer. Each write has a 25 s timeout; failures are logged
and counted (``failures`` and the operation metric) and never stop the loop.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from apiserver._logging import get_logger
from apiserver.kvstore._backend import KVBackend
from apiserver.kvstore._supervise import SupervisedTask, every
from apiserver.kvstore._writes import put_with_lease, rfc3339_now
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.metrics import Metrics
from apiserver.paths import HEARTBEAT_INTERVAL, HEARTBEAT_PATH

__all__ = ["HEARTBEAT_WRITE_TIMEOUT", "Heartbeat"]

log = get_logger(__name__)

HEARTBEAT_WRITE_TIMEOUT = 25.0  # upstream: the lock lease TTL


class Heartbeat:
    """Keeps ``cilium/.heartbeat`` fresh; ``start()`` / ``stop()``."""

    def __init__(self, backend: KVBackend, leases: LeaseManager, *, interval: float = HEARTBEAT_INTERVAL,
                 write_timeout: float = HEARTBEAT_WRITE_TIMEOUT, limiter: APILimiter | None = None,
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.time) -> None:
        self._put = functools.partial(put_with_lease, backend, leases, limiter=limiter, metrics=metrics,
                                      op_timeout=write_timeout)
        self.interval = interval
        self._clock = clock
        self._task = SupervisedTask("heartbeat", every(lambda: self.interval, self.beat))
        self.writes = 0
        self.failures = 0

    async def beat(self) -> bool:
        """Write the heartbeat once; False (logged, counted) if it failed."""
        try:
            await self._put(HEARTBEAT_PATH, rfc3339_now(self._clock))
        except Exception as exc:
            self.failures += 1
            log.warning("Unable to update heartbeat key", key=HEARTBEAT_PATH, error=str(exc) or repr(exc),
                        failures=self.failures)
            return False
        self.writes += 1
        log.debug("Updated heartbeat key", key=HEARTBEAT_PATH)
        return True

    def start(self) -> None:
        log.info("Starting to update heartbeat key", interval=self.interval)
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        log.info("Stopped updating heartbeat key")
