"""``EtcdClient``: the project's asyncio etcd v3 client (``KVBackend`` on grpc.aio), with auth admin.

Behaviour that callers rely on:
- every call has a deadline (``EtcdConfig.request_timeout``);
- connection failures switch to a fresh channel (next endpoint, TLS files re-read) and are
  retried only for idempotent requests (range, put, delete, unconditional txn, lease keepalive);
  a Txn with compares is never resent, since it may have been applied;
- password auth re-authenticates once when etcd says the token expired ("invalid auth token");
- every response header's ``cluster_id`` must equal the first one seen, else
  ``ClusterIDChangedError`` (the endpoint now leads to another etcd cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc

from apiserver._logging import get_logger
from apiserver.kvstore._backend import (
    MAX_TXN_OPS,
    ClusterIDChangedError,
    Compare,
    KeyValue,
    LeaseNotFoundError,
    Op,
    PermissionDeniedError,
    Status,
    UnavailableError,
    WatchBatch,
)
from apiserver.kvstore.etcd._codec import encode_txn, prefix_range, to_key_value
from apiserver.kvstore.etcd._errors import (
    details,
    is_connection_failure,
    is_invalid_token,
    tls_hint,
    to_kvstore_error,
)
from apiserver.kvstore.etcd._transport import Connection, Transport, closed_under_call
from apiserver.kvstore.etcd._watch import watch_prefix
from apiserver.kvstore.etcd.auth import Grant, KeyRange, Permission
from apiserver.kvstore.etcd.config import EtcdConfig
from apiserver.kvstore.proto import etcd_rpc_pb2 as pb

log = get_logger(__name__)

__all__ = ["PAGE_GROWTH_MAX", "EtcdClient"]

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...] | None

_RETRY_BACKOFF = (0.05, 0.2, 0.5)
PAGE_GROWTH_MAX = 64
_CONNECT_POLL = 0.1
_CONNECT_POLL_MAX = 2.0  # between rounds over the endpoints, doubling from _CONNECT_POLL


class EtcdClient:
    """See the module docstring. Create with ``await EtcdClient.connect(config)``; close with
    ``await client.close()`` or use ``async with``."""

    def __init__(self, config: EtcdConfig, *, check_cluster_id: bool = True, retries: int = 2) -> None:
        self.config = config
        self.check_cluster_id = check_cluster_id
        self.retries = retries
        self.transport = Transport(config)
        self._cluster_id: int | None = None
        self._token: str | None = None
        self._auth_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def connect(cls, config: EtcdConfig, *, timeout: float | None = None,
                      check_cluster_id: bool = True, retries: int = 2) -> EtcdClient:
        """Connect to the first endpoint that answers within ``timeout`` (default: the config's
        dial timeout), authenticating if a username is configured. Raises ``UnavailableError``
        when none answers, ``PermissionDeniedError`` for bad credentials and ``EtcdConfigError``
        (``EtcdTLSError``) for unusable TLS files."""
        client = cls(config, check_cluster_id=check_cluster_id, retries=retries)
        try:
            await client._establish(config.dial_timeout if timeout is None else timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def _establish(self, budget: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        request = pb.StatusRequest().SerializeToString()
        last_error = "no attempt made"
        pause = _CONNECT_POLL
        attempts = 0
        while True:
            for index in range(len(self.transport.endpoints)):
                conn = self.transport.use_endpoint(index)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                attempt = min(remaining, self.config.dial_timeout)
                try:
                    if self.config.username:
                        await self._authenticate(conn, attempt)
                    resp = await conn.unary("Maintenance.Status")(request, timeout=attempt,
                                                                  metadata=self.metadata())
                except grpc.aio.AioRpcError as err:
                    if not (is_connection_failure(err) or err.code() == grpc.StatusCode.DEADLINE_EXCEEDED):
                        raise to_kvstore_error(err, conn.endpoint.url) from None
                    last_error = f"{conn.endpoint.url}: {details(err)}"
                    attempts += 1
                    log.warning("Unable to connect to etcd, retrying", endpoint=conn.endpoint.url,
                                error=details(err) + tls_hint(details(err)), attempt=attempts)
                    continue
                self.check_header(resp.header)
                log.debug("Connected to etcd", endpoint=conn.endpoint.url, cluster_id=self._cluster_id)
                return
            if loop.time() >= deadline:
                raise _unreachable(self.config.endpoints, budget, last_error)
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, _CONNECT_POLL_MAX)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ------------------------------------------------------------------ plumbing (also for watches)

    @property
    def cluster_id(self) -> int | None:
        """The etcd cluster ID of the first response, if any response was seen yet."""
        return self._cluster_id

    def forget_cluster_id(self) -> None:
        """Adopt the cluster ID of the next response (the owner decided a new etcd cluster is fine)."""
        self._cluster_id = None

    @property
    def endpoint(self) -> str:
        return self.transport.endpoint.url

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def uses_password(self) -> bool:
        return bool(self.config.username)

    def metadata(self) -> Metadata:
        return (("token", self._token),) if self._token else None

    def check_header(self, header: Any) -> None:
        cluster_id = header.cluster_id
        if self._cluster_id is None:
            if cluster_id:
                self._cluster_id = cluster_id
        elif cluster_id != self._cluster_id and self.check_cluster_id:
            raise ClusterIDChangedError(
                f"etcd at {self.endpoint} answered for cluster {cluster_id:x}, "
                f"but this client first talked to cluster {self._cluster_id:x}")

    async def _authenticate(self, conn: Connection, deadline_s: float) -> None:
        request = pb.AuthenticateRequest(name=self.config.username or "", password=self.config.password or "")
        try:
            resp = await conn.unary("Auth.Authenticate")(request.SerializeToString(), timeout=deadline_s)
        except grpc.aio.AioRpcError as err:
            if is_connection_failure(err) or err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            raise PermissionDeniedError(
                f"etcd authentication as {self.config.username!r} failed: {details(err)}") from None
        self._token = resp.token

    async def reauthenticate(self, stale_token: str | None) -> None:
        """Get a new token unless another task already replaced ``stale_token``."""
        async with self._auth_lock:
            if self._token != stale_token:
                return
            log.info("etcd auth token expired, re-authenticating", user=self.config.username)
            try:
                await self._authenticate(self.transport.current(), self.config.request_timeout)
            except grpc.aio.AioRpcError as err:
                raise to_kvstore_error(err, self.endpoint) from None

    async def _run(self, attempt: Callable[[Connection, Metadata], Awaitable[T]], *, idempotent: bool) -> T:
        """Run one request with the retry, failover and re-authentication policy."""
        failures = 0
        reauthenticated = False
        while True:
            conn = self.transport.current()
            token = self._token
            try:
                return await attempt(conn, self.metadata())
            except asyncio.CancelledError:
                if not closed_under_call(conn):
                    raise
                # The channel was closed under the call: like a broken connection.
                if not idempotent or failures >= self.retries:
                    raise UnavailableError(
                        f"etcd connection to {conn.endpoint.url} closed during the call") from None
            except grpc.aio.AioRpcError as err:
                if is_invalid_token(err) and self.uses_password and not reauthenticated:
                    # Rejected before being applied, so safe to resend even if not idempotent.
                    reauthenticated = True
                    await self.reauthenticate(token)
                    continue
                if not is_connection_failure(err) and not (
                        conn.retired and err.code() == grpc.StatusCode.CANCELLED):
                    raise to_kvstore_error(err, conn.endpoint.url) from None
                self.transport.failed(conn)
                if not idempotent or failures >= self.retries:
                    raise UnavailableError(f"etcd unavailable ({conn.endpoint.url}): {details(err)}"
                                           f"{tls_hint(details(err))}") from None
            await asyncio.sleep(_RETRY_BACKOFF[min(failures, len(_RETRY_BACKOFF) - 1)])
            failures += 1

    async def _unary(self, method: str, request: Any, *, idempotent: bool) -> Any:
        """Call ``method`` with ``request``: a protobuf message, or one already serialized."""
        payload = request if type(request) is bytes else request.SerializeToString()
        timeout = self.config.request_timeout

        async def attempt(conn: Connection, metadata: Metadata) -> Any:
            return await conn.unary(method)(payload, timeout=timeout, metadata=metadata)

        resp = await self._run(attempt, idempotent=idempotent)
        self.check_header(resp.header)
        return resp

    # ------------------------------------------------------------------ KV

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._unary("KV.Range", pb.RangeRequest(key=key.encode()), idempotent=True)
        return to_key_value(resp.kvs[0]) if resp.kvs else None

    async def list_prefix(self, prefix: str, *, revision: int = 0, page_size: int = 0,
                          keys_only: bool = False) -> tuple[list[KeyValue], int]:
        out: list[KeyValue] = []
        at = revision
        async with contextlib.aclosing(self._pages(prefix, revision, page_size, keys_only)) as pages:
            async for page, page_revision in pages:
                out.extend(page)
                at = page_revision
        return out, at

    async def iter_prefix(self, prefix: str, *, page_size: int,
                          keys_only: bool = False) -> AsyncIterator[tuple[list[KeyValue], int]]:
        async with contextlib.aclosing(self._pages(prefix, 0, page_size, keys_only)) as pages:
            async for page in pages:
                yield page

    async def _pages(self, prefix: str, revision: int, page_size: int,
                     keys_only: bool) -> AsyncGenerator[tuple[list[KeyValue], int], None]:
        """Pages of ``prefix`` at one revision, with that revision."""
        key, range_end = prefix_range(prefix)
        at = revision
        limit = max(page_size, 0)
        while True:
            request = pb.RangeRequest(key=key, range_end=range_end, revision=at, keys_only=keys_only,
                                      limit=limit)
            resp = await self._unary("KV.Range", request, idempotent=True)
            if at == 0:
                # Later pages are read at the first page's revision: one consistent snapshot.
                at = resp.header.revision
            yield [to_key_value(kv) for kv in resp.kvs], at
            if page_size <= 0 or not resp.more or not resp.kvs:
                return
            key = resp.kvs[-1].key + b"\0"
            # etcd 3.4 walks the whole rest of the range on every limited request (to count it), so
            # fixed small pages make a listing quadratic: 13 s instead of 0.8 s for 200k keys at
            # 256 per page. Doubling the page (up to PAGE_GROWTH_MAX times the first) keeps it
            # linear while a small prefix still comes back in one small page.
            limit = min(limit * 2, page_size * PAGE_GROWTH_MAX)

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        resp = await self._unary("KV.Put", pb.PutRequest(key=key.encode(), value=value, lease=lease),
                                 idempotent=True)
        return int(resp.header.revision)

    async def delete(self, key: str) -> int:
        resp = await self._unary("KV.DeleteRange", pb.DeleteRangeRequest(key=key.encode()), idempotent=True)
        return int(resp.deleted)

    async def delete_prefix(self, prefix: str) -> int:
        key, range_end = prefix_range(prefix)
        resp = await self._unary("KV.DeleteRange", pb.DeleteRangeRequest(key=key, range_end=range_end),
                                 idempotent=True)
        return int(resp.deleted)

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op],
                  failure: Sequence[Op] = ()) -> bool:
        request = encode_txn(compares, success, failure)
        # Without compares the outcome does not depend on state: resending is harmless.
        resp = await self._unary("KV.Txn", request, idempotent=not compares)
        return bool(resp.succeeded)

    async def apply(self, ops: Sequence[Op]) -> int:
        if not ops:
            # Status needs no key permission, unlike a Range, and tells the current revision.
            return (await self.status()).revision
        revision = 0
        for start in range(0, len(ops), MAX_TXN_OPS):
            resp = await self._unary("KV.Txn", encode_txn((), ops[start:start + MAX_TXN_OPS]), idempotent=True)
            revision = resp.header.revision
        return revision

    async def compact(self, revision: int, *, physical: bool = False) -> None:
        """Drop history before ``revision`` (watches and reads older than it get ``CompactedError``)."""
        await self._unary("KV.Compact", pb.CompactionRequest(revision=revision, physical=physical),
                          idempotent=True)

    # ------------------------------------------------------------------ leases

    async def grant_lease(self, ttl: float) -> int:
        seconds = max(1, int(-(-ttl // 1)))  # whole seconds, rounded up
        resp = await self._unary("Lease.LeaseGrant", pb.LeaseGrantRequest(TTL=seconds), idempotent=False)
        if resp.error:
            raise UnavailableError(f"etcd refused the lease grant: {resp.error}")
        return int(resp.ID)

    async def keepalive(self, lease_id: int) -> float:
        payload = pb.LeaseKeepAliveRequest(ID=lease_id).SerializeToString()
        timeout = self.config.request_timeout

        async def attempt(conn: Connection, metadata: Metadata) -> Any:
            # One request on the bidi stream: keepalives run every TTL/3, a stream per beat is cheap.
            call = conn.stream("Lease.LeaseKeepAlive")(timeout=timeout, metadata=metadata)
            try:
                await call.write(payload)
                return await call.read()
            finally:
                call.cancel()

        resp = await self._run(attempt, idempotent=True)
        if resp is grpc.aio.EOF:
            raise UnavailableError("etcd closed the lease keepalive stream without an answer")
        self.check_header(resp.header)
        if resp.TTL <= 0:
            raise LeaseNotFoundError(f"lease {lease_id:x} not found (expired or revoked)")
        return float(resp.TTL)

    async def revoke_lease(self, lease_id: int) -> None:
        """Raises ``LeaseNotFoundError`` if the lease is already gone."""
        await self._unary("Lease.LeaseRevoke", pb.LeaseRevokeRequest(ID=lease_id), idempotent=True)

    async def lease_time_to_live(self, lease_id: int) -> float:
        """Remaining TTL in seconds; raises ``LeaseNotFoundError`` if the lease is gone."""
        resp = await self._unary("Lease.LeaseTimeToLive", pb.LeaseTimeToLiveRequest(ID=lease_id),
                                 idempotent=True)
        if resp.TTL < 0:
            raise LeaseNotFoundError(f"lease {lease_id:x} not found (expired or revoked)")
        return float(resp.TTL)

    # ------------------------------------------------------------------ watch, status

    def watch(self, prefix: str, *, start_revision: int = 0,
              progress_notify: bool = True) -> AsyncGenerator[WatchBatch, None]:
        """See ``KVBackend.watch`` and ``_watch``. Close it with ``aclose()`` (cancels the stream)."""
        return watch_prefix(self, prefix, start_revision, progress_notify)

    async def current_revision(self) -> int:
        """The store's revision, read linearizably (through the leader's read index, so no lower
        than any revision this client has seen from any member, unless the store was reset)."""
        resp = await self._unary("KV.Range", pb.RangeRequest(key=b"\0", keys_only=True), idempotent=True)
        return int(resp.header.revision)

    async def status(self) -> Status:
        resp = await self._unary("Maintenance.Status", pb.StatusRequest(), idempotent=True)
        header = resp.header
        return Status(cluster_id=header.cluster_id, member_id=header.member_id, version=resp.version,
                      db_size=resp.dbSize, leader=resp.leader, raft_term=resp.raftTerm, revision=header.revision,
                      errors=tuple(resp.errors))

    async def member_list(self) -> list[tuple[int, str, list[str]]]:
        """``(member id, name, client URLs)`` of every member."""
        resp = await self._unary("Cluster.MemberList", pb.MemberListRequest(), idempotent=True)
        return [(m.ID, m.name, list(m.clientURLs)) for m in resp.members]

    # ------------------------------------------------------------------ auth administration

    async def _admin(self, method: str, request: Any) -> Any:
        return await self._unary(method, request, idempotent=False)

    async def auth_enable(self) -> None:
        await self._admin("Auth.AuthEnable", pb.AuthEnableRequest())

    async def auth_disable(self) -> None:
        await self._admin("Auth.AuthDisable", pb.AuthDisableRequest())

    async def user_add(self, name: str, password: str | None = None) -> None:
        """Without a password the user can only authenticate by certificate CN."""
        request = pb.AuthUserAddRequest(name=name, password=password or "")
        request.options.no_password = password is None
        await self._admin("Auth.UserAdd", request)

    async def user_delete(self, name: str) -> None:
        await self._admin("Auth.UserDelete", pb.AuthUserDeleteRequest(name=name))

    async def user_get(self, name: str) -> list[str]:
        """The user's roles."""
        resp = await self._admin("Auth.UserGet", pb.AuthUserGetRequest(name=name))
        return list(resp.roles)

    async def user_list(self) -> list[str]:
        resp = await self._admin("Auth.UserList", pb.AuthUserListRequest())
        return list(resp.users)

    async def user_grant_role(self, name: str, role: str) -> None:
        await self._admin("Auth.UserGrantRole", pb.AuthUserGrantRoleRequest(user=name, role=role))

    async def user_revoke_role(self, name: str, role: str) -> None:
        await self._admin("Auth.UserRevokeRole", pb.AuthUserRevokeRoleRequest(name=name, role=role))

    async def role_add(self, name: str) -> None:
        await self._admin("Auth.RoleAdd", pb.AuthRoleAddRequest(name=name))

    async def role_delete(self, name: str) -> None:
        await self._admin("Auth.RoleDelete", pb.AuthRoleDeleteRequest(role=name))

    async def role_get(self, name: str) -> list[Grant]:
        resp = await self._admin("Auth.RoleGet", pb.AuthRoleGetRequest(role=name))
        return [Grant(Permission(p.permType), KeyRange(p.key.decode(), p.range_end.decode("latin-1")))
                for p in resp.perm]

    async def role_list(self) -> list[str]:
        resp = await self._admin("Auth.RoleList", pb.AuthRoleListRequest())
        return list(resp.roles)

    async def role_grant_permission(self, role: str, key: str, range_end: str, perm: int) -> None:
        """``perm``: 0 read, 1 write, 2 readwrite (``Permission``).
        ``range_end`` "" means the single key ``key``."""
        request = pb.AuthRoleGrantPermissionRequest(name=role)
        request.perm.permType = int(perm)
        request.perm.key = key.encode()
        request.perm.range_end = range_end.encode("latin-1")
        await self._admin("Auth.RoleGrantPermission", request)

    async def role_revoke_permission(self, role: str, key: str, range_end: str) -> None:
        await self._admin("Auth.RoleRevokePermission", pb.AuthRoleRevokePermissionRequest(
            role=role, key=key.encode(), range_end=range_end.encode("latin-1")))


def _unreachable(endpoints: Sequence[str], timeout: float, last_error: str) -> UnavailableError:
    return UnavailableError(f"no etcd endpoint of {', '.join(endpoints)} answered within {timeout:g}s "
                            f"(last error: {last_error}){tls_hint(last_error)}")
