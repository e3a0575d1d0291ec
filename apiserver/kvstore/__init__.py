"""kvstore: etcd access (the ``KVBackend`` seam), leases, rate limits and the batching sync store."""

# The write side: leases, rate limiting, the batching sync store, heartbeat, cluster config.
from apiserver.kvstore.clusterconfig import ClusterConfigEnforcer
from apiserver.kvstore.heartbeat import Heartbeat
from apiserver.kvstore.leases import (
    DEFAULT_LEASE_TTL,
    MAX_KEYS_PER_LEASE,
    LeaseManager,
    validate_lease_ttl,
)
from apiserver.kvstore.ratelimit import RateLimiter
from apiserver.kvstore.syncstore import SyncStore

__all__ = [
    "DEFAULT_LEASE_TTL",
    "MAX_KEYS_PER_LEASE",
    "ClusterConfigEnforcer",
    "Heartbeat",
    "LeaseManager",
    "RateLimiter",
    "SyncStore",
    "validate_lease_ttl",
]
