"""A prefix watch that survives broken streams without skipping or repeating an event.

Resume rule: after a break, re-create the watch at ``last event's mod_revision + 1``; before any
event, at the caller's ``start_revision``, or -- when that was 0 ("from now") -- at the created
response's header revision + 1. Header revisions of other responses are never used to resume:
while etcd replays history a response's header carries the *current* revision although older
events are still to come, and etcd 3.4 may send a progress notification ahead of pending events.

A cancellation because the start revision was compacted raises ``CompactedError``; the caller
relists. A watch created at revision N on a store that has not reached N - 1 (asked again
linearizably, since a lagging member may be behind for a moment) raises ``StoreResetError``: the
store was reset (an etcd restarted with an empty data dir keeps its cluster ID and would wait,
silently, for revisions that mean something else there). Closing the generator (``aclose()``)
cancels the gRPC stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, Protocol

import grpc

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver.kvstore._backend import (
    CompactedError,
    KVStoreError,
    PermissionDeniedError,
    StoreResetError,
    UnavailableError,
    WatchBatch,
)
from apiserver.kvstore.etcd._codec import prefix_range, to_events
from apiserver.kvstore.etcd._errors import details, is_invalid_token, status_code, to_kvstore_error
from apiserver.kvstore.etcd._transport import Connection, Transport, closed_under_call
from apiserver.kvstore.proto import etcd_rpc_pb2 as pb

log = get_logger(__name__)

WATCH_METHOD = "Watch.Watch"
_BACKOFF_INITIAL = 0.05
_BACKOFF_MAX = 1.0
# Stream failures after which the watch is re-created; anything else is raised to the caller.
_RESUMABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,  # the channel was replaced or closed under us
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,  # e.g. RST_STREAM while etcd shuts down
    grpc.StatusCode.UNKNOWN,
})


class WatchHost(Protocol):
    """What a watch needs from the client that owns it."""

    transport: Transport

    @property
    def token(self) -> str | None: ...

    @property
    def uses_password(self) -> bool: ...

    def metadata(self) -> tuple[tuple[str, str], ...] | None: ...

    def check_header(self, header: Any) -> None: ...

    async def reauthenticate(self, stale_token: str | None) -> None: ...

    async def current_revision(self) -> int: ...


class _StreamBroken(Exception):
    """The server ended the stream without an error status."""


def _create_request(key: bytes, range_end: bytes, start_revision: int, progress_notify: bool) -> bytes:
    request = pb.WatchRequest()
    create = request.create_request
    create.key = key
    create.range_end = range_end
    create.start_revision = start_revision
    create.progress_notify = progress_notify
    return request.SerializeToString()  # type: ignore[no-any-return]


def _is_auth_cancel(reason: str) -> bool:
    # etcd 3.4 reports an expired token on watch creation as "permission denied".
    return "permission denied" in reason or "auth token" in reason


async def _check_not_reset(host: WatchHost, prefix: str, next_rev: int) -> None:
    try:
        revision = await host.current_revision()
    except UnavailableError as exc:
        raise _StreamBroken(f"could not read the store's revision: {exc}") from None
    if revision < next_rev - 1:
        raise StoreResetError(f"etcd store was reset: the watch on {prefix!r} resumes at revision {next_rev}, "
                              f"the store is at revision {revision}")


async def watch_prefix(host: WatchHost, prefix: str, start_revision: int,
                       progress_notify: bool) -> AsyncGenerator[WatchBatch, None]:
    key, range_end = prefix_range(prefix)
    next_rev = start_revision  # 0 until the first created response tells us "now"
    backoff = Backoff(_BACKOFF_INITIAL, _BACKOFF_MAX, jitter=0.0)
    reauthenticated = False
    while True:
        conn: Connection = host.transport.current()
        token = host.token
        call = conn.stream(WATCH_METHOD)(metadata=host.metadata())
        try:
            await call.write(_create_request(key, range_end, next_rev, progress_notify))
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    raise _StreamBroken("watch stream ended by the server")
                host.check_header(resp.header)
                if resp.canceled:
                    if resp.compact_revision:
                        raise CompactedError(resp.compact_revision,
                                             f"watch on {prefix!r} from revision {next_rev} was compacted "
                                             f"(compact revision {resp.compact_revision})")
                    reason = resp.cancel_reason
                    if _is_auth_cancel(reason) and host.uses_password and not reauthenticated:
                        reauthenticated = True
                        await host.reauthenticate(token)
                        break
                    if _is_auth_cancel(reason):
                        raise PermissionDeniedError(f"watch on {prefix!r}: {reason}")
                    raise KVStoreError(f"etcd canceled the watch on {prefix!r}: {reason or 'no reason given'}")
                if resp.created:
                    backoff.reset()
                    reauthenticated = False
                    if next_rev == 0:
                        next_rev = resp.header.revision + 1
                    elif resp.header.revision < next_rev - 1:
                        await _check_not_reset(host, prefix, next_rev)
                    continue
                if resp.events:
                    events = to_events(resp.events)
                    next_rev = events[-1].mod_revision + 1
                    yield WatchBatch(events, resp.header.revision)
                elif progress_notify:
                    yield WatchBatch([], resp.header.revision)
            continue  # re-create after re-authentication
        except grpc.aio.AioRpcError as err:
            if is_invalid_token(err) and host.uses_password and not reauthenticated:
                reauthenticated = True
                await host.reauthenticate(token)
                continue
            if status_code(err) not in _RESUMABLE:
                raise to_kvstore_error(err, conn.endpoint.url) from None
            if status_code(err) == grpc.StatusCode.UNAVAILABLE:
                host.transport.failed(conn)
            log.info("etcd watch interrupted, resuming", prefix=prefix, revision=next_rev,
                     code=str(status_code(err)), error=details(err))
        except _StreamBroken as exc:
            log.info("etcd watch interrupted, resuming", prefix=prefix, revision=next_rev, error=str(exc))
        except asyncio.CancelledError:
            if not closed_under_call(conn):
                raise
            log.debug("etcd watch channel replaced, resuming", prefix=prefix, revision=next_rev)
        finally:
            call.cancel()
        await asyncio.sleep(backoff.next())
