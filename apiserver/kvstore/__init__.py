"""kvstore: etcd access (the ``KVBackend`` seam), leases, rate limits and the batching sync store.

The seam's types (errors, write operations, watch events) and the write side are re-exported here;
callers outside this package import from ``apiserver.kvstore``, never from its private modules.
The etcd implementation is ``apiserver.kvstore.etcd``.
"""

# The seam: what every etcd client provides, its errors and its value types.
from apiserver.kvstore._backend import (
    MAX_REQUEST_BYTES,
    MAX_TXN_OPS,
    ClusterIDChangedError,
    CompactedError,
    Compare,
    Delete,
    EventType,
    KeyValue,
    KVBackend,
    KVStoreError,
    LeaseNotFoundError,
    NoSpaceError,
    Op,
    PermissionDeniedError,
    Put,
    RequestTooLargeError,
    Status,
    StoreResetError,
    UnavailableError,
    WatchBatch,
    WatchEvent,
)

# The write side: leases, rate limiting, the batching sync store, heartbeat, cluster config.
from apiserver.kvstore.config_enforcer import ClusterConfigEnforcer
from apiserver.kvstore.heartbeat import Heartbeat
from apiserver.kvstore.leases import (
    DEFAULT_LEASE_TTL,
    MAX_KEYS_PER_LEASE,
    LeaseManager,
    validate_lease_ttl,
)
from apiserver.kvstore.ratelimit import APILimiter
from apiserver.kvstore.syncstore import SyncStore

__all__ = [
    "DEFAULT_LEASE_TTL",
    "MAX_KEYS_PER_LEASE",
    "MAX_REQUEST_BYTES",
    "MAX_TXN_OPS",
    "APILimiter",
    "ClusterConfigEnforcer",
    "ClusterIDChangedError",
    "CompactedError",
    "Compare",
    "Delete",
    "EventType",
    "Heartbeat",
    "KVBackend",
    "KVStoreError",
    "KeyValue",
    "LeaseManager",
    "LeaseNotFoundError",
    "NoSpaceError",
    "Op",
    "PermissionDeniedError",
    "Put",
    "RequestTooLargeError",
    "Status",
    "StoreResetError",
    "SyncStore",
    "UnavailableError",
    "WatchBatch",
    "WatchEvent",
    "validate_lease_ttl",
]
