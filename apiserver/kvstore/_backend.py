"""The kvstore seam: what the sync store, KVStoreMesh and etcdinit need from an etcd v3 client.

``apiserver.kvstore.etcd.EtcdClient`` is the real implementation (grpc.aio); the in-memory
``localmesh.memory.kv.MemoryKV`` implements the same protocol for fast unit tests.
Keys are ``str`` (etcd keys here are always ASCII paths); values are ``bytes``, never re-encoded.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
# etcd's default --max-request-bytes (1.5 MiB): a larger request is refused, whatever it holds.
MAX_REQUEST_BYTES = 1572864


class KVStoreError(Exception):
    """Base class of every kvstore failure."""


class UnavailableError(KVStoreError):
    """The store cannot be reached (connection refused, timeout, no leader)."""


class NoSpaceError(UnavailableError):
    """etcd refused a write for lack of space (``mvcc: database space exceeded``, its NOSPACE
    alarm); it takes writes again once an operator frees space and disarms the alarm."""


class LeaseNotFoundError(KVStoreError):
    """A put or keepalive named a lease the server no longer has (expired or revoked)."""


class CompactedError(KVStoreError):
    """A watch or read asked for a revision that has been compacted away."""

    def __init__(self, compact_revision: int, message: str = "") -> None:
        super().__init__(
            message or f"required revision has been compacted (compact revision {compact_revision})")
        self.compact_revision = compact_revision


class StoreResetError(UnavailableError):
    """The store behind the connection is not the one we read: a watch was to resume after revision
    N and the store (asked linearizably) has not reached N. An etcd restarted with an empty data dir
    keeps its cluster ID and accepts such a watch, which would then wait for revisions that mean
    something else on the new store. Reconnect and read everything again."""


class PermissionDeniedError(KVStoreError):
    """RBAC refused the operation, or authentication failed."""


class RequestTooLargeError(KVStoreError):
    """etcd refused the request for its size (``--max-request-bytes``, or gRPC's receive limit)."""


class ClusterIDChangedError(KVStoreError):
    """A response came from a different etcd cluster than the first one seen on this client."""


# The four record types below are built once per key on the hot paths (200k+ per initial sync):
# not frozen, because a frozen dataclass's __init__ costs three times as much. Treat them as
# read-only all the same.


@dataclass(slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int = 0
    mod_revision: int = 0
    lease: int = 0


class EventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(slots=True)
class WatchEvent:
    type: EventType
    key: str
    value: bytes  # b"" for deletes
    mod_revision: int


@dataclass(slots=True)
class WatchBatch:
    """One watch response: zero or more events (zero for a progress notification)."""

    events: list[WatchEvent] = field(default_factory=list)
    revision: int = 0  # header revision of the response


@dataclass(slots=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(slots=True)
class Delete:
    key: str
    prefix: bool = False


Op = Put | Delete


@dataclass(frozen=True, slots=True)
class Compare:
    """Txn guard on one key: ``target`` is "mod" (mod_revision), "create" (create_revision),
    "value" or "lease"; ``result`` is one of "=", "!=", "<", ">"."""

    key: str
    target: str
    result: str
    value: int | bytes


@dataclass(frozen=True, slots=True)
class Status:
    cluster_id: int
    member_id: int
    version: str
    db_size: int
    leader: int
    raft_term: int
    revision: int
    errors: tuple[str, ...] = ()  # etcd's alarms among them: "memberID:<id> alarm:NOSPACE "


class KVBackend(Protocol):
    """The async operations the rest of the project performs on a kvstore."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def list_prefix(self, prefix: str, *, revision: int = 0, page_size: int = 0,
                          keys_only: bool = False) -> tuple[list[KeyValue], int]:
        """Every key under ``prefix`` (string prefix, not path-aware) sorted by key, and the
        revision the listing was taken at. ``page_size`` > 0 pages internally at one revision."""
        ...

    def iter_prefix(self, prefix: str, *, page_size: int,
                    keys_only: bool = False) -> AsyncIterator[tuple[list[KeyValue], int]]:
        """``list_prefix`` one page at a time, each with the revision of the listing (the same for
        every page): a caller going through a big prefix never holds all of it at once, and can
        start working on the first page while the next is fetched."""
        ...

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Returns the revision of the write."""
        ...

    async def delete(self, key: str) -> int:
        """Returns how many keys were deleted (0 or 1)."""
        ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op],
                  failure: Sequence[Op] = ()) -> bool:
        """One etcd Txn (at most ``MAX_TXN_OPS`` ops per branch). True if the compares held."""
        ...

    async def apply(self, ops: Sequence[Op]) -> int:
        """Apply unconditional puts/deletes in as few Txns as possible (chunks of ``MAX_TXN_OPS``).
        Chunks are applied in order; on failure the error says nothing of later chunks, so
        callers retry the whole batch (puts and deletes are idempotent). Returns the last revision."""
        ...

    async def grant_lease(self, ttl: float) -> int:
        """A new lease of ``ttl`` seconds (rounded up to whole seconds); returns its ID."""
        ...

    async def keepalive(self, lease_id: int) -> float:
        """Refresh a lease once; returns the new TTL. Raises ``LeaseNotFoundError`` if gone."""
        ...

    async def revoke_lease(self, lease_id: int) -> None: ...

    def watch(self, prefix: str, *, start_revision: int = 0,
              progress_notify: bool = True) -> AsyncIterator[WatchBatch]:
        """Watch every key under ``prefix`` from ``start_revision`` (0 = from now).

        Resumes transparently after a broken stream from the last *event's* mod_revision + 1
        (never from a header revision), so no event is skipped or repeated. Raises
        ``CompactedError`` if the resume point was compacted: the caller must relist.
        """
        ...

    async def status(self) -> Status: ...

    async def close(self) -> None: ...
