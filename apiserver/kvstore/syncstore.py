"""The sync store: mirrors a set of key/value pairs under one prefix into etcd, in batches.

Upstream shape (``pkg/kvstore/store/syncstore.go``, spec sections 1.1 and 1.9), with one
deliberate change: writes are batched, up to ``batch_size`` (<= 128) puts/deletes per Txn, and
one Txn counts as one operation against the ``RateLimiter``.

- ``upsert``/``delete`` never await. An upsert whose bytes equal the last upserted value is
  dropped; a delete of a key never upserted in this process is dropped. Otherwise the key is
  queued; the queue coalesces by key (only the latest value is written).
- One worker drains the queue. Each put carries the key's lease. A failed batch marks its keys
  for retry with per-key exponential back-off (5 ms .. 1000 s) and counts
  ``kvstore_sync_errors_total``. A value that arrives while an older one is in flight re-queues
  the key, so it is written after the older one.
- ``mark_synced()``: once every key queued before it has been written, the canary
  ``cilium/synced/<cluster>/<synced_key or prefix>`` is written (RFC 3339 UTC, with lease),
  ``synced`` is set and ``kvstore_initial_sync_completed{action="write"}`` goes to 1. Then, only if
  ``stale_prefix`` is set, keys under it that this run did not write (left over by a previous
  run) are deleted.
- A lost lease re-queues every key of this store that was attached to it, and the canary.

Hot path rules: plain dicts/sets/deque, no per-key tasks or awaits, O(1) per key per step.
The store knows nothing of Kubernetes; it never interprets values.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType

from apiserver._logging import get_logger
from apiserver.kvstore._backend import MAX_TXN_OPS, Delete, KVBackend, LeaseNotFoundError, Op, Put
from apiserver.kvstore._supervise import SupervisedTask
from apiserver.kvstore._writes import KIND_READ, KIND_SET, observe, put_with_lease, rfc3339_now
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.ratelimit import RateLimiter
from apiserver.metrics import Metrics, kvstore_scope
from apiserver.paths import join_key, synced_canary_key

__all__ = ["SyncStore"]

log = get_logger(__name__)

RETRY_MIN = 0.005
RETRY_MAX = 1000.0
# The worker itself pauses after a failed etcd call, so an outage costs a few calls per second,
# not one per queued key.
WORKER_PAUSE_MAX = 1.0
DEFAULT_DRAIN_TIMEOUT = 10.0
DEFAULT_OP_TIMEOUT = 30.0
PROGRESS_INTERVAL = 5.0
ACTION_TXN = "Txn"


def _retry_delay(failures: int) -> float:
    return min(RETRY_MIN * 2.0 ** min(failures - 1, 40), RETRY_MAX)


class SyncStore:
    """Writes the keys of one prefix to etcd (see the module docstring)."""

    def __init__(self, backend: KVBackend, leases: LeaseManager, *, prefix: str, cluster_name: str,
                 synced_key: str | None = None, stale_prefix: str | None = None,
                 metrics: Metrics | None = None, source_cluster: str | None = None,
                 limiter: RateLimiter | None = None, batch_size: int = MAX_TXN_OPS,
                 drain_timeout: float = DEFAULT_DRAIN_TIMEOUT, op_timeout: float = DEFAULT_OP_TIMEOUT,
                 progress_interval: float = PROGRESS_INTERVAL) -> None:
        if not 1 <= batch_size <= MAX_TXN_OPS:
            raise ValueError(f"batch_size must be between 1 and {MAX_TXN_OPS}, got {batch_size}")
        self.prefix = join_key(prefix)
        if not self.prefix:
            raise ValueError("prefix must not be empty")
        self._base = self.prefix + "/"
        self.cluster_name = cluster_name
        self.canary_key = synced_canary_key(cluster_name, synced_key or self.prefix)
        self._stale_prefix: str | None = None
        if stale_prefix is not None:
            # Path-aware: "a/b" must not match "a/bc/...".
            stale = join_key(stale_prefix) + "/"
            if not (stale == self._base or stale.startswith(self._base)):
                raise ValueError(f"stale_prefix {stale_prefix!r} is not under the store prefix {self.prefix!r}")
            self._stale_prefix = stale
        self.source_cluster = source_cluster if source_cluster is not None else cluster_name
        self._backend = backend
        self._leases = leases
        self._limiter = limiter if limiter is not None else RateLimiter.unlimited()
        self._metrics = metrics
        self._batch_size = batch_size
        self._drain_timeout = drain_timeout
        self._op_timeout = op_timeout
        self._progress_interval = progress_interval
        self.scope = kvstore_scope(self.prefix)

        self._state: dict[str, bytes] = {}  # desired: the last value upserted per key
        self._written: dict[str, bytes] = {}  # known to be in etcd, written by this run
        self._uncertain: set[str] = set()  # may exist in etcd (failed write, or stale leftover)
        self._pending: set[str] = set()  # queued keys ...
        self._order: deque[str] = deque()  # ... in queue order (each key at most once)
        self._inflight: list[str] = []
        self._failures: dict[str, int] = {}
        self._retry_due: dict[str, float] = {}
        self._retry_heap: list[tuple[float, str]] = []
        self._sync_wait: set[str] = set()  # keys queued before mark_synced() and not yet written
        self._marked = False
        self._canary_written = False
        self._canary_dirty = False
        self._cleanup_due = False
        self._stale: set[str] = set()
        self._pause_until = 0.0
        self._consecutive_failures = 0

        self.synced = asyncio.Event()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task = SupervisedTask(f"sync-store:{self.prefix}", self._run)
        self._unsubscribe: list[Callable[[], None]] = []
        self._started_at = 0.0
        self._last_progress = 0.0
        self.keys_written = 0  # puts + deletes applied by this run
        self.batches = 0

        if metrics is not None:
            self._m_queue = metrics.kvstore_sync_queue_size.labels(self.scope, self.source_cluster)
            self._m_errors = metrics.kvstore_sync_errors_total.labels(self.scope, self.source_cluster)
            self._m_synced = metrics.kvstore_initial_sync_completed.labels(
                self.scope, self.source_cluster, "write")
            self._m_stale = metrics.stale_keys_deleted_total.labels(self.scope)
            ops = metrics.kvstore_operations_duration_seconds
            self._m_txn_ok = ops.labels(self.scope, KIND_SET, ACTION_TXN, "success")
            self._m_txn_fail = ops.labels(self.scope, KIND_SET, ACTION_TXN, "fail")

    # ------------------------------------------------------------------ producer side (sync)

    def _key(self, key: str) -> str:
        if key and key[0] != "/" and key[-1] != "/" and "//" not in key:
            return key
        cleaned = join_key(key).strip("/")
        if not cleaned:
            raise ValueError(f"invalid sync store key {key!r}")
        return cleaned

    def _enqueue(self, key: str) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._order.append(key)
        if not self._wake.is_set():
            self._wake.set()

    def upsert(self, key: str, value: bytes) -> None:
        """Queue ``prefix/key`` = ``value`` unless ``value`` is what was last upserted."""
        key = self._key(key)
        if self._state.get(key) == value:
            return
        self._state[key] = value
        self._enqueue(key)

    def delete(self, key: str) -> None:
        """Queue the deletion of ``prefix/key``; a key never upserted in this process is ignored."""
        key = self._key(key)
        if self._state.pop(key, None) is not None:
            self._enqueue(key)

    def mark_synced(self) -> None:
        """The initial listing is complete: write the canary once everything queued so far is written."""
        if self._marked:
            return
        self._marked = True
        self._sync_wait = set(self._pending)
        self._sync_wait.update(self._inflight)
        self._sync_wait.update(self._retry_due)
        log.info("Initial listing complete; waiting for queued keys to be written",
                 prefix=self.prefix, queued=len(self._sync_wait))
        self._wake.set()

    def exported(self) -> Mapping[str, bytes]:
        """Read-only live view: relative key -> value currently in etcd from this store."""
        return MappingProxyType(self._written)

    @property
    def queue_length(self) -> int:
        return len(self._order)

    @property
    def retrying(self) -> int:
        return len(self._retry_due)

    @property
    def pending_writes(self) -> int:
        """Keys queued, in flight or waiting for a retry (0 = everything upserted is in etcd)."""
        return len(self._order) + len(self._inflight) + len(self._retry_due)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._task.running:
            raise RuntimeError(f"sync store {self.prefix!r} already started")
        self._unsubscribe.append(self._leases.on_expired(self._on_lease_expired))
        if self._metrics is not None:
            self._m_synced.set(0)
        self._started_at = self._last_progress = time.monotonic()
        log.info("Starting sync store", prefix=self.prefix, cluster=self.source_cluster)
        self._task.start()

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Write what is pending (one last attempt for keys in back-off) for at most ``drain_timeout``
        seconds (default: the constructor's), then stop the worker."""
        if not self._task.running:
            return
        for key in list(self._retry_due):
            self._retry_due.pop(key)
            self._enqueue(key)
        try:
            async with asyncio.timeout(self._drain_timeout if drain_timeout is None else drain_timeout):
                while self.pending_writes:
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            log.warning("Sync store stopped before every write completed", prefix=self.prefix,
                        queued=len(self._order), retrying=len(self._retry_due))
        await self._task.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._metrics is not None:
            self._m_synced.set(0)
        log.info("Sync store stopped", prefix=self.prefix)

    # ------------------------------------------------------------------ lease loss

    def _on_lease_expired(self, keys: list[str]) -> None:
        base, cut, touched = self._base, len(self._base), 0
        for full in keys:
            if full == self.canary_key:
                if self._canary_written:
                    self._canary_dirty = True
                    touched += 1
                continue
            if not full.startswith(base):
                continue
            key = full[cut:]
            # The key went away with its lease: it is no longer ours in etcd.
            self._written.pop(key, None)
            self._uncertain.discard(key)
            if key in self._state:
                self._enqueue(key)
                touched += 1
        if touched:
            log.warning("Lease lost; re-writing keys", prefix=self.prefix, keys=touched)
            self._wake.set()

    # ------------------------------------------------------------------ worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if now < self._pause_until:
                await asyncio.sleep(self._pause_until - now)
                continue
            if self._retry_heap:
                self._promote_retries(now)
            if self._marked and not self._sync_wait and (not self._canary_written or self._canary_dirty):
                await self._write_canary()
            elif self._order:
                await self._write_batch()
            elif self._cleanup_due:
                await self._cleanup()
            else:
                await self._wait_for_work(now)

    async def _wait_for_work(self, now: float) -> None:
        if self._metrics is not None:
            self._m_queue.set(0)
        self._idle.set()
        self._wake.clear()
        timeout = self._retry_heap[0][0] - now if self._retry_heap else None
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _promote_retries(self, now: float) -> None:
        heap, due_of = self._retry_heap, self._retry_due
        while heap and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            if due_of.get(key) == due:  # else superseded by a later failure or a success
                del due_of[key]
                self._enqueue(key)

    def _succeeded(self) -> None:
        self._consecutive_failures = 0

    def _failed(self, what: str, exc: BaseException, **fields: object) -> None:
        self._consecutive_failures += 1
        pause = min(RETRY_MIN * 2.0 ** min(self._consecutive_failures - 1, 20), WORKER_PAUSE_MAX)
        self._pause_until = asyncio.get_running_loop().time() + pause
        log.warning(what, prefix=self.prefix, error=str(exc) or repr(exc),
                    consecutive_failures=self._consecutive_failures, **fields)

    def _take_batch(self) -> tuple[list[str], list[bytes | None]]:
        """Pop up to ``batch_size`` keys that need an etcd op; settle the others on the spot."""
        order, pending, state, written, uncertain = (
            self._order, self._pending, self._state, self._written, self._uncertain)
        keys: list[str] = []
        values: list[bytes | None] = []
        limit = self._batch_size
        while order and len(keys) < limit:
            key = order.popleft()
            pending.discard(key)
            value = state.get(key)
            if value is None:
                if key not in written and key not in uncertain:
                    self._settled(key)  # upserted then deleted before it was ever written
                    continue
            elif written.get(key) == value and key not in uncertain:
                self._settled(key)  # e.g. A -> B -> A before B was written
                continue
            keys.append(key)
            values.append(value)
        return keys, values

    def _settled(self, key: str) -> None:
        if self._sync_wait:
            self._sync_wait.discard(key)
        if self._failures:
            self._failures.pop(key, None)
            self._retry_due.pop(key, None)

    async def _write_batch(self) -> None:
        keys, values = self._take_batch()
        if not keys:
            return
        self._inflight = keys
        base = self._base
        put_keys = [base + k for k, v in zip(keys, values, strict=True) if v is not None]
        lease_ids: list[int] = []
        started = time.perf_counter()
        try:
            lease_ids = await self._leases.leases_for(put_keys) if put_keys else []
            lease_iter = iter(lease_ids)
            ops: list[Op] = [Put(base + k, v, next(lease_iter)) if v is not None else Delete(base + k)
                             for k, v in zip(keys, values, strict=True)]
            async with self._limiter, asyncio.timeout(self._op_timeout):
                await self._backend.apply(ops)
        except asyncio.CancelledError:
            self._requeue_failed(keys)
            raise
        except Exception as exc:
            if self._metrics is not None:
                self._m_txn_fail.observe(time.perf_counter() - started)
                self._m_errors.inc(len(keys))
            self._requeue_failed(keys)
            self._failed("Failed writing a batch to the kvstore; retrying", exc, keys=len(keys))
            if isinstance(exc, LeaseNotFoundError):
                await self._leases.check(lease_ids)
            return
        finally:
            self._inflight = []
        if self._metrics is not None:
            self._m_txn_ok.observe(time.perf_counter() - started)
        self._succeeded()
        self._record_success(keys, values)

    def _record_success(self, keys: list[str], values: list[bytes | None]) -> None:
        written, uncertain, base = self._written, self._uncertain, self._base
        stale_deleted = 0
        for key, value in zip(keys, values, strict=True):
            if value is None:
                written.pop(key, None)
                self._leases.forget(base + key)
                if self._stale and key in self._stale:
                    self._stale.discard(key)
                    stale_deleted += 1
            else:
                written[key] = value
            if uncertain:
                uncertain.discard(key)
            self._settled(key)
        if stale_deleted and self._metrics is not None:
            self._m_stale.inc(stale_deleted)
        self.keys_written += len(keys)
        self.batches += 1
        self._report_progress()

    def _requeue_failed(self, keys: list[str]) -> None:
        now = asyncio.get_running_loop().time()
        for key in keys:
            # The write may or may not have reached etcd.
            self._uncertain.add(key)
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            if key in self._pending:
                continue  # a newer value is already queued: it goes out without waiting
            due = now + _retry_delay(failures)
            self._retry_due[key] = due
            heapq.heappush(self._retry_heap, (due, key))

    def _report_progress(self) -> None:
        if self._metrics is not None:
            self._m_queue.set(len(self._order))
        if self.synced.is_set():
            return
        now = time.monotonic()
        if now - self._last_progress < self._progress_interval:
            return
        self._last_progress = now
        elapsed = now - self._started_at
        log.info("Initial sync in progress", prefix=self.prefix, written=self.keys_written,
                 queued=len(self._order), retrying=len(self._retry_due),
                 keys_per_second=round(self.keys_written / elapsed) if elapsed > 0 else 0)

    async def _write_canary(self) -> None:
        try:
            await put_with_lease(self._backend, self._leases, self.canary_key, rfc3339_now(),
                                 limiter=self._limiter, metrics=self._metrics, op_timeout=self._op_timeout)
        except Exception as exc:
            if self._metrics is not None:
                self._m_errors.inc()
            self._failed("Failed writing the sync canary; retrying", exc, key=self.canary_key)
            return
        self._succeeded()
        self._canary_written, self._canary_dirty = True, False
        if self.synced.is_set():
            log.info("Sync canary re-written", key=self.canary_key)
            return
        self.synced.set()
        if self._metrics is not None:
            self._m_synced.set(1)
        elapsed = time.monotonic() - self._started_at
        log.info("Initial synchronization from the external source completed", prefix=self.prefix,
                 key=self.canary_key, written=self.keys_written, seconds=round(elapsed, 3))
        self._cleanup_due = self._stale_prefix is not None

    async def _cleanup(self) -> None:
        """Queue the deletion of keys under ``stale_prefix`` that this run did not write."""
        assert self._stale_prefix is not None
        started = time.perf_counter()
        try:
            async with self._limiter, asyncio.timeout(self._op_timeout):
                listing, _ = await self._backend.list_prefix(self._stale_prefix, keys_only=True)
        except Exception as exc:
            observe(self._metrics, self._stale_prefix, KIND_READ, "ListPrefix",
                    time.perf_counter() - started, False)
            self._failed("Failed listing stale keys; retrying", exc, stale_prefix=self._stale_prefix)
            return
        observe(self._metrics, self._stale_prefix, KIND_READ, "ListPrefix", time.perf_counter() - started, True)
        self._succeeded()
        self._cleanup_due = False
        cut, ours = len(self._base), (self._state, self._written, self._pending, self._uncertain)
        stale = [kv.key[cut:] for kv in listing if not any(kv.key[cut:] in mine for mine in ours)]
        for key in stale:
            self._uncertain.add(key)  # so the worker issues the delete
            self._stale.add(key)
            self._enqueue(key)
        log.info("Deleting stale keys left over from a previous run", prefix=self.prefix,
                 stale_prefix=self._stale_prefix, count=len(stale))
