"""Process wiring of ``clustermesh-apiserver clustermesh``: flags -> etcd + Kubernetes clients ->
exporter, health and metrics servers, run by ``apiserver.runner`` (SIGTERM stops every part, in
reverse order; bad flags exit 2)."""

from __future__ import annotations

import argparse
import sys

from apiserver._heap import freeze_after_bootstrap
from apiserver._logging import configure_logging, get_logger
from apiserver.clustermesh.exporter import Exporter
from apiserver.clustermesh.options import ExporterOptions, InvalidOptions
from apiserver.kube import KubeClient, KubeOptions, build_client, check_api
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.metrics import APISERVER_NAMESPACE, ApiLimiterMetrics, Metrics
from apiserver.runner import EXIT_USAGE, PartRunner, run_process
from apiserver.security.users import UsersManager
from apiserver.server import HealthServer, MetricsServer

log = get_logger("clustermesh-apiserver")

ETCD_CONNECT_TIMEOUT = 900.0  # upstream's initial connection timeout (15 minutes)


def run_exporter(args: argparse.Namespace) -> int:
    try:
        options = ExporterOptions.from_args(args)
        kube_options = KubeOptions.from_args(args)
        etcd_config = EtcdConfig.from_options(options.kvstore)
    except (InvalidOptions, ValueError, OSError) as exc:
        print(f"clustermesh-apiserver: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(options.debug, "json" if options.log_format == "json" else "text")

    async def main(runner: PartRunner) -> None:
        await start_exporter(runner, options, kube_options, etcd_config)

    return run_process("clustermesh-apiserver", main)


async def start_exporter(runner: PartRunner, options: ExporterOptions, kube_options: KubeOptions,
                         etcd_config: EtcdConfig) -> Exporter:
    """Start every part of the exporter process through ``runner``, in order."""
    metrics = Metrics(APISERVER_NAMESPACE)
    log.info("Starting clustermesh-apiserver", cluster_name=options.cluster.name,
             cluster_id=options.cluster.id, endpoints=",".join(etcd_config.endpoints))
    # The probes answer from the start: while etcd is being connected to (up to 15 minutes, each
    # failed attempt logged) /healthz says the process is alive and /readyz that it is not ready.
    parts = _Started()
    health = HealthServer(options.health_port, parts.ready, parts.healthy)
    await runner.start("health server", health.start, health.stop)
    if options.prometheus_serve_addr:
        server = MetricsServer(options.prometheus_serve_addr, metrics.registry)
        await runner.start("metrics server", server.start, server.stop)
    kube = await build_client(kube_options)
    runner.on_stop("kubernetes client", kube.close)
    parts.kube = kube
    backend = await EtcdClient.connect(etcd_config, timeout=ETCD_CONNECT_TIMEOUT)
    runner.on_stop("etcd client", backend.close)
    parts.backend = backend
    limiter = APILimiter.for_batched_writes(options.kvstore)
    limiter.observe(ApiLimiterMetrics(metrics))
    exporter = Exporter(options, backend, kube, metrics, limiter=limiter)
    parts.exporter = exporter
    await runner.start("exporter", exporter.start, exporter.stop)
    # This is the process's entry point: the place to set the process-wide collector policy.
    runner.spawn("heap freezer", freeze_after_bootstrap(exporter.wait_ready()))
    if options.cluster_users_enabled:
        users = UsersManager(backend, options.cluster_users_config_path, cluster_name=options.cluster.name)
        users.start()
        runner.on_stop("cluster users", users.stop)
    return exporter


class _Started:
    """What the probes look at, filled in as the parts start."""

    def __init__(self) -> None:
        self.kube: KubeClient | None = None
        self.backend: EtcdClient | None = None
        self.exporter: Exporter | None = None

    def ready(self) -> bool:
        return self.exporter is not None and self.exporter.ready()

    async def healthy(self) -> str | None:
        if self.kube is not None:
            try:
                await check_api(self.kube.api_client)
            except Exception as exc:
                return f"kubernetes API: {exc}"
        if self.backend is not None:
            try:
                await self.backend.status()
            except Exception as exc:
                return f"etcd: {exc}"
        return None  # still connecting: alive, not ready
