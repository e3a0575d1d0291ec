"""The kvstore rate limiter: a token bucket (qps, burst; ``apiserver._tokenbucket``) plus a cap on
operations in flight.

Built from the parsed ``--kvstore-opt`` (``KVStoreOptions``) as upstream builds its etcd limiter
(``pkg/kvstore/etcd.go``): ``etcd.qps`` (default 20; burst = qps), ``etcd.bootstrapQps`` (0 = off;
the rate used until ``bootstrap_complete()``), ``etcd.maxInflight`` (0 = qps). A rate of 0 or None
means "unlimited" (no token bucket); a max in-flight of 0 or None means no cap.

Design decision (deliberate deviation): upstream charges one token per etcd call, and its
writers make one call per key. Our writers batch up to ``MAX_TXN_OPS`` (128) puts/deletes into
one Txn, and **one Txn counts as ONE operation** against this limiter. That is the point of the
batching: at the Helm default ``etcd.qps=20`` a steady-state burst of changes can flow at up to
20 x 128 keys/s instead of 20 keys/s, while etcd still sees at most 20 requests/s from us.

Our processes build theirs with ``for_batched_writes``: as above when ``etcd.qps`` is set, and
no token bucket at all when it is not (see that method for why).

The limiter is shared by every writer of one process (one per etcd client, as upstream). It
never talks to etcd itself. Each operation runs inside ``async with limiter.request():``, which
measures how long it waited and ran; an observer (``observe``) gets upstream's api-limiter
figures after every request and on every configuration change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from apiserver._logging import get_logger
from apiserver._tokenbucket import Clock, Sleep, TokenBucket
from apiserver.kvstore.options import DEFAULT_QPS, KVStoreOptions
from apiserver.metrics import LimiterValues

__all__ = ["DEFAULT_QPS", "APILimiter", "LimiterValues"]

log = get_logger(__name__)


OUTCOME_SUCCESS, OUTCOME_FAIL = "success", "fail"
MEAN_OVER = 10  # requests the mean wait and processing durations are taken over (upstream's default)



LimiterObserver = Callable[[LimiterValues], None]


class APILimiter:
    """Token bucket + in-flight semaphore; ``async with limiter:`` around every kvstore operation."""

    def __init__(self, qps: float | None = DEFAULT_QPS, *, burst: int | None = None,
                 max_inflight: int | None = None, bootstrap_qps: float | None = None,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        steady = qps if qps is not None and qps > 0 else None
        self._steady_rate = steady
        # Upstream: burst is always the steady qps, also while the bootstrap rate applies.
        self.burst = max(1, int(burst if burst is not None else (steady or 1)))
        self._bootstrapping = steady is not None and bootstrap_qps is not None and bootstrap_qps > 0
        self._bucket = TokenBucket(bootstrap_qps if self._bootstrapping else steady, self.burst,
                                   clock=clock, sleep=sleep)
        inflight = max_inflight if max_inflight is not None else (int(steady) if steady else None)
        self.max_inflight = inflight if inflight is not None and inflight > 0 else None
        self._slots = asyncio.Semaphore(self.max_inflight) if self.max_inflight else None
        self._clock = clock
        self.in_flight = 0
        self.acquired = 0
        self.waited_seconds = 0.0
        self._waits: deque[float] = deque(maxlen=MEAN_OVER)
        self._processing: deque[float] = deque(maxlen=MEAN_OVER)
        self._observer: LimiterObserver | None = None

    @classmethod
    def unlimited(cls) -> APILimiter:
        return cls(None)

    @classmethod
    def from_options(cls, options: KVStoreOptions, *, clock: Clock = time.monotonic,
                     sleep: Sleep = asyncio.sleep) -> APILimiter:
        """Upstream's limiter of these options (``pkg/kvstore/etcd.go`` ``connectEtcdClient``):
        rate ``etcd.qps`` (default 20; 0: no token bucket), burst the same, ``etcd.bootstrapQps``
        until ``bootstrap_complete()``, in flight ``etcd.maxInflight`` (0: as many as the rate)."""
        qps = options.upstream_qps
        return cls(qps, bootstrap_qps=options.bootstrap_qps or None,
                   max_inflight=options.max_inflight or qps or None, clock=clock, sleep=sleep)

    @classmethod
    def for_batched_writes(cls, options: KVStoreOptions, *, clock: Clock = time.monotonic,
                           sleep: Sleep = asyncio.sleep) -> APILimiter:
        """The limiter of a process whose writers batch (the exporter, KVStoreMesh): exactly
        ``from_options`` when ``etcd.qps`` is given; when it is not, no token bucket at all
        (``etcd.maxInflight`` still applies).

        Deliberate deviation from upstream's default of 20 operations/s: these writers send Txns of
        up to 128 keys with at most two in flight per sync store, so they cannot flood their own
        sidecar etcd; a 20 Txn/s default would cap steady-state churn at 2,560 keys/s and add up
        to 50 ms of queueing to every change. Whoever wants upstream's limit sets ``etcd.qps``
        (the Helm chart does: 20 for the apiserver, 100 for KVStoreMesh).
        """
        if options.qps is None:
            options = dataclasses.replace(options, qps=0)  # 0: no token bucket
        return cls.from_options(options, clock=clock, sleep=sleep)

    @property
    def rate(self) -> float | None:
        """Operations per second currently allowed (None = unlimited)."""
        return self._bucket.rate

    @property
    def bootstrapping(self) -> bool:
        return self._bootstrapping

    def bootstrap_complete(self) -> None:
        """Switch from the bootstrap rate to the steady rate (idempotent)."""
        if not self._bootstrapping:
            return
        self._bootstrapping = False
        self._bucket.set_rate(self._steady_rate)
        log.info("Bootstrap complete, updating kvstore QPS limit", qps=self._steady_rate)
        self._report(None)

    def observe(self, observer: LimiterObserver) -> None:
        """Report to ``observer`` from now on, starting with the current configuration."""
        self._observer = observer
        self._report(None)

    def values(self, outcome: str | None = None) -> LimiterValues:
        rate = self._bucket.rate
        return LimiterValues(
            mean_processing_seconds=sum(self._processing) / len(self._processing) if self._processing else 0.0,
            mean_wait_seconds=sum(self._waits) / len(self._waits) if self._waits else 0.0,
            in_flight=self.in_flight, max_inflight=self.max_inflight or 0,
            rate=float(rate) if rate is not None else 0.0, burst=self.burst if rate is not None else 0,
            outcome=outcome)

    def _report(self, outcome: str | None) -> None:
        if self._observer is not None:
            self._observer(self.values(outcome))

    def _finished(self, waited: float, processing: float | None, ok: bool) -> None:
        self._waits.append(waited)
        if processing is not None:
            self._processing.append(processing)
        self._report(OUTCOME_SUCCESS if ok else OUTCOME_FAIL)

    async def acquire(self) -> None:
        self.waited_seconds += await self._bucket.acquire()
        if self._slots is not None:
            await self._slots.acquire()
        self.in_flight += 1
        self.acquired += 1

    def release(self) -> None:
        self.in_flight -= 1
        if self._slots is not None:
            self._slots.release()

    def request(self) -> LimitedRequest:
        """``async with limiter.request():`` around one operation: waits for its turn, then
        measures it; a failure inside (or while waiting) counts as a failed request."""
        return LimitedRequest(self)

    def __repr__(self) -> str:
        return (f"APILimiter(rate={self._bucket.rate}, burst={self.burst}, max_inflight={self.max_inflight}, "
                f"bootstrapping={self._bootstrapping})")


class LimitedRequest:
    """One operation under a ``APILimiter`` (see ``APILimiter.request``)."""

    __slots__ = ("_limiter", "_scheduled", "_started")

    def __init__(self, limiter: APILimiter) -> None:
        self._limiter = limiter
        self._scheduled = self._started = 0.0

    async def __aenter__(self) -> None:
        limiter = self._limiter
        self._scheduled = limiter._clock()
        try:
            await limiter.acquire()
        except BaseException:  # cancelled or timed out while waiting: never ran
            limiter._finished(limiter._clock() - self._scheduled, None, ok=False)
            raise
        self._started = limiter._clock()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        limiter = self._limiter
        limiter.release()
        limiter._finished(self._started - self._scheduled, limiter._clock() - self._started, ok=et is None)
