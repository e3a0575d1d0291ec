"""Decide when a connection to a remote etcd must be torn down and re-created.

Signals, each raising ``ConnectionLostError`` out of ``ConnectionWatchdog.run``:

- stale heartbeat: no PUT on ``cilium/.heartbeat`` for longer than ``heartbeat_timeout``
  (upstream: 2 x the 60 s write interval); deletions are not heartbeats;
- the etcd cluster ID changed (a different etcd answers on the same address);
- the store was reset: the revision went backwards (an etcd restarted with an empty data dir
  keeps its cluster ID when its name and peer URLs are unchanged, and a watch resuming at the old
  revision would silently wait for revisions that the new store reaches much later), or the raft
  term went backwards (a new store whose revision already passed the old one's);
- ``max_failures`` consecutive failed status probes (the remote is unreachable).

It only reads from the remote; the status text it keeps is what ``/v1/cluster`` reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from apiserver._logging import get_logger
from apiserver._tasks import first_error
from apiserver.kvstore import (
    ClusterIDChangedError,
    CompactedError,
    EventType,
    KVBackend,
    KVStoreError,
    Status,
)
from apiserver.paths import HEARTBEAT_PATH

log = get_logger(__name__)


class ConnectionLostError(KVStoreError):
    """The remote connection is unusable; reconnect."""


def describe_status(status: Status, endpoint: str = "") -> str:
    """Upstream-like one-line status of a healthy connection."""
    where = f"{endpoint} - " if endpoint else ""
    return f"etcd: 1/1 connected: {where}{status.version}, ID: {status.cluster_id:x}"


class ConnectionWatchdog:
    def __init__(self, cluster: str, first_status: Status, *, heartbeat_timeout: float,
                 status_interval: float, max_failures: int, request_timeout: float,
                 endpoint: str = "", on_status: Callable[[str], None] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self._cluster = cluster
        self._cluster_id = first_status.cluster_id
        self._revision = first_status.revision
        self._raft_term = first_status.raft_term
        self._heartbeat_timeout = heartbeat_timeout
        self._status_interval = status_interval
        self._max_failures = max_failures
        self._request_timeout = request_timeout
        self._endpoint = endpoint
        self._on_status = on_status or (lambda _text: None)
        self._clock = clock or asyncio.get_running_loop().time
        self._last_heartbeat = self._clock()
        self._on_status(describe_status(first_status, endpoint))

    async def run(self, backend: KVBackend) -> None:
        """Until cancelled, or until the connection must be re-created (the reason is raised)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._probe_status(backend), name=f"status:{self._cluster}")
                if self._heartbeat_timeout > 0:
                    group.create_task(self._watch_heartbeat(backend), name=f"heartbeat:{self._cluster}")
                    group.create_task(self._check_heartbeat(), name=f"heartbeat-check:{self._cluster}")
        except BaseExceptionGroup as group_error:
            raise first_error(group_error) from None

    def check_status(self, status: Status) -> None:
        """Raise if ``status`` shows a different or reset store (pure check, also unit-tested)."""
        if status.cluster_id != self._cluster_id:
            raise ClusterIDChangedError(
                f"etcd cluster ID changed from {self._cluster_id:x} to {status.cluster_id:x}")
        if status.revision < self._revision:
            raise ConnectionLostError(
                f"etcd store was reset: revision went back from {self._revision} to {status.revision}")
        if status.raft_term < self._raft_term:
            # Also a new store, even if its revision already passed the old one's.
            raise ConnectionLostError(
                f"etcd store was reset: raft term went back from {self._raft_term} to {status.raft_term}")
        self._revision = status.revision
        self._raft_term = status.raft_term

    async def _probe_status(self, backend: KVBackend) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._status_interval)
            try:
                async with asyncio.timeout(self._request_timeout):
                    status = await backend.status()
            except (KVStoreError, TimeoutError) as exc:
                if isinstance(exc, ClusterIDChangedError):
                    raise
                failures += 1
                self._on_status(f"etcd: status check failed ({failures}/{self._max_failures}): {exc}")
                log.warning("Status check of remote etcd failed", cluster=self._cluster,
                            failures=failures, error=str(exc))
                if failures >= self._max_failures:
                    raise ConnectionLostError(
                        f"{failures} consecutive status checks failed, last: {exc}") from exc
                continue
            failures = 0
            self.check_status(status)
            self._on_status(describe_status(status, self._endpoint))

    async def _watch_heartbeat(self, backend: KVBackend) -> None:
        while True:
            try:
                async for batch in backend.watch(HEARTBEAT_PATH, start_revision=0):
                    if any(e.type is EventType.PUT and e.key == HEARTBEAT_PATH for e in batch.events):
                        self._last_heartbeat = self._clock()
            except CompactedError:
                continue  # only "the latest" matters here: start again from now
            raise ConnectionLostError("heartbeat watch ended unexpectedly")

    async def _check_heartbeat(self) -> None:
        interval = max(0.05, min(self._heartbeat_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(interval)
            age = self._clock() - self._last_heartbeat
            if age > self._heartbeat_timeout:
                raise ConnectionLostError(
                    f"no heartbeat from the remote etcd for {age:.0f}s "
                    f"(timeout {self._heartbeat_timeout:g}s)")
