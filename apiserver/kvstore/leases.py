"""Leases for every key the process writes: grant, share, keep alive, and notice when one is lost.

Upstream behaviour: TTL from ``--kvstore-lease-ttl`` (default 15m, valid 25s ..
24h), at most 1000 keys per lease (a new lease is granted when the current one is full), the
lease kept alive roughly every TTL/3, and when a lease is lost (keepalive or put answered with
``LeaseNotFoundError``) every key that was attached to it is handed to the registered observers,
so the sync stores write them again under a live lease.

One ``LeaseManager`` per process, shared by all writers. It only grants, refreshes and revokes
leases; it never writes keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from itertools import filterfalse

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.kvstore._backend import KVBackend, KVStoreError, LeaseNotFoundError
from apiserver.kvstore._supervise import SupervisedTask

__all__ = [
    "DEFAULT_LEASE_TTL",
    "MAX_KEYS_PER_LEASE",
    "MAX_LEASE_TTL",
    "MIN_LEASE_TTL",
    "LeaseManager",
    "validate_lease_ttl",
]

log = get_logger(__name__)

DEFAULT_LEASE_TTL = 900.0
MIN_LEASE_TTL = 25.0
MAX_LEASE_TTL = 86400.0
MAX_KEYS_PER_LEASE = 1000
_KEEPALIVE_TIMEOUT_MAX = 10.0
_RETRY_MIN = 0.5

ExpiredCallback = Callable[[list[str]], None]


def validate_lease_ttl(seconds: float) -> float:
    """Check ``--kvstore-lease-ttl`` (seconds) against upstream's bounds; return it unchanged."""
    if not MIN_LEASE_TTL <= seconds <= MAX_LEASE_TTL:
        raise ValueError(f"--kvstore-lease-ttl must be between {MIN_LEASE_TTL:g}s and {MAX_LEASE_TTL:g}s "
                         f"(24h), got {seconds:g}s")
    return seconds


