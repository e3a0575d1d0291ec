"""Process wiring of ``clustermesh-apiserver clustermesh``: flags -> etcd + Kubernetes clients ->
exporter, health and metrics servers; SIGTERM stops it cleanly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Mapping

from apiserver._logging import configure_logging, get_logger
from apiserver.clustermesh.exporter import Exporter
from apiserver.clustermesh.options import ExporterOptions, InvalidOptions
from apiserver.kube import KubeConfigError, KubeOptions, build_client, check_api
from apiserver.kvstore._backend import KVStoreError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.ratelimit import OPT_QPS, RateLimiter
from apiserver.metrics import APISERVER_NAMESPACE, Metrics
from apiserver.server import HealthServer, MetricsServer

log = get_logger("clustermesh-apiserver")

ETCD_CONNECT_TIMEOUT = 900.0  # upstream's initial connection timeout (15 minutes)
EXIT_INVALID = 2
EXIT_FAILURE = 1
BOOTSTRAP_FREEZE_INTERVAL = 0.2
BOOTSTRAP_FREEZE_MAX = 300.0


def rate_limiter(kvstore_opts: Mapping[str, str]) -> RateLimiter:
    """The etcd rate limiter: ``etcd.qps`` / ``etcd.bootstrapQps`` / ``etcd.maxInflight`` exactly as
    given; but when ``etcd.qps`` is not set, no token bucket at all (only ``etcd.maxInflight``).

    Deliberate deviation from upstream's default of 20 ops/s: our writes are Txns of up to 128
    keys and each sync store has one Txn in flight, so the exporter cannot flood its own sidecar
    etcd; a 20 Txn/s default would cap steady-state churn at 2,560 keys/s and add up to 50 ms of
    queueing to every change. Operators who want upstream's limit set ``etcd.qps`` (Helm does).
    """
    if kvstore_opts.get(OPT_QPS, "") == "":
        return RateLimiter.from_kvstore_opts({**kvstore_opts, OPT_QPS: "0"})
    return RateLimiter.from_kvstore_opts(kvstore_opts)


async def _freeze_heap_when_ready(exporter: Exporter) -> None:
    """Keep the garbage collector off the long-lived state: during bootstrap, and for good once ready.

    The caches and sync-store state (millions of objects at 100k endpoints) live for the whole
    process. While it is built, each full collection walks all of it again (5 % of the bootstrap
    time); afterwards every full collection is a 100+ ms pause under churn. Freezing moves what
    exists into a generation the collector skips. Cyclic garbage frozen during bootstrap is
    reclaimed by the one full collection at the end (unfreeze, collect, freeze); a bootstrap that
    takes longer than ``BOOTSTRAP_FREEZE_MAX`` (etcd or the API server down) stops freezing, so
    that retry loops cannot pile up uncollected garbage.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOOTSTRAP_FREEZE_MAX
    ready = asyncio.ensure_future(exporter.wait_ready())
    try:
        while not ready.done() and loop.time() < deadline:
            gc.freeze()
            await asyncio.wait({ready}, timeout=BOOTSTRAP_FREEZE_INTERVAL)
        gc.unfreeze()
        await ready
    finally:
        ready.cancel()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.debug("Bootstrap heap frozen", objects=gc.get_freeze_count())


def run_exporter(args: argparse.Namespace) -> int:
    try:
        options = ExporterOptions.from_args(args)
        kube_options = KubeOptions.from_args(args)
        etcd_config = EtcdConfig.from_kvstore_opts(options.kvstore_opts)
        rate_limiter(options.kvstore_opts)
    except (InvalidOptions, ValueError, OSError) as exc:
        print(f"clustermesh-apiserver: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    configure_logging(options.debug, "json" if options.log_format == "json" else "text")
    try:
        return asyncio.run(_serve(options, kube_options, etcd_config))
    except KeyboardInterrupt:
        return 0


async def _serve(options: ExporterOptions, kube_options: KubeOptions, etcd_config: EtcdConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics(APISERVER_NAMESPACE)
    log.info("Starting clustermesh-apiserver", cluster_name=options.cluster.name,
             cluster_id=options.cluster.id, endpoints=",".join(etcd_config.endpoints))
    try:
        kube = await build_client(kube_options)
    except KubeConfigError as exc:
        log.error("Cannot configure the Kubernetes client", error=str(exc))
        return EXIT_FAILURE
    try:
        backend = await _connect_etcd(etcd_config, stop)
    except (KVStoreError, OSError, ValueError) as exc:
        log.error("Cannot connect to etcd", error=str(exc))
        await kube.close()
        return EXIT_FAILURE
    if backend is None:  # stopped while connecting
        await kube.close()
        return 0
    limiter = rate_limiter(options.kvstore_opts)
    exporter = Exporter(options, backend, kube, metrics, limiter=limiter)

    async def healthy() -> str | None:
        try:
            await check_api(kube.api_client)
        except Exception as exc:
            return f"kubernetes API: {exc}"
        try:
            await backend.status()
        except Exception as exc:
            return f"etcd: {exc}"
        return None

    servers: list[HealthServer | MetricsServer] = [HealthServer(options.health_port, exporter.ready, healthy)]
    if options.prometheus_serve_addr:
        servers.append(MetricsServer(options.prometheus_serve_addr, metrics.registry))
    users = None
    freezer: asyncio.Task[None] | None = None
    try:
        for server in servers:
            await server.start()
        await exporter.start()
        freezer = asyncio.create_task(_freeze_heap_when_ready(exporter), name="freeze-heap")
        if options.cluster_users_enabled:
            from apiserver.security.users import UsersManager

            users = UsersManager(backend, options.cluster_users_config_path, cluster_name=options.cluster.name)
            users.start()
        await stop.wait()
        log.info("Shutting down")
        return 0
    except (KVStoreError, OSError) as exc:
        log.error("clustermesh-apiserver failed", error=str(exc))
        return EXIT_FAILURE
    finally:
        if freezer is not None:
            freezer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await freezer
        if users is not None:
            await users.stop()
        await exporter.stop()
        for server in reversed(servers):
            await server.stop()
        await backend.close()
        await kube.close()


async def _connect_etcd(config: EtcdConfig, stop: asyncio.Event) -> EtcdClient | None:
    """Connect, retrying until the initial-connection timeout; None if asked to stop meanwhile."""
    connect = asyncio.ensure_future(EtcdClient.connect(config, timeout=ETCD_CONNECT_TIMEOUT))
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({connect, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if connect in done:
        stopping.cancel()
        return connect.result()
    connect.cancel()
    return None
