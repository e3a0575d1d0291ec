"""The sync store: mirrors a set of key/value pairs under one prefix into etcd, in batches.

Upstream shape (``pkg/kvstore/store/syncstore.go``), with one
deliberate change: writes are batched, up to ``batch_size`` (<= 128) puts/deletes per Txn, and
one Txn counts as one operation against the ``APILimiter``.

- ``upsert``/``delete`` never await. An upsert whose bytes equal the last upserted value is
  dropped; a delete of a key never upserted in this process is dropped. Otherwise the key is
  queued; the queue coalesces by key (only the latest value is written).
- One worker drains the queue, with up to ``max_batches_in_flight`` Txns outstanding (a key is
  never in two of them, so per-key order holds). Each put carries the key's lease. A failed batch
  marks its keys for retry with per-key exponential back-off (5 ms .. 1000 s) and counts
  ``kvstore_sync_errors_total``. A value that arrives while an older one is in flight is written
  after it.
- ``mark_synced()``: once every key queued before it has been written, the canary
  ``cilium/synced/<cluster>/<synced_key or prefix>`` is written (RFC 3339 UTC, with lease),
  ``synced`` is set and ``kvstore_initial_sync_completed{action="write"}`` goes to 1. Then, only if
  ``stale_prefix`` is set, keys under it that this run did not write (left over by a previous
  run) are deleted, logged and counted.
- A lost lease re-queues every key of this store that was attached to it, and the canary.

The bookkeeping lives in ``_syncqueue.SyncQueue`` (pure); this module does the I/O. The store
knows nothing of Kubernetes and never interprets values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.kvstore._backend import (
    MAX_REQUEST_BYTES,
    MAX_TXN_OPS,
    Delete,
    KVBackend,
    LeaseNotFoundError,
    NoSpaceError,
    Op,
    Put,
    RequestTooLargeError,
)
from apiserver.kvstore._restore import OwnWrites, Strikes, Verdict, judge, settled
from apiserver.kvstore._supervise import SupervisedTask
from apiserver.kvstore._syncqueue import SyncQueue
from apiserver.kvstore._writes import KIND_READ, KIND_SET, observe, put_with_lease, rfc3339_now
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.metrics import Metrics, kvstore_scope
from apiserver.paths import join_key, synced_canary_key

__all__ = ["SyncStore"]

log = get_logger(__name__)

# Several Txns in flight let us build the next batches while etcd applies earlier ones, and let
# grpc.aio complete several calls per wake-up of the event loop (its per-call CPU cost halves).
# Measured on 213k keys, 2 CPUs: 2 -> 4 -> 8 in flight took the initial export from 6.4 s to 5.5
# and 4.6 s (KVStoreMesh's mirror: 4.1, 3.7, 3.2 s); 16 gained nothing more.
DEFAULT_BATCHES_IN_FLIGHT = 8
# After a failed etcd call the worker itself pauses (5 ms doubling up to 1 s), so an outage costs
# a few calls per second rather than one per queued batch.
WORKER_PAUSE_MIN = 0.005
WORKER_PAUSE_MAX = 1.0
DEFAULT_DRAIN_TIMEOUT = 10.0
DEFAULT_OP_TIMEOUT = 30.0
PROGRESS_INTERVAL = 5.0
CLEANUP_PAGE_SIZE = 256  # the etcd client grows later pages (up to 64x)
ACTION_TXN = "Txn"
# What one put adds to a Txn request beyond its key and value (protobuf framing, the lease ID).
PUT_OVERHEAD = 32
# A batch whose keys and values exceed this is split into several Txns, well under etcd's request
# limit: 128 services with large backends lists fit one Txn no more.
TXN_BYTES = 1 << 20


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class SyncStore:
    """Writes the keys of one prefix to etcd (see the module docstring)."""

    def __init__(self, backend: KVBackend, leases: LeaseManager, *, prefix: str, cluster_name: str,
                 synced_key: str | None = None, stale_prefix: str | None = None,
                 metrics: Metrics | None = None, source_cluster: str | None = None,
                 limiter: APILimiter | None = None, batch_size: int = MAX_TXN_OPS,
                 max_batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT,
                 drain_timeout: float = DEFAULT_DRAIN_TIMEOUT, op_timeout: float = DEFAULT_OP_TIMEOUT,
                 progress_interval: float = PROGRESS_INTERVAL,
                 max_request_bytes: int = MAX_REQUEST_BYTES, nospace_reported: bool = False) -> None:
        if not 1 <= batch_size <= MAX_TXN_OPS:
            raise ValueError(f"batch_size must be between 1 and {MAX_TXN_OPS}, got {batch_size}")
        if max_batches_in_flight < 1:
            raise ValueError(f"max_batches_in_flight must be at least 1, got {max_batches_in_flight}")
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
            if not stale.startswith(self._base):
                raise ValueError(f"stale_prefix {stale_prefix!r} is not under the store prefix {self.prefix!r}")
            self._stale_prefix = stale
        self.source_cluster = source_cluster if source_cluster is not None else cluster_name
        self.scope = kvstore_scope(self.prefix)
        self._backend = backend
        self._leases = leases
        self._limiter = limiter if limiter is not None else APILimiter.unlimited()
        self._metrics = metrics
        self._batch_size = batch_size
        self._max_batches = max_batches_in_flight
        self._drain_timeout = drain_timeout
        self._op_timeout = op_timeout
        self._progress_interval = progress_interval
        self._max_request_bytes = max_request_bytes
        self._txn_bytes = min(TXN_BYTES, max_request_bytes)

        self._queue = SyncQueue()
        self._batches: set[asyncio.Task[None]] = set()
        self._canary_written = False
        self._canary_dirty = False
        self._canary_writing = False
        self._cleanup_due = False
        self._pause_until = 0.0
        self._consecutive_failures = 0

        self.synced = asyncio.Event()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task = SupervisedTask(f"sync-store:{self.prefix}", self._run)
        self._unsubscribe: Callable[[], None] | None = None
        self._started_at = 0.0
        self._last_progress = 0.0
        self.keys_written = 0  # puts + deletes applied by this run
        self.batches = 0
        # What tells our own watch events from others' (see ``restore.KeyRestorer``).
        self.own_writes = OwnWrites()
        self.canary_revision = 0
        self._strikes = Strikes()
        self.nospace_reported = nospace_reported

        if metrics is not None:
            self._m_queue = metrics.kvstore_sync_queue_size.labels(self.scope, self.source_cluster)
            self._m_errors = metrics.kvstore_sync_errors_total.labels(self.scope, self.source_cluster)
            self._m_synced = metrics.kvstore_initial_sync_completed.labels(
                self.scope, self.source_cluster, "write")
            self._m_stale = metrics.stale_keys_deleted_total.labels(self.scope)
            self._m_too_large = metrics.kvstore_values_too_large_total.labels(self.scope, self.source_cluster)
            self._m_restored = metrics.kvstore_keys_restored_total.labels(self.scope)
            self._m_nospace = metrics.kvstore_writes_refused_nospace_total.labels(self.scope)
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

    def upsert(self, key: str, value: bytes) -> None:
        """Queue ``prefix/key`` = ``value`` unless ``value`` is what was last upserted."""
        if self._queue.upsert(self._key(key), value) and not self._wake.is_set():
            self._wake.set()

    def upsert_many(self, items: Mapping[str, bytes]) -> None:
        """``upsert`` of every pair of ``items`` (all of them, or none if a key is invalid)."""
        pairs: Iterable[tuple[str, bytes]] = items.items()
        # The usual keys need no cleaning (the negation of `_key`'s fast test), checked in one
        # comprehension rather than one call per key.
        if [k for k in items if not k or k[0] == "/" or k[-1] == "/" or "//" in k]:
            checked = self._key
            pairs = [(checked(k), v) for k, v in pairs]
        if self._queue.upsert_many(pairs) and not self._wake.is_set():
            self._wake.set()

    def delete(self, key: str) -> None:
        """Queue the deletion of ``prefix/key``; a key never upserted in this process is ignored."""
        if self._queue.delete(self._key(key)) and not self._wake.is_set():
            self._wake.set()

    def mark_synced(self) -> None:
        """The initial listing is complete: write the canary once everything queued so far is written."""
        if self._queue.marked:
            return
        waiting = self._queue.mark()
        log.info("Initial listing complete; waiting for queued keys to be written", prefix=self.prefix,
                 queued=waiting)
        self._wake.set()

    def desired(self) -> Mapping[str, bytes]:
        """Read-only live view: relative key -> the value this store wants etcd to hold."""
        return MappingProxyType(self._queue.state)

    @property
    def owned_prefix(self) -> str:
        """The prefix (ending in ``/``) under which every key is this store's to keep or delete."""
        return self._stale_prefix if self._stale_prefix is not None else self._base

    def exported(self) -> Mapping[str, bytes]:
        """Read-only live view: relative key -> value currently in etcd from this store."""
        return MappingProxyType(self._queue.written)

    @property
    def queue_length(self) -> int:
        return len(self._queue.order)

    @property
    def retrying(self) -> int:
        return len(self._queue.retry_due)

    @property
    def pending_writes(self) -> int:
        """Keys queued, in flight or waiting for a retry (0 = everything upserted is in etcd)."""
        return self._queue.pending_writes

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._task.running:
            raise RuntimeError(f"sync store {self.prefix!r} already started")
        self._unsubscribe = self._leases.on_expired(self._on_lease_expired)
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
        self._queue.retry_all_now()
        self._wake.set()
        try:
            async with asyncio.timeout(self._drain_timeout if drain_timeout is None else drain_timeout):
                while self._queue.pending_writes:
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            log.warning("Sync store stopped before every write completed", prefix=self.prefix,
                        pending=self._queue.pending_writes)
        await self._task.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._metrics is not None:
            self._m_synced.set(0)
        log.info("Sync store stopped", prefix=self.prefix)

    # ------------------------------------------------------------------ lease loss

    def _on_lease_expired(self, keys: list[str]) -> None:
        base, cut = self._base, len(self._base)
        canary_lost = self.canary_key in keys and self._canary_written
        # The canary says "every key is in etcd": it comes back only after the keys lost with it.
        requeued = self._queue.lease_lost([k[cut:] for k in keys if k.startswith(base)], hold_sync=canary_lost)
        if canary_lost:
            self._canary_dirty = True
            requeued += 1
        if requeued:
            log.warning("Lease lost; re-writing keys", prefix=self.prefix, keys=requeued)
            self._wake.set()

    def store_lost(self) -> None:
        """The etcd behind us is a new, empty store (restarted without its data, or another
        cluster): write every key again, then the canary; ``synced`` is clear meanwhile."""
        keys = self._queue.store_lost()
        self.own_writes.clear()  # revisions of the old store mean nothing in the new one
        self.canary_revision = 0
        self._cleanup_due = False
        if self._queue.marked:
            self._canary_written = False
            self.synced.clear()
            if self._metrics is not None:
                self._m_synced.set(0)
        log.warning("etcd lost its data; re-writing every key", prefix=self.prefix, keys=keys)
        self._wake.set()

    def retry_now(self) -> None:
        """What etcd refused is worth trying at once (it has space again): no back-off."""
        self._queue.retry_all_now()
        self._pause_until = 0.0
        self._wake.set()

    # ------------------------------------------------------------------ changed behind our back

    def judge(self, key: str, value: bytes | None, revision: int, *, value_known: bool = True) -> Verdict:
        """A watch event on ``prefix/key`` (``value`` None: a delete): see ``_restore.judge``."""
        return judge(self._queue, self.own_writes, key, value, revision, value_known=value_known)

    def settled_keys(self, under: str = "") -> set[str]:
        """Wanted keys (relative, starting with ``under``) whose write is done."""
        return settled(self._queue, under)

    def in_flight(self, key: str) -> bool:
        return key in self._queue.inflight

    def restore(self, key: str, in_etcd: bytes | None) -> float:
        """Write our value of ``key`` back (etcd holds ``in_etcd``); the delay it waits (0: none)."""
        now = asyncio.get_running_loop().time()
        delay = self._strikes.delay(key, now)
        self._queue.rewrite(key, in_etcd, now + delay if delay else 0.0)
        self._restored()
        return delay

    def judge_canary(self, revision: int) -> Verdict:
        """A watch event on the canary (``restore_canary`` if the verdict says so)."""
        if self._canary_writing:
            return Verdict.UNDECIDED  # its revision may be this one
        if revision <= self.canary_revision or not self._canary_written or self._canary_dirty:
            return Verdict.NOTHING  # ours, superseded by ours, or about to be written anyway
        return Verdict.RESTORE

    def restore_canary(self) -> None:
        self._canary_dirty = True
        self._restored()

    def _restored(self) -> None:
        if self._metrics is not None:
            self._m_restored.inc()
        self._wake.set()

    # ------------------------------------------------------------------ worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        try:
            while True:
                now = loop.time()
                if now < self._pause_until:
                    await asyncio.sleep(self._pause_until - now)
                    continue
                queue.promote(now)
                if queue.sync_complete and (not self._canary_written or self._canary_dirty):
                    await self._write_canary()
                    continue
                if queue.order and len(self._batches) < self._max_batches:
                    keys, values = queue.take(self._batch_size)
                    if keys:
                        self._launch(keys, values)
                        continue
                if self._cleanup_due and not self._batches:
                    await self._cleanup()
                    continue
                await self._wait_for_work(now)
        finally:
            await cancel_and_wait(*self._batches)

    async def _wait_for_work(self, now: float) -> None:
        if self._metrics is not None:
            self._m_queue.set(len(self._queue.order))
        self._idle.set()
        self._wake.clear()
        due = self._queue.next_retry()
        try:
            async with asyncio.timeout(None if due is None else max(0.0, due - now)):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _launch(self, keys: list[str], values: list[bytes | None]) -> None:
        if self._metrics is not None:
            self._m_queue.set(len(self._queue.order))
        batch = asyncio.get_running_loop().create_task(self._write_batches(keys, values))
        self._batches.add(batch)
        batch.add_done_callback(self._batch_done)

    def _batch_done(self, batch: asyncio.Task[None]) -> None:
        self._batches.discard(batch)
        self._wake.set()

    def _succeeded(self) -> None:
        self._consecutive_failures = 0

    def _failed(self, what: str, exc: BaseException, **fields: object) -> None:
        self._consecutive_failures += 1
        pause = min(WORKER_PAUSE_MIN * 2.0 ** min(self._consecutive_failures - 1, 20), WORKER_PAUSE_MAX)
        self._pause_until = asyncio.get_running_loop().time() + pause
        # etcd out of space: said once per episode by the owner's ``nospace.SpaceAlarm`` if it
        # has one (``nospace_reported``), not per write.
        report = log.debug if self.nospace_reported and isinstance(exc, NoSpaceError) else log.warning
        report(what, prefix=self.prefix, error=str(exc) or repr(exc),
               consecutive_failures=self._consecutive_failures, **fields)

    async def _write_batches(self, keys: list[str], values: list[bytes | None]) -> None:
        """Write one batch, then, while more keys are queued and nothing failed, the next: a
        writer refills itself at once instead of waiting for the worker's next turn, which keeps
        etcd busy (measured on 213k keys: 115k -> 120-140k keys/s)."""
        queue = self._queue
        while await self._write_batch(keys, values) and queue.order:
            self._wake.set()  # the worker may have a canary or a cleanup to do meanwhile
            keys, values = queue.take(self._batch_size)
            if not keys:
                return

    async def _write_batch(self, keys: list[str], values: list[bytes | None]) -> bool:
        """Write one batch; True if nothing failed. A batch too large for one etcd request goes
        as several Txns; a value etcd can never accept is refused alone (see ``_refuse``)."""
        size = sum(map(len, filter(None, values))) + len(keys) * PUT_OVERHEAD
        if size > self._txn_bytes and (len(keys) > 1 or size > self._max_request_bytes):
            return await self._write_split(keys, values)
        try:
            await self._send(keys, values)
        except RequestTooLargeError as exc:
            # etcd's limit is below ours (--max-request-bytes): halve until the culprit is alone.
            if len(keys) == 1:
                self._refuse(keys, values, str(exc))
                return True
            half = len(keys) // 2
            first = await self._write_batch(keys[:half], values[:half])
            return await self._write_batch(keys[half:], values[half:]) and first
        except asyncio.CancelledError:
            self._queue.failed(keys, asyncio.get_running_loop().time())
            raise
        except Exception as exc:
            self._queue.failed(keys, asyncio.get_running_loop().time())
            self._failed("Failed writing a batch to the kvstore; retrying", exc, keys=len(keys))
            return False
        return True

    async def _write_split(self, keys: list[str], values: list[bytes | None]) -> bool:
        limit, budget = self._max_request_bytes, self._txn_bytes
        ok = True
        chunk_keys: list[str] = []
        chunk_values: list[bytes | None] = []
        size = 0
        for key, value in zip(keys, values, strict=True):
            need = len(self._base) + len(key) + PUT_OVERHEAD + (len(value) if value is not None else 0)
            if need > limit:
                self._refuse([key], [value], f"{need} bytes exceed the request limit of {limit} bytes")
                continue
            if chunk_keys and size + need > budget:
                ok = await self._write_batch(chunk_keys, chunk_values) and ok
                chunk_keys, chunk_values, size = [], [], 0
            chunk_keys.append(key)
            chunk_values.append(value)
            size += need
        if chunk_keys:
            ok = await self._write_batch(chunk_keys, chunk_values) and ok
        return ok

    def _refuse(self, keys: list[str], values: list[bytes | None], reason: str) -> None:
        """etcd cannot take these values: log them by name, count them, and let the rest go on.
        etcd keeps its previous value; a new value of the key is written as usual."""
        for key, value in zip(keys, values, strict=True):
            log.error("Value too large for etcd; not written until it changes", key=self._base + key,
                      size=len(value) if value is not None else 0, limit=self._max_request_bytes,
                      reason=reason)
        if self._metrics is not None:
            self._m_too_large.inc(len(keys))
            self._m_errors.inc(len(keys))
        self._queue.refused(keys)

    async def _send(self, keys: list[str], values: list[bytes | None]) -> None:
        """One Txn (raises on failure; the caller does the queue's bookkeeping of a failure)."""
        base = self._base
        lease_ids: list[int] = []
        started = time.perf_counter()
        try:
            # Relative keys + prefix: the lease manager then shares our key strings; the full
            # keys below live only as long as the Txn.
            put_keys = [k for k, v in zip(keys, values, strict=True) if v is not None]
            lease_ids = await self._leases.leases_for(put_keys, prefix=base) if put_keys else []
            leases = iter(lease_ids)
            ops: list[Op] = [Put(base + k, v, next(leases)) if v is not None else Delete(base + k)
                             for k, v in zip(keys, values, strict=True)]
            async with self._limiter.request(), asyncio.timeout(self._op_timeout):
                revision = await self._backend.apply(ops)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._metrics is not None:
                self._m_txn_fail.observe(time.perf_counter() - started)
                if not isinstance(exc, RequestTooLargeError):
                    self._m_errors.inc(len(keys))
                if isinstance(exc, NoSpaceError):
                    self._m_nospace.inc(len(keys))
            if isinstance(exc, LeaseNotFoundError):
                await self._leases.check(lease_ids)
            raise
        if self._metrics is not None:
            self._m_txn_ok.observe(time.perf_counter() - started)
        if put_keys:
            self.own_writes.record(revision)
        self._succeeded()
        deleted, stale_deleted = self._queue.succeeded(keys, values)
        for key in deleted:
            self._leases.forget(key, prefix=base)
        if stale_deleted and self._metrics is not None:
            self._m_stale.inc(stale_deleted)
        self.keys_written += len(keys)
        self.batches += 1
        self._report_progress()

    def _report_progress(self) -> None:
        if self.synced.is_set():
            return
        now = time.monotonic()
        if now - self._last_progress < self._progress_interval:
            return
        self._last_progress = now
        elapsed = now - self._started_at
        log.info("Initial sync in progress", prefix=self.prefix, written=self.keys_written,
                 queued=len(self._queue.order), retrying=len(self._queue.retry_due),
                 keys_per_second=round(self.keys_written / elapsed) if elapsed > 0 else 0)

    async def _write_canary(self) -> None:
        self._canary_writing = True
        try:
            self.canary_revision = await put_with_lease(
                self._backend, self._leases, self.canary_key, rfc3339_now(), limiter=self._limiter,
                metrics=self._metrics, op_timeout=self._op_timeout)
        except Exception as exc:
            if self._metrics is not None:
                self._m_errors.inc()
            self._failed("Failed writing the sync canary; retrying", exc, key=self.canary_key)
            return
        finally:
            self._canary_writing = False
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
        cut, count = len(self._base), 0
        try:
            async with self._limiter.request(), asyncio.timeout(self._op_timeout):
                # Page by page: one listing of 200k+ keys would add ~60 MB to the process's peak.
                pages = self._backend.iter_prefix(self._stale_prefix, keys_only=True, page_size=CLEANUP_PAGE_SIZE)
                try:
                    async for page, _ in pages:
                        count += self._queue.queue_stale(kv.key[cut:] for kv in page)
                finally:
                    await _aclose(pages)
        except Exception as exc:
            observe(self._metrics, self._stale_prefix, KIND_READ, "ListPrefix",
                    time.perf_counter() - started, False)
            self._failed("Failed listing stale keys; retrying", exc, stale_prefix=self._stale_prefix)
            return
        observe(self._metrics, self._stale_prefix, KIND_READ, "ListPrefix", time.perf_counter() - started, True)
        self._succeeded()
        self._cleanup_due = False
        log.info("Deleting stale keys left over from a previous run", prefix=self.prefix,
                 stale_prefix=self._stale_prefix, count=count)
        if count:
            self._wake.set()
