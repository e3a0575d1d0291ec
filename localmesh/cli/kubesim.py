"""``clustermesh-apiserver kubesim``: run the Kubernetes API emulator standalone until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from apiserver._logging import configure_logging, get_logger
from apiserver.goflags import add_bool

HELP = "Run the Kubernetes API emulator (kubesim) for demos and manual testing"

log = get_logger("kubesim")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=6443, help="Port to listen on; 0 picks a free one "
                        "(default 6443)")
    parser.add_argument("--seed", action="append", default=[], metavar="MANIFESTS",
                        help="Multi-document YAML (also kind: List) to load at start; repeatable")
    parser.add_argument("--kubeconfig-out", type=Path, default=None, metavar="PATH",
                        help="Write a kubeconfig for the emulator here once it listens")
    parser.add_argument("--history", type=int, default=10000,
                        help="Events retained per resource type; older resourceVersions answer 410 "
                             "(default 10000)")
    parser.add_argument("--bookmark-interval", type=float, default=1.0, metavar="SECONDS",
                        help="Seconds between watch bookmarks (default 1)")
    parser.add_argument("--tls-cert", type=Path, default=None, help="Serving certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, default=None, help="Serving key (PEM)")
    parser.add_argument("--tls-ca", type=Path, default=None,
                        help="CA to embed in --kubeconfig-out (default: the serving certificate)")
    add_bool(parser, "--debug", False, "Enable debug logging")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="Log format")


async def _serve(args: argparse.Namespace) -> int:
    from localmesh.kubesim import KubeSim, ServerTLS, load_manifests

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            log.error("--tls-cert and --tls-key go together")
            return 2
        tls = ServerTLS(args.tls_cert, args.tls_key, args.tls_ca or args.tls_cert)
    sim = KubeSim(history=args.history, bookmark_interval=args.bookmark_interval)
    for path in args.seed:
        try:
            count = sim.load(load_manifests(path))
        except (OSError, ValueError, KeyError) as exc:
            log.error("Cannot load seed manifests", path=path, error=str(exc))
            return 1
        log.info("Seeded objects", path=path, count=count)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sim.start(host=args.host, port=args.port, tls=tls)
    except OSError as exc:
        log.error("Cannot listen", host=args.host, port=args.port, error=str(exc))
        return 1
    try:
        if args.kubeconfig_out:
            sim.write_kubeconfig(args.kubeconfig_out)
            log.info("Wrote kubeconfig", path=str(args.kubeconfig_out))
        await stop.wait()
        log.info("Shutting down")
    finally:
        await sim.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    configure_logging(debug=args.debug, fmt=args.log_format)
    return asyncio.run(_serve(args))
