"""``clustermesh-apiserver etcdinit``: wiring only (see ``apiserver.security.etcd_setup``).

Like upstream (viper, env prefix ``CILIUM_``), every flag can also come from the environment:
``--cluster-name`` from ``CILIUM_CLUSTER_NAME``, ``--timeout`` from ``CILIUM_TIMEOUT``, and so on;
an explicit flag wins over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from apiserver._logging import configure_logging, get_logger
from apiserver.goflags import go_bool, go_duration
from apiserver.security.etcd_setup import EtcdInitConfig, EtcdInitError, run_etcdinit

HELP = "Initialize an etcd data directory for use by the etcd sidecar of clustermesh-apiserver"
ENV_PREFIX = "CILIUM_"

log = get_logger("etcdinit")
T = TypeVar("T")


def _env_default(flag: str, default: T, parse: Callable[[str], T]) -> T:
    raw = os.environ.get(ENV_PREFIX + flag.upper().replace("-", "_"))
    if raw is None:
        return default
    try:
        return parse(raw)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise SystemExit(f"etcdinit: invalid value in ${ENV_PREFIX}{flag.upper().replace('-', '_')}: {exc}") \
            from exc


def _str(flag: str, default: str) -> str:
    return _env_default(flag, default, str)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = EtcdInitConfig()
    parser.add_argument("--etcd-data-dir", default=_str("etcd-data-dir", defaults.data_dir),
                        help="Etcd data directory. Should have read/write permissions here.")
    parser.add_argument("--etcd-initial-cluster-token",
                        default=_str("etcd-initial-cluster-token", defaults.initial_cluster_token),
                        help="Etcd initial cluster token. Used to prevent accidentally joining other etcd "
                             "clusters that are reachable on the same L2 network domain.")
    parser.add_argument("--etcd-cluster-name", default=_str("etcd-cluster-name", defaults.etcd_cluster_name),
                        help="Name of the etcd cluster. Must match what etcd is later started with.")
    parser.add_argument("--cluster-name", default=_str("cluster-name", defaults.cluster_name),
                        help="Name of the Cilium cluster, used to set the username of the admin user in "
                             "etcd. This is distinct from the etcd cluster's name.")
    parser.add_argument("--timeout", type=go_duration,
                        default=_env_default("timeout", defaults.timeout, go_duration), metavar="DURATION",
                        help="How long to wait for operations before exiting (default 2m0s).")
    parser.add_argument("--debug", type=go_bool, nargs="?", const=True, metavar="BOOL",
                        default=_env_default("debug", False, go_bool), help="Debug log output.")
    # Hidden: upstream hard-codes /usr/bin/etcd and port 2379/2380; tests need their own.
    parser.add_argument("--etcd-binary", default=_str("etcd-binary", defaults.etcd_binary), help=argparse.SUPPRESS)
    parser.add_argument("--etcd-client-port", type=int, help=argparse.SUPPRESS,
                        default=_env_default("etcd-client-port", defaults.client_port, int))
    parser.add_argument("--etcd-peer-port", type=int, help=argparse.SUPPRESS,
                        default=_env_default("etcd-peer-port", defaults.peer_port, int))


def run(args: argparse.Namespace) -> int:
    configure_logging(debug=args.debug)
    config = EtcdInitConfig(
        data_dir=args.etcd_data_dir,
        initial_cluster_token=args.etcd_initial_cluster_token,
        etcd_cluster_name=args.etcd_cluster_name,
        cluster_name=args.cluster_name,
        timeout=args.timeout,
        etcd_binary=args.etcd_binary,
        client_port=args.etcd_client_port,
        peer_port=args.etcd_peer_port,
    )
    log.info("Starting first-time initialisation of etcd for Cilium Clustermesh", timeout=f"{config.timeout:g}s",
             etcdDataDir=config.data_dir, etcdClusterName=config.etcd_cluster_name,
             clusterName=config.cluster_name, etcdInitialClusterToken=config.initial_cluster_token)
    try:
        asyncio.run(_interruptible(run_etcdinit(config)))
    except EtcdInitError as exc:
        log.error("Failed to initialise etcd", error=str(exc), clusterName=config.cluster_name)
        return 1
    except (asyncio.CancelledError, KeyboardInterrupt):
        log.error("Interrupted; the temporary etcd was stopped", clusterName=config.cluster_name)
        return 1
    return 0


async def _interruptible(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work``, cancelling it on SIGTERM/SIGINT so the temporary etcd is still stopped (the
    default SIGTERM action would end the process and orphan etcd)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    await work
