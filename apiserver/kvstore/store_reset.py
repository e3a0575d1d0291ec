"""Notice that the etcd we write to is no longer the store we filled, and say whether it answers.

An etcd restarted with an empty data dir (a pod's emptyDir) keeps its cluster ID when its member
name and peer URLs are unchanged, and accepts watches at revisions it has not reached yet: nothing
fails, the data is just gone. The signals, read from ``Status`` every ``interval`` seconds:

- the revision went backwards (a store's revision only grows);
- the raft term went backwards (it only grows over a cluster's life; a new one starts at 1-2), which
  catches a reset even when our rewrites pushed the new store's revision past the old one;
- the etcd cluster ID changed (another etcd cluster answers at the address).

Any of them calls ``on_reset(reason)`` once, awaited, then the new store becomes the baseline. So
does ``notice(reason)``, at once: a watch of the owner found that it cannot resume on this store
(``StoreResetError``), which also catches a new store that already reached the last revision polled.
KVStoreMesh's remote watchdog (``kvstoremesh/_watchdog.py``) checks the same signals for its
remotes. This module only reads; what to do about a reset is the owner's business.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from apiserver._logging import get_logger
from apiserver.kvstore._backend import ClusterIDChangedError, KVBackend, KVStoreError, Status
from apiserver.kvstore._supervise import SupervisedTask
from apiserver.kvstore.nospace import SpaceAlarm

__all__ = ["StoreResetMonitor", "reset_reason"]

log = get_logger(__name__)

DEFAULT_INTERVAL = 5.0
DEFAULT_TIMEOUT = 10.0


def reset_reason(before: Status, now: Status) -> str | None:
    """Why ``now`` is not the store ``before`` described, or None if it is (pure)."""
    if now.cluster_id != before.cluster_id:
        return f"etcd cluster ID changed from {before.cluster_id:x} to {now.cluster_id:x}"
    if now.revision < before.revision:
        return f"etcd revision went back from {before.revision} to {now.revision}"
    if now.raft_term < before.raft_term:
        return f"etcd raft term went back from {before.raft_term} to {now.raft_term}"
    return None


class StoreResetMonitor:
    """See the module docstring. ``reachable`` is whether the last status request succeeded.

    ``forget_cluster_id``: called before re-reading the status when the client itself refused a
    response from another etcd cluster (``EtcdClient.forget_cluster_id``), so that it adopts the
    new one. ``space``: told every status (etcd's NOSPACE alarm, ``nospace``).
    """

    def __init__(self, backend: KVBackend, on_reset: Callable[[str], Awaitable[None]], *,
                 interval: float = DEFAULT_INTERVAL, request_timeout: float = DEFAULT_TIMEOUT,
                 forget_cluster_id: Callable[[], None] | None = None,
                 space: SpaceAlarm | None = None) -> None:
        self._backend = backend
        self.space = space
        self._on_reset = on_reset
        self.interval = interval
        self._request_timeout = request_timeout
        self._forget_cluster_id = forget_cluster_id
        self._baseline: Status | None = None
        self.reachable = True
        self.resets = 0
        self.last_reason: str | None = None
        self._noticed: str | None = None
        self._kick = asyncio.Event()
        self._task = SupervisedTask("etcd-store-reset-monitor", self._loop)

    def notice(self, reason: str) -> None:
        """The store was reset, as something else found out: handle it now (see the module docstring)."""
        if self._noticed is None:
            self._noticed = reason
        self._kick.set()

    async def _loop(self) -> None:
        while True:
            self._kick.clear()
            await self.check_once()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._kick.wait()

    async def _status(self) -> Status:
        async with asyncio.timeout(self._request_timeout):
            return await self._backend.status()

    async def check_once(self) -> str | None:
        """One status check; the reset reason if the store was reset (``on_reset`` was awaited)."""
        changed_id = False
        try:
            try:
                status = await self._status()
            except ClusterIDChangedError:
                if self._forget_cluster_id is None:
                    raise
                self._forget_cluster_id()
                changed_id = True
                status = await self._status()
        except (KVStoreError, TimeoutError) as exc:
            if self.reachable:
                log.warning("etcd status check failed", error=str(exc) or repr(exc))
            self.reachable = False
            return None
        if not self.reachable:
            log.info("etcd answers again", revision=status.revision, cluster_id=f"{status.cluster_id:x}")
        self.reachable = True
        if self.space is not None:
            self.space.observe(status)
        before, noticed, self._noticed = self._baseline, self._noticed, None
        if before is None and noticed is None:
            self._baseline = status
            return None
        reason = reset_reason(before, status) if before is not None else None
        if reason is None and changed_id:
            reason = "etcd cluster ID changed"
        if reason is None:
            reason = noticed
        if reason is None:
            self._baseline = status
            return None
        self.resets += 1
        self.last_reason = reason
        log.warning("etcd store was reset; writing everything again", reason=reason)
        await self._on_reset(reason)
        self._baseline = status  # the new store, as found
        # What watches noticed until now was this reset: the owner has just handled it.
        self._noticed = None
        self._kick.clear()
        return reason

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
