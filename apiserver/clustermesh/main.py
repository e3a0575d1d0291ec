"""Process wiring of ``clustermesh-apiserver clustermesh``: flags -> etcd + Kubernetes clients ->
exporter, health and metrics servers; SIGTERM stops it cleanly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from apiserver._heap import freeze_after_bootstrap
from apiserver._logging import configure_logging, get_logger
from apiserver.clustermesh.exporter import Exporter
from apiserver.clustermesh.options import ExporterOptions, InvalidOptions
from apiserver.kube import KubeConfigError, KubeOptions, build_client, check_api
from apiserver.kvstore import KVStoreError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.metrics import APISERVER_NAMESPACE, ApiLimiterMetrics, Metrics
from apiserver.server import HealthServer, MetricsServer

log = get_logger("clustermesh-apiserver")

ETCD_CONNECT_TIMEOUT = 900.0  # upstream's initial connection timeout (15 minutes)
EXIT_INVALID = 2
EXIT_FAILURE = 1


def run_exporter(args: argparse.Namespace) -> int:
    try:
        options = ExporterOptions.from_args(args)
        kube_options = KubeOptions.from_args(args)
        etcd_config = EtcdConfig.from_kvstore_opts(options.kvstore_opts)
        APILimiter.for_batched_writes(options.kvstore_opts)
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
    limiter = APILimiter.for_batched_writes(options.kvstore_opts)
    limiter.observe(ApiLimiterMetrics(metrics))
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
        freezer = asyncio.create_task(freeze_after_bootstrap(exporter.wait_ready()), name="freeze-heap")
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
