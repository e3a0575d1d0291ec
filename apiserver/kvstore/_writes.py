"""Single leased writes and operation metrics, shared by the sync store's canary, the heartbeat and
the cluster-config enforcer.

Metric labels follow upstream ``pkg/kvstore/metrics.go`` + ``etcd.go``: ``kind`` is ``set`` /
``delete`` / ``read``, ``action`` the operation name (``Update``, ``Delete``, ``ListPrefix``, and
``Txn`` for our batches), ``outcome`` ``success`` / ``fail``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable

from apiserver.kvstore._backend import KVBackend, LeaseNotFoundError
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.metrics import Metrics, kvstore_scope

KIND_SET = "set"
KIND_DELETE = "delete"
KIND_READ = "read"
OUTCOME_SUCCESS = "success"
OUTCOME_FAIL = "fail"


def rfc3339_now(clock: Callable[[], float] = time.time) -> bytes:
    """Go's ``time.Now().Format(time.RFC3339)`` in UTC: ``2026-01-01T00:00:00Z``."""
    return dt.datetime.fromtimestamp(clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()


def observe(metrics: Metrics | None, key: str, kind: str, action: str, seconds: float, ok: bool) -> None:
    if metrics is not None:
        metrics.kvstore_operations_duration_seconds.labels(
            kvstore_scope(key), kind, action, OUTCOME_SUCCESS if ok else OUTCOME_FAIL).observe(seconds)


async def put_with_lease(backend: KVBackend, leases: LeaseManager, key: str, value: bytes, *,
                         limiter: APILimiter | None = None, metrics: Metrics | None = None,
                         op_timeout: float | None = None) -> int:
    """Put ``key`` attached to its lease; a ``LeaseNotFoundError`` makes the lease manager check
    (and, if gone, declare lost) the lease before the error is re-raised."""
    lease = await leases.lease_for(key)
    started = time.perf_counter()
    ok = False
    try:
        async with limiter.request() if limiter is not None else contextlib.nullcontext(), asyncio.timeout(op_timeout):
            revision = await backend.put(key, value, lease=lease)
        ok = True
        return revision
    except LeaseNotFoundError:
        await leases.check([lease])
        raise
    finally:
        observe(metrics, key, KIND_SET, "Update", time.perf_counter() - started, ok)
