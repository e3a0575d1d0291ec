"""``clustermesh-apiserver kubesim``: run N emulated clusters (API server, controllers, LoadBalancer pool
each; one kubeconfig with contexts ``cluster1``..``clusterN``) until SIGINT/SIGTERM, then stop them all."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path

from apiserver._logging import configure_logging, get_logger
from apiserver.goflags import add_bool
from localmesh.cli._signals import stop_on_signals

HELP = "Run local emulated Kubernetes clusters (kubesim) for demos and manual testing"

log = get_logger("kubesim")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clusters", type=int, default=1, metavar="N",
                        help="How many clusters to start (contexts cluster1..clusterN; default 1)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="Address the API servers listen on, e.g. a bridge address pods reach "
                             "(default 127.0.0.1)")
    parser.add_argument("--advertise-address", default=None, metavar="IP",
                        help="Address in the kubernetes Service's Endpoints (default: --host, 127.0.0.1 for "
                             "a wildcard)")
    parser.add_argument("--port", type=int, default=6443,
                        help="Port of cluster1's API server; clusterN listens on PORT+N-1; 0 picks free ports "
                             "(default 6443)")
    parser.add_argument("--seed", action="append", default=[], metavar="MANIFESTS",
                        help="Multi-document YAML (also kind: List) loaded into every cluster at start; "
                             "repeatable")
    parser.add_argument("--kubeconfig-out", type=Path, default=None, metavar="PATH",
                        help="Write one kubeconfig for all clusters here once they listen")
    parser.add_argument("--lb-pool", action="append", default=[], metavar="CIDR",
                        help="LoadBalancer address pool (CIDR or first-last, comma-separated), one per cluster "
                             "in order (default: 172.19.255.0/28 for cluster1, .16/28 for cluster2, ...)")
    add_bool(parser, "--controllers", True, "Run the controllers (Deployments, DaemonSets, scheduler, Endpoints, "
                                            "LoadBalancer addresses)")
    parser.add_argument("--history", type=int, default=10000,
                        help="Events retained per resource type; older resourceVersions answer 410 "
                             "(default 10000)")
    parser.add_argument("--bookmark-interval", type=float, default=1.0, metavar="SECONDS",
                        help="Seconds between watch bookmarks (default 1)")
    add_bool(parser, "--tls", False, "Serve HTTPS with a self-signed certificate per cluster (in --state-dir)")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="Where --tls writes the certificates (default: beside --kubeconfig-out)")
    parser.add_argument("--tls-cert", type=Path, default=None, help="Serving certificate (PEM), for every cluster")
    parser.add_argument("--tls-key", type=Path, default=None, help="Serving key (PEM)")
    parser.add_argument("--tls-ca", type=Path, default=None,
                        help="CA to embed in --kubeconfig-out (default: the serving certificate)")
    add_bool(parser, "--kubelet", False, "Run a local kubelet per cluster (node <cluster>-node; needs root): "
                                         "pods of the project's image run as processes in their own namespaces")
    add_bool(parser, "--debug", False, "Enable debug logging")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="Log format")


def _check(args: argparse.Namespace) -> str | None:
    if args.clusters < 1:
        return f"--clusters must be at least 1, got {args.clusters}"
    if args.lb_pool and len(args.lb_pool) != args.clusters:
        return f"--lb-pool given {len(args.lb_pool)} times for {args.clusters} clusters (give one per cluster)"
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together"
    if args.tls and args.tls_cert:
        return "--tls (self-signed) and --tls-cert exclude each other"
    if args.tls and args.state_dir is None and args.kubeconfig_out is None:
        return "--tls needs --state-dir (or --kubeconfig-out, beside which the certificates go)"
    if args.port and args.port + args.clusters - 1 > 65535:
        return f"--port {args.port} leaves no room for {args.clusters} clusters"
    return None


async def _serve(args: argparse.Namespace) -> int:
    from localmesh.kubesim import LocalClusters, ServerTLS, load_manifests
    from localmesh.kubesim.controllers import AddressPool

    problem = _check(args)
    if problem is not None:
        log.error(problem)
        return 2
    for pool in args.lb_pool:
        try:
            AddressPool(pool)
        except ValueError as exc:
            log.error("Bad --lb-pool", error=str(exc))
            return 2
    tls: bool | ServerTLS = bool(args.tls)
    if args.tls_cert:
        tls = ServerTLS(args.tls_cert, args.tls_key, args.tls_ca or args.tls_cert)
    state_dir = args.state_dir or (args.kubeconfig_out.parent / "kubesim-state" if args.kubeconfig_out else None)
    ports = [args.port + i if args.port else 0 for i in range(args.clusters)]
    try:
        clusters = LocalClusters(args.clusters, host=args.host, ports=ports, tls=tls, state_dir=state_dir,
                                 lb_pools=args.lb_pool or None, controllers=args.controllers,
                                 advertise_address=args.advertise_address, history=args.history,
                                 bookmark_interval=args.bookmark_interval)
    except (ValueError, OSError) as exc:
        log.error("Bad arguments", error=str(exc))
        return 2
    for path in args.seed:
        for cluster in clusters:
            try:
                count = cluster.sim.load(load_manifests(path))
            except (OSError, ValueError, KeyError) as exc:
                log.error("Cannot load seed manifests", path=path, error=str(exc))
                return 1
        log.info("Seeded objects", path=path, count=count, clusters=len(clusters))
    stop = stop_on_signals()
    try:
        await clusters.start()
    except OSError as exc:
        log.error("Cannot listen", host=args.host, port=args.port, error=str(exc))
        return 1
    kubelets = contextlib.AsyncExitStack()
    try:
        if args.kubelet:
            from localmesh.kubelet import NotRootError, local_kubelet
            workdir = Path(tempfile.mkdtemp(prefix="kubesim-kubelets-"))
            kubelets.callback(shutil.rmtree, workdir, ignore_errors=True)
            try:
                for cluster in clusters:
                    await kubelets.enter_async_context(local_kubelet(
                        cluster.sim, node_name=f"{cluster.name}-node", workdir=workdir))
            except NotRootError as exc:
                log.error(str(exc))
                return 2
        if args.kubeconfig_out:
            clusters.write_kubeconfig(args.kubeconfig_out)
            log.info("Wrote kubeconfig", path=str(args.kubeconfig_out),
                     contexts=",".join(c.name for c in clusters))
        await stop.wait()
        log.info("Shutting down")
    finally:
        await kubelets.aclose()
        await clusters.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    configure_logging(debug=args.debug, fmt=args.log_format)
    return asyncio.run(_serve(args))
