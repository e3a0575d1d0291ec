"""``clustermesh-apiserver kvstoremesh``: flags (upstream names and defaults) -> daemon.

Wiring only. Every flag is validated before anything connects or writes: a bad value prints one
clear line on stderr and exits 2 (``EXIT_USAGE``, as the exporter). The process runs on
``apiserver.runner``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from apiserver._logging import configure_logging
from apiserver.cli._flags import add_common_daemon_flags
from apiserver.clusterinfo import ClusterInfo, InvalidClusterInfo
from apiserver.goflags import KeyValueAction, add_bool, go_bool, go_duration
from apiserver.kvstore.etcd import EtcdConfig
from apiserver.kvstore.leases import DEFAULT_LEASE_TTL, validate_lease_ttl
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstoremesh import DEFAULT_API_SERVE_ADDR, DaemonSettings, KVStoreMeshDaemon, MeshConfig, start_daemon
from apiserver.runner import EXIT_USAGE, run_process
from apiserver.server import parse_listen_address

HELP = "Run KVStoreMesh: cache the etcd data of every remote cluster in the local etcd"


_DEFAULTS = MeshConfig()


def _duration_flag(parser: argparse.ArgumentParser, flag: str, default: float, help: str) -> None:
    parser.add_argument(flag, type=go_duration, default=default, metavar="DURATION",
                        help=help if help == argparse.SUPPRESS else f"{help} (default {default:g}s)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-name", default="default", help="Name of the cluster (default \"default\")")
    parser.add_argument("--cluster-id", type=int, default=0, help="Unique identifier of the cluster (1..max)")
    parser.add_argument("--max-connected-clusters", type=int, default=255,
                        help="Maximum number of clusters to be connected in a clustermesh: 255 or 511")
    parser.add_argument("--clustermesh-config", default="", metavar="DIR",
                        help="Path to the ClusterMesh configuration directory (one etcd config per remote)")
    _duration_flag(parser, "--clustermesh-cache-ttl", 0.0,
                   "Revoke cached services of a remote cluster unreachable for longer than this; 0 = never")
    parser.add_argument("--kvstore", default="etcd", help="Key-value store type (only etcd)")
    parser.add_argument("--kvstore-opt", action=KeyValueAction, default={}, metavar="KEY=VALUE",
                        help="Local etcd options, e.g. etcd.config=/var/lib/cilium/etcd-config.yaml (repeatable)")
    _duration_flag(parser, "--kvstore-lease-ttl", DEFAULT_LEASE_TTL, "Time-to-live of the kvstore leases")
    parser.add_argument("--kvstore-max-consecutive-quorum-errors", type=int, default=2,
                        help="Failed status checks of a remote etcd before reconnecting (default 2)")
    _duration_flag(parser, "--per-cluster-ready-timeout", _DEFAULTS.per_cluster_ready_timeout,
                   "Remote clusters that cannot connect within this duration are disregarded for readiness")
    _duration_flag(parser, "--global-ready-timeout", _DEFAULTS.global_ready_timeout,
                   "KVStoreMesh becomes ready after this duration even if some remotes did not synchronize")
    add_bool(parser, "--enable-heartbeat", False, "Write the cilium/.heartbeat key to the local etcd")
    parser.add_argument("--health-port", type=int, default=9880, help="TCP port of the /readyz endpoint")
    parser.add_argument("--prometheus-serve-addr", default="", help="Address serving /metrics (off if empty)")
    parser.add_argument("--api-serve-addr", default=DEFAULT_API_SERVE_ADDR,
                        help=f"Address of the KVStoreMesh REST API (default {DEFAULT_API_SERVE_ADDR})")
    # Hidden, as upstream, plus the timers tests and operators may need to shorten.
    parser.add_argument("--disable-drain-on-disconnection", type=go_bool, nargs="?", const=True, default=False,
                        help=argparse.SUPPRESS)
    _duration_flag(parser, "--clustermesh-drain-grace-period", _DEFAULTS.drain_grace_period, argparse.SUPPRESS)
    _duration_flag(parser, "--clustermesh-remote-heartbeat-timeout", _DEFAULTS.heartbeat_timeout,
                   argparse.SUPPRESS)
    _duration_flag(parser, "--clustermesh-remote-status-interval", _DEFAULTS.status_check_interval,
                   argparse.SUPPRESS)
    _duration_flag(parser, "--clustermesh-config-poll-interval", _DEFAULTS.config_poll_interval,
                   argparse.SUPPRESS)
    _duration_flag(parser, "--clustermesh-reconnect-backoff-max", _DEFAULTS.reconnect_backoff_max,
                   argparse.SUPPRESS)
    add_common_daemon_flags(parser, gops_port=9894)


class FlagError(ValueError):
    """A flag value is unusable; the message names the flag."""


def _non_negative(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 0:
            raise FlagError(f"--{name.replace('_', '-')} must not be negative")


def settings_from_args(args: argparse.Namespace) -> DaemonSettings:
    """Validate every flag (no I/O beyond reading the local etcd config file) -> daemon settings."""
    cluster = ClusterInfo(args.cluster_name, args.cluster_id, args.max_connected_clusters)
    try:
        cluster.validate(strict=True)
    except InvalidClusterInfo as exc:
        raise FlagError(str(exc)) from None
    if args.kvstore != "etcd":
        raise FlagError(f"--kvstore={args.kvstore!r} is not supported: only etcd")
    if not args.clustermesh_config:
        raise FlagError("--clustermesh-config is required (the directory of remote cluster etcd configs)")
    if not os.path.isdir(args.clustermesh_config):
        raise FlagError(f"--clustermesh-config {args.clustermesh_config!r} is not a directory")
    _non_negative(args, "clustermesh_cache_ttl", "per_cluster_ready_timeout", "global_ready_timeout",
                  "clustermesh_drain_grace_period", "clustermesh_remote_heartbeat_timeout")
    for name in ("clustermesh_remote_status_interval", "clustermesh_config_poll_interval",
                 "clustermesh_reconnect_backoff_max"):
        if getattr(args, name) <= 0:
            raise FlagError(f"--{name.replace('_', '-')} must be positive")
    if args.kvstore_max_consecutive_quorum_errors < 1:
        raise FlagError("--kvstore-max-consecutive-quorum-errors must be at least 1")
    if not 0 <= args.health_port <= 65535:
        raise FlagError(f"--health-port {args.health_port} is out of range")
    try:
        validate_lease_ttl(args.kvstore_lease_ttl)
        parse_listen_address(args.api_serve_addr)
        if args.prometheus_serve_addr:
            parse_listen_address(args.prometheus_serve_addr)
        kvstore = KVStoreOptions.parse(args.kvstore_opt)
        EtcdConfig.from_options(kvstore)  # the local etcd config file must be readable now
    except ValueError as exc:  # EtcdConfigError and InvalidKVStoreOptions are ValueErrors
        raise FlagError(str(exc)) from None
    mesh = dataclasses.replace(
        _DEFAULTS,
        per_cluster_ready_timeout=args.per_cluster_ready_timeout,
        global_ready_timeout=args.global_ready_timeout,
        disable_drain_on_disconnection=args.disable_drain_on_disconnection,
        drain_grace_period=args.clustermesh_drain_grace_period,
        cache_ttl=args.clustermesh_cache_ttl,
        heartbeat_timeout=args.clustermesh_remote_heartbeat_timeout,
        status_check_interval=args.clustermesh_remote_status_interval,
        max_status_failures=args.kvstore_max_consecutive_quorum_errors,
        config_poll_interval=args.clustermesh_config_poll_interval,
        reconnect_backoff_max=args.clustermesh_reconnect_backoff_max,
        list_page_size=kvstore.list_limit)
    return DaemonSettings(
        cluster=cluster, config_dir=args.clustermesh_config, kvstore=kvstore, mesh=mesh,
        lease_ttl=args.kvstore_lease_ttl, enable_heartbeat=args.enable_heartbeat, health_port=args.health_port,
        prometheus_serve_addr=args.prometheus_serve_addr, api_serve_addr=args.api_serve_addr)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fmt = args.log_opt.get("format", "text")
    configure_logging(debug=bool(args.debug), fmt="json" if fmt.startswith("json") else "text")
    daemon = KVStoreMeshDaemon(settings)
    return run_process("kvstoremesh", lambda runner: start_daemon(runner, daemon))
