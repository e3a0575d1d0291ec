"""One remote cluster: its connection state machine, its reflectors, its status and its removal.

Per connection attempt: connect with the cluster's etcd client YAML, read and
validate ``cilium/cluster-config/<R>`` (retried for ``cluster_config_timeout``), reserve its
cluster ID, write the local ``cilium/cluster-config/<R>`` (``cached: true``), then run the
reflectors -- gated on the remote's canaries when it advertises ``syncedCanaries`` -- next to a
watchdog. Any error ends the attempt; the next one starts after a doubling back-off (reset once
a connection got established), and immediately when the config file changed.

A remote that advertises another cluster ID than the one its cache was filled under (its etcd was
re-created for another cluster) is handled as upstream's agent does (``remote_cluster.go``,
``onUpdateConfig``): everything cached under the old ID is drained and the old ID released before
the new one is reserved. A new ID that is ours or another remote's is refused: nothing stays
cached for the remote (no cluster config, no entries, no canaries), ``/v1/cluster`` shows the
advertised ID with ``ready: false`` and the reason, and every attempt is refused again until the
remote advertises a free ID.

Every failed attempt is counted (``remote_cluster_failures``, ``remote_cluster_last_failure_ts``)
and reported by ``status()``; other remotes are never affected.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait, first_error, wait_event
from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstore import ClusterIDChangedError, KVBackend, KVStoreError, UnavailableError
from apiserver.kvstoremesh._canary import WatchStoreManager
from apiserver.kvstoremesh._config import MeshConfig
from apiserver.kvstoremesh._drain import drain_cluster
from apiserver.kvstoremesh._ids import ClusterIDConflictError, ClusterIDs
from apiserver.kvstoremesh._mirror import ResourceMirror, WriterFactory
from apiserver.kvstoremesh._remoteconfig import (
    InvalidRemoteConfigError,
    RemoteConfig,
    cached_config_value,
    parse_remote_config,
)
from apiserver.kvstoremesh._resources import RESOURCES, local_cluster_config_key
from apiserver.kvstoremesh._status import (
    RemoteClusterConfigStatus,
    RemoteClusterStatus,
    RemoteClusterSyncedStatus,
)
from apiserver.kvstoremesh._watchdog import ConnectionWatchdog, describe_status
from apiserver.metrics import Metrics

log = get_logger(__name__)

WAITING = "Waiting for initial connection to be established"

Connector = Callable[[str, str], Awaitable[KVBackend]]  # (cluster name, config file path)


class ConfigEnforcer(Protocol):
    """Keeps one local ``cilium/cluster-config/<R>`` key at a value (``ClusterConfigEnforcer``)."""

    async def write_once(self) -> bool: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


EnforcerFactory = Callable[[str, bytes], ConfigEnforcer]  # (cluster name, value)


class ClusterConfigMissingError(KVStoreError):
    """The remote has no ``cilium/cluster-config/<R>`` key."""


@dataclass(slots=True)
class MeshContext:
    """What every remote cluster of one KVStoreMesh shares."""

    local: ClusterInfo
    backend: KVBackend  # the local etcd
    config: MeshConfig
    metrics: Metrics
    ids: ClusterIDs
    connector: Connector
    writer_factory: WriterFactory
    enforcer_factory: EnforcerFactory


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class RemoteCluster:
    def __init__(self, name: str, path: str, ctx: MeshContext) -> None:
        self.name = name
        self.path = path
        self._ctx = ctx
        self._cfg = ctx.config
        self.reflectors = self._new_reflectors()
        self.bootstrap_done = asyncio.Event()  # synced, or excluded from readiness
        self._connected_event = asyncio.Event()
        self._restart = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._ttl_task: asyncio.Task[None] | None = None
        self._enforcer: ConfigEnforcer | None = None
        self._enforced_value: bytes | None = None
        # Status (read by status()).
        self._status_text = WAITING
        self._backend_connected = False
        self._established = False
        self._was_established = False  # the last attempt got as far as mirroring
        self._remote_config: RemoteClusterConfigStatus | None = None
        self._service_exports_enabled: bool | None = None
        self._failures = 0
        self._last_failure: _dt.datetime | None = None
        self._refused_id: int | None = None  # the ID last refused; its drain is done
        self._labels = ctx.metrics.remote_cluster_readiness_status.labels(name)

    def _new_reflectors(self) -> list[ResourceMirror]:
        return [ResourceMirror(r, self.name, self._ctx.writer_factory(r, self.name), metrics=self._ctx.metrics,
                               page_size=self._cfg.list_page_size) for r in RESOURCES]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._main is not None:
            raise RuntimeError(f"remote cluster {self.name!r} already started")
        self._labels.set(0)
        self._ctx.metrics.remote_cluster_failures.labels(self.name).set(0)
        self._main = asyncio.create_task(self._lifecycle(), name=f"remote:{self.name}")

    def reconnect(self, path: str) -> None:
        """The config file changed: drop the current connection and connect again at once."""
        self.path = path
        self._restart.set()

    async def stop(self) -> None:
        """Disconnect and stop writing; cached data stays (process shutdown)."""
        main, self._main = self._main, None
        await cancel_and_wait(main, self._ttl_task)
        self._ttl_task = None
        await self._stop_enforcer()
        # Each writer flushes what it has queued (bounded by its drain timeout): in parallel.
        await asyncio.gather(*(r.writer.stop() for r in self.reflectors))
        self.bootstrap_done.set()  # a stopped remote never holds readiness back
        self._labels.set(0)

    async def remove(self) -> None:
        """The config file is gone: disconnect, then drain the cache (unless disabled)."""
        await self.stop()
        self._ctx.ids.release(self.name)
        for metric in (self._ctx.metrics.remote_cluster_readiness_status,
                       self._ctx.metrics.remote_cluster_failures,
                       self._ctx.metrics.remote_cluster_last_failure_ts):
            try:
                metric.remove(self.name)
            except KeyError:
                pass
        if self._cfg.disable_drain_on_disconnection:
            log.warning("Remote cluster disconnected, but cached data removal is disabled. Reconnecting to "
                        "the same cluster without first restarting KVStoreMesh may lead to "
                        "inconsistencies", cluster=self.name)
            return
        await drain_cluster(self._ctx.backend, self.name, grace_period=self._cfg.drain_grace_period,
                            retries=self._cfg.drain_retries, backoff=self._cfg.drain_backoff,
                            request_timeout=self._cfg.request_timeout)

    async def _lifecycle(self) -> None:
        for reflector in self.reflectors:
            await reflector.writer.start()
        readiness = asyncio.create_task(self._wait_bootstrap(), name=f"bootstrap:{self.name}")
        try:
            await self._run()
        finally:
            await cancel_and_wait(readiness)

    async def _wait_bootstrap(self) -> None:
        if not await wait_event(self._connected_event, self._cfg.per_cluster_ready_timeout):
            log.info("Remote cluster did not connect within timeout, removing from readiness checks",
                     cluster=self.name, timeout=f"{self._cfg.per_cluster_ready_timeout:g}s")
            self.bootstrap_done.set()
            return
        await asyncio.gather(*(r.writer.synced.wait() for r in self.reflectors))
        log.info("Remote cluster synchronized", cluster=self.name)
        self.bootstrap_done.set()

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        cfg = self._cfg
        backoff = Backoff(min(cfg.reconnect_backoff_min, cfg.reconnect_backoff_max), cfg.reconnect_backoff_max,
                          jitter=0.0)
        while True:
            self._restart.clear()
            attempt = asyncio.create_task(self._connect_once(), name=f"connect:{self.name}")
            restart = asyncio.create_task(self._restart.wait(), name=f"restart:{self.name}")
            try:
                await asyncio.wait({attempt, restart}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                restarted = restart.done() and not attempt.done()
                await cancel_and_wait(attempt, restart)
            if restarted:
                log.info("etcd configuration has changed, re-creating connection", cluster=self.name)
                backoff.reset()
                continue
            exc = attempt.exception() if not attempt.cancelled() else None
            self._record_failure(first_error(exc) if exc is not None
                                 else UnavailableError("remote connection ended"))
            if self._was_established:
                backoff.reset()
            if await wait_event(self._restart, backoff.next()):
                backoff.reset()

    async def _connect_once(self) -> None:
        self._was_established = False
        self._remote_config = None
        if self._failures == 0 and self._refused_id is None:
            self._status_text = WAITING
        # Otherwise the status keeps the last failure's text (why it is refused, or why the previous
        # attempt failed) until this attempt connects or fails in its turn.
        try:
            async with asyncio.timeout(self._cfg.connect_timeout):
                backend = await self._ctx.connector(self.name, self.path)
        except TimeoutError:
            raise UnavailableError(
                f"timed out connecting to the remote etcd after {self._cfg.connect_timeout:g}s") from None
        try:
            await self._run_connection(backend)
        finally:
            self._backend_connected = False
            self._established = False
            self._labels.set(0)
            if self._was_established:
                self._start_ttl_timer()
            try:
                async with asyncio.timeout(self._cfg.request_timeout):
                    await asyncio.shield(backend.close())
            except Exception as exc:  # closing a broken connection may fail; nothing to do about it
                log.debug("Error closing remote connection", cluster=self.name, error=_error_text(exc))

    async def _run_connection(self, backend: KVBackend) -> None:
        async with asyncio.timeout(self._cfg.request_timeout):
            first_status = await backend.status()
        self._backend_connected = True
        log.info("Connection to remote cluster established", cluster=self.name,
                 etcd_cluster_id=f"{first_status.cluster_id:x}")
        endpoint = str(getattr(backend, "endpoint", ""))
        watchdog = ConnectionWatchdog(
            self.name, first_status, heartbeat_timeout=self._cfg.heartbeat_timeout,
            status_interval=self._cfg.status_check_interval, max_failures=self._cfg.max_status_failures,
            request_timeout=self._cfg.request_timeout, endpoint=endpoint, on_status=self._set_status_text)
        self._remote_config = RemoteClusterConfigStatus(required=True)
        remote = await self._retrieve_config(backend)
        self._remote_config = RemoteClusterConfigStatus(
            required=True, retrieved=True, cluster_id=remote.id, kvstoremesh=remote.cached,
            sync_canaries=remote.synced_canaries, service_exports_enabled=remote.service_exports_enabled,
            endpoint_slices_export_mode=remote.endpoint_slices_export_mode)
        await self._reserve_id(remote.id)
        self._service_exports_enabled = remote.service_exports_enabled
        log.info("Found remote cluster configuration", cluster=self.name, cluster_id=remote.id,
                 cached=remote.cached, synced_canaries=remote.synced_canaries)
        self._on_connected()
        await self._enforce_local_config(remote)

        manager = WatchStoreManager(self.name, wait_for_canaries=remote.synced_canaries)
        for reflector in self.reflectors:
            reflector.register(manager, backend, remote_cached=remote.cached,
                               service_exports_enabled=remote.service_exports_enabled)
        self._established = self._was_established = True
        self._status_text = describe_status(first_status, endpoint)
        self._labels.set(1)
        async with asyncio.TaskGroup() as group:
            group.create_task(manager.run(backend), name=f"watches:{self.name}")
            group.create_task(watchdog.run(backend), name=f"watchdog:{self.name}")
        raise UnavailableError("remote watches ended unexpectedly")

    async def _reserve_id(self, cluster_id: int) -> None:
        """Reserve the advertised ID; drain what was cached under another one (see the module
        docstring). Raises ``ClusterIDConflictError`` when the ID is not free."""
        previous = self._ctx.ids.get(self.name)
        if previous is not None and previous != cluster_id:
            log.warning("Remote cluster ID changed: draining every entry cached under the old ID",
                        cluster=self.name, old_cluster_id=previous, new_cluster_id=cluster_id)
            self._ctx.ids.release(self.name)
            await self._forget_cache()
        try:
            self._ctx.ids.reserve(self.name, cluster_id)
        except ClusterIDConflictError:
            if self._refused_id != cluster_id:
                # Whatever is cached (by this run or an earlier one) belongs to another ID.
                await self._forget_cache()
                self._refused_id = cluster_id
            raise
        self._refused_id = None

    async def _forget_cache(self) -> None:
        """Remove everything cached for this remote and start again with empty cache writers."""
        await self._stop_enforcer()
        await asyncio.gather(*(r.writer.stop() for r in self.reflectors))
        await drain_cluster(self._ctx.backend, self.name, grace_period=0, retries=self._cfg.drain_retries,
                            backoff=self._cfg.drain_backoff, request_timeout=self._cfg.request_timeout)
        self.reflectors = self._new_reflectors()
        for reflector in self.reflectors:
            await reflector.writer.start()

    async def _retrieve_config(self, backend: KVBackend) -> RemoteConfig:
        """Read and validate the remote cluster config, retrying until ``cluster_config_timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cfg.cluster_config_timeout
        retry_max = self._cfg.cluster_config_retry_max
        backoff = Backoff(min(self._cfg.reconnect_backoff_min, retry_max), retry_max, jitter=0.0)
        key = local_cluster_config_key(self.name)
        while True:
            try:
                async with asyncio.timeout(self._cfg.request_timeout):
                    kv = await backend.get(key)
                if kv is None:
                    raise ClusterConfigMissingError(
                        f"remote cluster configuration required but not found (key {key!r}); if the remote "
                        "runs KVStoreMesh, check that it is connected to the target cluster, and that the "
                        "cluster name is correct")
                return parse_remote_config(kv.value, self.name, self._ctx.local)
            except ClusterIDChangedError:
                raise
            except (KVStoreError, InvalidRemoteConfigError, TimeoutError) as exc:
                error = exc
            delay = backoff.next()
            if loop.time() + delay > deadline:
                raise error
            log.warning("Unable to get remote cluster configuration, retrying", cluster=self.name,
                        error=_error_text(error), retry_in=f"{delay:g}s")
            self._status_text = _error_text(error)
            await asyncio.sleep(delay)

    async def _enforce_local_config(self, remote: RemoteConfig) -> None:
        value = cached_config_value(remote)
        if self._enforcer is not None and self._enforced_value == value:
            return
        await self._stop_enforcer()
        enforcer = self._ctx.enforcer_factory(self.name, value)
        try:
            # Written before any cached data: agents find the config first (then keep it enforced).
            async with asyncio.timeout(self._cfg.request_timeout):
                await enforcer.write_once()
        except (KVStoreError, TimeoutError) as exc:
            raise KVStoreError(f"failed to propagate cluster configuration to the local etcd: "
                               f"{_error_text(exc)}") from exc
        enforcer.start()
        self._enforcer, self._enforced_value = enforcer, value

    async def _stop_enforcer(self) -> None:
        enforcer, self._enforcer = self._enforcer, None
        self._enforced_value = None
        if enforcer is not None:
            await enforcer.stop()

    # ------------------------------------------------------------------ state changes

    def _set_status_text(self, text: str) -> None:
        # The watchdog's text: after a failure or a refusal, only once this connection is accepted.
        if self._established or (self._failures == 0 and self._refused_id is None):
            self._status_text = text

    def _on_connected(self) -> None:
        self._connected_event.set()
        ttl, self._ttl_task = self._ttl_task, None
        if ttl is not None:
            ttl.cancel()  # revocation is synchronous after the sleep: cancelling is enough

    def _start_ttl_timer(self) -> None:
        if self._cfg.cache_ttl > 0 and self._ttl_task is None:
            self._ttl_task = asyncio.create_task(self._revoke_after_ttl(), name=f"cache-ttl:{self.name}")

    async def _revoke_after_ttl(self) -> None:
        await asyncio.sleep(self._cfg.cache_ttl)
        self._ttl_task = None
        revoked = [r.resource.name for r in self.reflectors if r.revoke()]
        log.warning("Remote cluster unreachable for longer than the cache TTL: revoked cached data",
                    cluster=self.name, ttl=f"{self._cfg.cache_ttl:g}s", resources=",".join(revoked))

    def _record_failure(self, exc: BaseException) -> None:
        self._failures += 1
        self._last_failure = _dt.datetime.now(_dt.UTC)
        self._status_text = _error_text(exc)
        metrics = self._ctx.metrics
        metrics.remote_cluster_failures.labels(self.name).set(self._failures)
        metrics.remote_cluster_last_failure_ts.labels(self.name).set(time.time())
        self._labels.set(0)
        log.warning("Connection to remote cluster failed", cluster=self.name, error=_error_text(exc),
                    error_type=type(exc).__name__, failures=self._failures)

    # ------------------------------------------------------------------ status

    def status(self) -> RemoteClusterStatus:
        by_name = {r.resource.name: r for r in self.reflectors}
        exports = self._service_exports_enabled is not None
        synced = RemoteClusterSyncedStatus(
            nodes=by_name["nodes"].synced, services=by_name["services"].synced,
            identities=by_name["identities"].synced, endpoints=by_name["endpoints"].synced,
            service_exports=by_name["service exports"].synced if exports else None)
        ready = (self._established and synced.nodes and synced.services and synced.identities
                 and synced.endpoints and (synced.service_exports is not False))
        return RemoteClusterStatus(
            name=self.name, connected=self._backend_connected, ready=ready, status=self._status_text,
            num_failures=self._failures, last_failure=self._last_failure,
            num_nodes=by_name["nodes"].watch_store.num_entries,
            num_shared_services=by_name["services"].watch_store.num_entries,
            num_service_exports=by_name["service exports"].watch_store.num_entries,
            num_identities=by_name["identities"].watch_store.num_entries,
            num_endpoints=by_name["endpoints"].watch_store.num_entries,
            config=self._remote_config, synced=synced)
