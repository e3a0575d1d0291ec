"""Map gRPC failures from etcd onto the kvstore error classes, and say which ones may be retried.

etcd reports most conditions as a status code plus a fixed message (``rpctypes`` upstream); the
message is matched where the code alone is ambiguous (NOT_FOUND is also used for "user name not
found", OUT_OF_RANGE also for "future revision"). Pure: no I/O.
"""

from __future__ import annotations

import grpc

from apiserver.kvstore._backend import (
    CompactedError,
    KVStoreError,
    LeaseNotFoundError,
    NoSpaceError,
    PermissionDeniedError,
    RequestTooLargeError,
    UnavailableError,
)

_UNAVAILABLE_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # "too many requests": back off and retry later
})

_AUTH_MESSAGES = (
    "permission denied",
    "invalid auth token",
    "authentication failed",
    "user name is empty",
    "invalid auth management",
    "root user does not have root role",
)

_TLS_HINTS = ("ssl", "handshake", "certificate", "tls", "tsi_")  # TSI: grpc's transport security layer


def status_code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(err, "code", None)
    return code() if callable(code) else None


def details(err: grpc.RpcError) -> str:
    text = getattr(err, "details", None)
    return (text() if callable(text) else None) or str(err)


def is_invalid_token(err: grpc.RpcError) -> bool:
    """The simple-auth token expired (idle for ``--auth-token-ttl``): re-authenticate and resend."""
    return bool(status_code(err) == grpc.StatusCode.UNAUTHENTICATED and "invalid auth token" in details(err))


def is_connection_failure(err: grpc.RpcError) -> bool:
    """The request may never have reached a healthy server: reconnect (maybe another endpoint)."""
    return bool(status_code(err) == grpc.StatusCode.UNAVAILABLE)


def tls_hint(text: str) -> str:
    """A pointer at the usual causes when a failure looks like a TLS handshake problem, else ""."""
    lowered = text.lower()
    if any(h in lowered for h in _TLS_HINTS):
        return " -- TLS handshake problem: check trusted-ca-file, the client certificate and the server SANs"
    return ""


def to_kvstore_error(err: grpc.RpcError, endpoint: str = "") -> KVStoreError:
    """The kvstore exception for a failed etcd call."""
    code, text = status_code(err), details(err)
    where = f" ({endpoint})" if endpoint else ""
    lowered = text.lower()
    # etcd's own limit ("etcdserver: request is too large", INVALID_ARGUMENT) and gRPC's receive
    # limit ("received message larger than max", RESOURCE_EXHAUSTED): resending cannot help.
    if "request is too large" in lowered or "message larger than max" in lowered:
        return RequestTooLargeError(f"etcd refused the request for its size{where}: {text}")
    if "database space exceeded" in lowered:
        return NoSpaceError(f"etcd is out of space{where}: {text}")
    if code in _UNAVAILABLE_CODES:
        return UnavailableError(f"etcd unavailable{where}: {code.name if code else '?'}: {text}{tls_hint(text)}")
    if code == grpc.StatusCode.NOT_FOUND and "lease not found" in lowered:
        return LeaseNotFoundError(text)
    if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in lowered:
        # Range/Txn errors do not carry the compact revision (watch cancellations do).
        return CompactedError(0, text)
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED) or any(
            m in lowered for m in _AUTH_MESSAGES):
        return PermissionDeniedError(text)
    return KVStoreError(f"etcd request failed{where}: {code.name if code else '?'}: {text}")
