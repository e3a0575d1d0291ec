"""The etcd key space: prefixes, canary keys and key helpers. Pure."""

from __future__ import annotations

import re

BASE = "cilium"
STATE_PREFIX = "cilium/state"
CACHE_PREFIX = "cilium/cache"
INIT_LOCK_PATH = "cilium/.initlock"
HEARTBEAT_PATH = "cilium/.heartbeat"
CLUSTER_CONFIG_PREFIX = "cilium/cluster-config"
SYNCED_PREFIX = "cilium/synced"

NODES_PREFIX = "cilium/state/nodes/v1"
IDENTITIES_PREFIX = "cilium/state/identities/v1"
IDENTITIES_ID_PREFIX = "cilium/state/identities/v1/id"
IP_PREFIX = "cilium/state/ip/v1"
IP_DEFAULT_PREFIX = "cilium/state/ip/v1/default"
SERVICES_PREFIX = "cilium/state/services/v1"
SERVICE_EXPORTS_PREFIX = "cilium/state/serviceexports/v1"

HEARTBEAT_INTERVAL = 60.0
CLUSTER_CONFIG_ENFORCE_INTERVAL = 300.0

_DOUBLE_SLASH = re.compile(r"/{2,}")


def join_key(*parts: str) -> str:
    """Upstream ``JoinKey``: join with ``/``, collapse ``//``, strip a trailing ``/``."""
    return _DOUBLE_SLASH.sub("/", "/".join(parts)).rstrip("/")


def state_to_cache_prefix(prefix: str) -> str:
    """``cilium/state/...`` -> ``cilium/cache/...``; anything else unchanged."""
    if prefix.startswith(STATE_PREFIX):
        return CACHE_PREFIX + prefix[len(STATE_PREFIX):]
    return prefix


def cluster_config_key(cluster_name: str) -> str:
    return join_key(CLUSTER_CONFIG_PREFIX, cluster_name)


def synced_canary_key(cluster_name: str, synced_prefix: str) -> str:
    """``cilium/synced/<C>/<prefix>``: written once the prefix's initial sync is complete."""
    return join_key(SYNCED_PREFIX, cluster_name, synced_prefix)


def prefix_range_end(prefix: str) -> str:
    """etcd's range end for a prefix: the last byte incremented (``a/`` -> ``a0``)."""
    raw = prefix.encode()
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            return (raw[:i] + bytes([raw[i] + 1])).decode("latin-1")
    return "\0"