class LeaseManager:
    """Hands out lease IDs per key and keeps the leases alive (see the module docstring)."""

    def __init__(self, backend: KVBackend, ttl: float = DEFAULT_LEASE_TTL, *,
                 max_keys_per_lease: int = MAX_KEYS_PER_LEASE, keepalive_interval: float | None = None,
                 grant_ahead: bool = False) -> None:
        self._backend = backend
        self.ttl = ttl
        self.max_keys_per_lease = max_keys_per_lease
        # Grant the next lease in the background once the current one is half full. Without it,
        # bulk writers stop every 1000 keys for a grant that queues behind their own Txns in etcd:
        # at 100k keys/s, a stall every 10 ms.
        self._grant_ahead = grant_ahead
        self._spare = 0  # a granted lease no key uses yet, next in line
        self._granting_ahead: asyncio.Task[None] | None = None
        self.keepalive_interval = keepalive_interval if keepalive_interval is not None else ttl / 3
        # Key prefix -> key relative to it -> lease. Sync stores pass their prefix and relative
        # keys, so this map shares the key strings they already hold: building full keys here
        # cost 18 MB of strings per 213k keys. Keys given without a prefix live under "".
        self._keys: dict[str, dict[str, int]] = {}
        # Lease -> how many keys it holds. Only counts: the keys are in ``_keys`` already, and a
        # second copy per lease (a set of 200k strings) is 10+ MB; lease loss, the one reader of
        # "keys of a lease", is rare enough to scan ``_keys``.
        self._leases: dict[int, int] = {}
        self._current = 0
        self._grant_lock = asyncio.Lock()
        self._observers: list[ExpiredCallback] = []
        self._task = SupervisedTask("lease-keepalive", self._keepalive_loop)

    # ------------------------------------------------------------------ key -> lease

    @property
    def lease_count(self) -> int:
        return len(self._leases)

    def lease_of(self, key: str) -> int:
        """The lease ``key`` (a full key) is attached to, or 0."""
        for prefix, group in self._keys.items():
            if key.startswith(prefix):
                lease = group.get(key[len(prefix):], 0)
                if lease:
                    return lease
        return 0

    def keys_of(self, lease_id: int) -> set[str]:
        """The full keys attached to ``lease_id``."""
        return {prefix + key for prefix, group in self._keys.items()
                for key, lease in group.items() if lease == lease_id}

    async def lease_for(self, key: str) -> int:
        """The lease to put ``key`` with (its current one, or a slot on a live lease)."""
        return (await self.leases_for((key,)))[0]

    async def leases_for(self, keys: Sequence[str], *, prefix: str = "") -> list[int]:
        """``lease_for`` for a whole batch of the keys ``prefix + key``: awaits only when a new
        lease must be granted. A key must always be given with the same ``prefix``."""
        assigned = self._keys.setdefault(prefix, {})
        new = list(dict.fromkeys(filterfalse(assigned.__contains__, keys)))
        while new:
            members = self._leases.get(self._current)
            if members is None or members >= self.max_keys_per_lease:
                await self._make_room()
                new = [k for k in new if k not in assigned]  # another writer may have placed some
                continue
            take = new[:self.max_keys_per_lease - members]
            members += len(take)
            self._leases[self._current] = members
            assigned.update(dict.fromkeys(take, self._current))
            new = new[len(take):]
            if (self._grant_ahead and not self._spare and self._granting_ahead is None
                    and 2 * members >= self.max_keys_per_lease):
                self._granting_ahead = asyncio.get_running_loop().create_task(self._grant_spare())
        return list(map(assigned.__getitem__, keys))

    async def _grant_spare(self) -> None:
        try:
            async with self._grant_lock:
                if not self._spare:
                    lease = await self._backend.grant_lease(self.ttl)
                    self._leases[lease] = 0
                    self._spare = lease
                    log.info("New lease successfully acquired", lease_id=f"{lease:x}", ttl=self.ttl)
        except KVStoreError as exc:  # the next writer that needs room grants one itself, or fails
            log.warning("Unable to grant a lease ahead of need", error=str(exc))
        finally:
            self._granting_ahead = None

    def forget(self, key: str, *, prefix: str = "") -> None:
        """``prefix + key`` was deleted: free its slot on its lease."""
        group = self._keys.get(prefix)
        lease = group.pop(key, None) if group is not None else None
        if lease is not None and lease in self._leases:
            self._leases[lease] -= 1

    async def _make_room(self) -> None:
        """Make ``self._current`` a live lease with a free slot, granting one if none has room."""
        async with self._grant_lock:
            spare, self._spare = self._spare, 0
            if spare in self._leases:
                self._current = spare
                return
            for lease, members in self._leases.items():
                if members < self.max_keys_per_lease:
                    self._current = lease
                    return
            lease = await self._backend.grant_lease(self.ttl)
            self._leases[lease] = 0
            self._current = lease
            log.info("New lease successfully acquired", lease_id=f"{lease:x}", ttl=self.ttl)

    # ------------------------------------------------------------------ loss

    def on_expired(self, callback: ExpiredCallback) -> Callable[[], None]:
        """Call ``callback(keys)`` with the full keys of every lost lease; returns an unsubscribe."""
        self._observers.append(callback)

        def unsubscribe() -> None:
            if callback in self._observers:
                self._observers.remove(callback)

        return unsubscribe

    def lease_lost(self, lease_id: int) -> None:
        """Forget a lease the server no longer has and tell the observers which keys it held."""
        if self._leases.pop(lease_id, None) is None:
            return
        keys = sorted(self.keys_of(lease_id))
        for group in self._keys.values():
            for key in [k for k, lease in group.items() if lease == lease_id]:
                del group[key]
        if self._current == lease_id:
            self._current = 0
        log.warning("Lease expired", lease_id=f"{lease_id:x}", keys=len(keys))
        for callback in list(self._observers):
            try:
                callback(keys)
            except Exception:
                log.exception("Lease expiry observer failed", lease_id=f"{lease_id:x}")

    def reset(self) -> None:
        """The store behind us lost every lease (restarted empty, or another etcd cluster): forget
        them all without telling the observers; the caller rewrites every key itself."""
        if self._leases:
            log.warning("Forgetting every lease: etcd lost them", leases=len(self._leases))
        self._leases.clear()
        self._keys.clear()
        self._current = self._spare = 0

    async def check(self, lease_ids: Iterable[int]) -> list[int]:
        """Refresh each lease once; the ones the server no longer has are declared lost.

        Writers call this when a put failed with ``LeaseNotFoundError`` (which does not say which
        lease of a batch was gone). Other errors are logged and leave the lease alone.
        """
        lost: list[int] = []
        for lease_id in dict.fromkeys(lease_ids):
            if lease_id not in self._leases:
                continue
            try:
                await self._backend.keepalive(lease_id)
            except LeaseNotFoundError:
                self.lease_lost(lease_id)
                lost.append(lease_id)
            except KVStoreError as exc:
                log.warning("Unable to check lease", lease_id=f"{lease_id:x}", error=str(exc))
        return lost

    # ------------------------------------------------------------------ keepalive

    async def _keepalive_once(self) -> bool:
        """One keepalive round over every lease; False if any refresh failed for another reason."""
        healthy = True
        timeout = max(1.0, min(self.keepalive_interval, _KEEPALIVE_TIMEOUT_MAX))
        for lease_id in list(self._leases):
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow our own cancellation.
                async with asyncio.timeout(timeout):
                    await self._backend.keepalive(lease_id)
            except LeaseNotFoundError:
                self.lease_lost(lease_id)
            except (KVStoreError, TimeoutError) as exc:
                healthy = False
                log.warning("Unable to renew lease", lease_id=f"{lease_id:x}", error=str(exc) or repr(exc))
        return healthy

    async def _keepalive_loop(self) -> None:
        delay = self.keepalive_interval
        while True:
            await asyncio.sleep(delay)
            if await self._keepalive_once():
                delay = self.keepalive_interval
            else:
                # Retry sooner than the normal period: the lease TTL keeps running meanwhile.
                delay = min(self.keepalive_interval, max(_RETRY_MIN, delay / 2))

    def start(self) -> None:
        self._task.start()

    async def stop(self, *, revoke: bool = False) -> None:
        """Stop the keepalives. Upstream does not revoke on SIGTERM (keys outlive a restart by up
        to one TTL); ``revoke=True`` deletes every key we attached, at once."""
        await self._task.stop()
        await cancel_and_wait(self._granting_ahead)
        if not revoke:
            return
        for lease_id in list(self._leases):
            try:
                await self._backend.revoke_lease(lease_id)
            except KVStoreError as exc:
                log.warning("Unable to revoke lease", lease_id=f"{lease_id:x}", error=str(exc))
        self._leases.clear()
        self._keys.clear()
        self._current = self._spare = 0
