"""KVStoreMesh tunables: upstream defaults, with every timer overridable for tests. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from apiserver.paths import CLUSTER_CONFIG_ENFORCE_INTERVAL

DEFAULT_API_SERVE_ADDR = "localhost:9889"


@dataclass(frozen=True, slots=True)
class MeshConfig:
    # Readiness.
    per_cluster_ready_timeout: float = 15.0
    global_ready_timeout: float = 600.0
    # Removal of a remote: grace period before the drain, then retries with back-off.
    disable_drain_on_disconnection: bool = False
    drain_grace_period: float = 180.0
    drain_retries: int = 5
    drain_backoff: float = 2.0
    # Revoke services/service exports of a remote unreachable for longer than this (0 = never).
    cache_ttl: float = 0.0
    # Remote connection health: no heartbeat PUT for this long -> reconnect
    # (0 disables); periodic status probes detect unreachability and a reset etcd.
    heartbeat_timeout: float = 120.0
    status_check_interval: float = 10.0
    max_status_failures: int = 2
    request_timeout: float = 10.0
    connect_timeout: float = 15.0
    # Remote cluster config retrieval: retried for this long, then a new connection.
    cluster_config_timeout: float = 180.0
    cluster_config_retry_max: float = 30.0
    # Back-off between connection attempts to one remote.
    reconnect_backoff_min: float = 1.0
    reconnect_backoff_max: float = 30.0
    # Config directory polling, and how often the local cluster config of a remote is enforced.
    config_poll_interval: float = 1.0
    cluster_config_enforce_interval: float = CLUSTER_CONFIG_ENFORCE_INTERVAL
    # List page size on remotes (etcd.limit).
    list_page_size: int = 256
