"""Keeps ``cilium/cluster-config/<C>`` equal to our cluster config (the I/O side).

"Update if different": get the key; put it (with our lease) if it is missing, attached to a
lease that is not ours, or holds other bytes. ``write_once()`` is called at start-up before
anything else is written; afterwards the enforcer re-checks every 5 minutes and -- like 1.20-dev,
better than 1.19 -- also watches the key and rewrites it as soon as someone else modifies or
deletes it (or its lease is lost). Failures are retried with back-off, never fatal here.

The value bytes come from ``apiserver.convert.clusterconfig``; this module never builds them.
Whether to write at all with ``--cluster-id=0`` is the caller's decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver.kvstore._backend import CompactedError, EventType, KVBackend, StoreResetError
from apiserver.kvstore._supervise import SupervisedTask
from apiserver.kvstore._writes import put_with_lease
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.metrics import Metrics
from apiserver.paths import CLUSTER_CONFIG_ENFORCE_INTERVAL, cluster_config_key

__all__ = ["ClusterConfigEnforcer"]

log = get_logger(__name__)

RETRY_MIN = 1.0
WRITE_TIMEOUT = 25.0


class ClusterConfigEnforcer:
    """Writes the cluster config, then keeps it in place (see the module docstring)."""

    def __init__(self, backend: KVBackend, leases: LeaseManager, cluster_name: str, value: bytes,
                 interval: float = CLUSTER_CONFIG_ENFORCE_INTERVAL, *, limiter: APILimiter | None = None,
                 metrics: Metrics | None = None, write_timeout: float = WRITE_TIMEOUT,
                 retry_min: float = RETRY_MIN) -> None:
        self._backend = backend
        self._leases = leases
        self.key = cluster_config_key(cluster_name)
        self.value = value
        self.interval = interval
        self._put = functools.partial(put_with_lease, backend, leases, limiter=limiter, metrics=metrics,
                                      op_timeout=write_timeout)
        self._retry_min = retry_min
        self._kick = asyncio.Event()
        self._last_revision = 0  # of our last put, to recognise our own watch events
        self._known_revision = 0  # the key's revision as of our last look: the watch resumes after it
        self._enforcer = SupervisedTask(f"cluster-config-enforcer:{self.key}", self._enforce_loop)
        self._watcher = SupervisedTask(f"cluster-config-watcher:{self.key}", self._watch_loop)
        self._unsubscribe: Callable[[], None] | None = None
        self.writes = 0
        self.failures = 0

    async def write_once(self) -> bool:
        """Make the key hold our value on our lease; True if a put was needed. Raises on failure."""
        current = await self._backend.get(self.key)
        ours = self._leases.lease_of(self.key)
        if current is not None and current.value == self.value and ours and current.lease == ours:
            self._known_revision = max(self._known_revision, current.mod_revision)
            return False
        revision = await self._put(self.key, self.value)
        self._last_revision = self._known_revision = revision
        self.writes += 1
        reason = "missing" if current is None else ("modified" if current.value != self.value else "lease")
        log.info("Cluster configuration written", key=self.key, reason=reason, revision=revision)
        return True

    def kick(self) -> None:
        """Check (and write) the key now rather than at the next interval or retry."""
        self._kick.set()

    def _on_lease_expired(self, keys: list[str]) -> None:
        if self.key in keys:
            self._kick.set()

    async def _enforce_loop(self) -> None:
        retry = Backoff(min(self._retry_min, self.interval), self.interval, jitter=0.0)
        while True:
            self._kick.clear()
            try:
                await self.write_once()
            except Exception as exc:
                self.failures += 1
                wait = retry.next()
                log.warning("Unable to enforce the cluster configuration; retrying", key=self.key,
                            error=str(exc) or repr(exc), retry_in=wait)
            else:
                wait = self.interval
                retry.reset()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()

    async def _watch_loop(self) -> None:
        while True:
            start = self._known_revision + 1 if self._known_revision else 0
            watch = self._backend.watch(self.key, start_revision=start)
            try:
                async for batch in watch:
                    foreign = [ev for ev in batch.events if ev.key == self.key and not (
                        ev.type is EventType.PUT and ev.mod_revision == self._last_revision)]
                    if batch.events:
                        self._known_revision = max(self._known_revision, batch.events[-1].mod_revision)
                    if foreign:
                        # Our own put seen before its revision is known carries our bytes: the
                        # check it triggers finds the key in place; not worth a warning.
                        changed = [ev for ev in foreign if ev.type is EventType.DELETE or ev.value != self.value]
                        report = log.warning if changed else log.debug
                        report("Cluster configuration changed by someone else; restoring it",
                               key=self.key, event=foreign[-1].type.value)
                        self._kick.set()
            except (CompactedError, StoreResetError):
                # We may have missed a change (history compacted, or the store reset): look
                # again and watch from now on.
                self._known_revision = 0
                self._kick.set()
            finally:
                aclose = getattr(watch, "aclose", None)
                if aclose is not None:
                    await aclose()

    def start(self) -> None:
        self._unsubscribe = self._leases.on_expired(self._on_lease_expired)
        self._enforcer.start()
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()
        await self._enforcer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
