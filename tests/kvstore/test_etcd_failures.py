"""EtcdClient under failures: unreachable endpoints, failover, restarts, cluster ID changes, retry policy."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from apiserver.kvstore import ClusterIDChangedError, UnavailableError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.etcd._transport import Connection
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.tcpproxy import TcpProxy


def _dead_endpoint() -> str:
    with socket.socket() as s:  # bound then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_unreachable_endpoint_fails_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(UnavailableError, match=r"answered within 0\.5s"):
        await EtcdClient.connect(EtcdConfig(endpoints=(_dead_endpoint(),)), timeout=0.5)
    assert time.monotonic() - start < 3


async def test_calls_fail_quickly_while_etcd_is_down_and_recover_after(etcd_server: EtcdServer) -> None:
    async with await EtcdClient.connect(etcd_server.etcd_config()) as client:
        await client.put("k", b"1")
        await etcd_server.stop()
        start = time.monotonic()
        with pytest.raises(UnavailableError):
            await client.get("k")
        assert time.monotonic() - start < 3
        await etcd_server.start()
        await client.put("k", b"2")  # transparent reconnect (retried: puts are idempotent)
        kv = await client.get("k")
        assert kv is not None and kv.value == b"2"


async def test_endpoints_are_tried_in_order(etcd_shared: EtcdServer) -> None:
    config = EtcdConfig(endpoints=(_dead_endpoint(), etcd_shared.endpoint))
    async with await EtcdClient.connect(config, timeout=10) as client:
        assert client.endpoint == etcd_shared.endpoint
        assert (await client.status()).revision > 0


async def test_partitioned_endpoint_fails_over_by_keepalive_before_the_deadline(etcd_shared: EtcdServer) -> None:
    """An endpoint that accepts but never answers (a partition): the unanswered keepalive ping
    closes the connection, so a call in flight fails over to the next endpoint well before its
    deadline, instead of waiting for it and failing."""
    async with TcpProxy(etcd_shared.client_port) as proxy:
        config = EtcdConfig(endpoints=(proxy.endpoint, etcd_shared.endpoint), keepalive_heartbeat=1.0,
                            keepalive_timeout=2.0, request_timeout=20.0)
        async with await EtcdClient.connect(config, timeout=10) as client:
            assert client.endpoint == proxy.endpoint
            await client.put("partitioned", b"1")
            proxy.blackhole()
            kv = await client.get("partitioned")
            assert kv is not None and kv.value == b"1"
            assert client.endpoint == etcd_shared.endpoint


async def test_cluster_id_change_is_detected() -> None:
    with EtcdServer(name="first") as first, EtcdServer(name="second") as second:
        config = EtcdConfig(endpoints=(first.endpoint, second.endpoint))
        async with await EtcdClient.connect(config) as client, \
                await EtcdClient.connect(config, check_cluster_id=False) as lenient:
            seen = client.cluster_id
            assert seen and (await client.status()).cluster_id == seen
            await first.kill()
            # The failed call fails over to the second endpoint: another cluster behind it.
            with pytest.raises(ClusterIDChangedError, match=f"{seen:x}"):
                await client.put("k", b"v")
            await lenient.put("k", b"v")
            assert lenient.endpoint == second.endpoint


class _FakeRpcError(grpc.aio.AioRpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, text: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=text)


def _failing(code: grpc.StatusCode, text: str, calls: list[int]) -> Callable[[Connection, Any], Awaitable[Any]]:
    async def attempt(conn: Connection, metadata: Any) -> Any:
        calls.append(conn.generation)
        raise _FakeRpcError(code, text)

    return attempt


@pytest.mark.parametrize(("idempotent", "attempts"), [
    pytest.param(True, 3, id="idempotent-retried-on-fresh-channels"),
    pytest.param(False, 1, id="conditional-txn-never-resent"),
])
async def test_retry_policy(idempotent: bool, attempts: int) -> None:
    client = EtcdClient(EtcdConfig(endpoints=(_dead_endpoint(),)), retries=2)
    try:
        calls: list[int] = []
        with pytest.raises(UnavailableError):
            await client._run(_failing(grpc.StatusCode.UNAVAILABLE, "connection refused", calls),
                              idempotent=idempotent)
        assert len(calls) == attempts
        assert len(set(calls)) == attempts  # each retry on a new channel (fresh TLS files)
        calls.clear()
        with pytest.raises(Exception, match="duplicate key"):
            await client._run(_failing(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: duplicate key", calls),
                              idempotent=True)
        assert len(calls) == 1  # request errors are not retried
    finally:
        await client.close()


async def test_close_ends_open_watches(etcd_shared: EtcdServer, etcd_prefix: str) -> None:
    client = await EtcdClient.connect(etcd_shared.etcd_config())
    rev = await client.put(f"{etcd_prefix}k", b"v")
    watch = client.watch(etcd_prefix, start_revision=rev, progress_notify=False)
    try:
        assert (await asyncio.wait_for(anext(watch), 10)).events  # the stream is open
        pending = asyncio.ensure_future(anext(watch))
        await client.close()
        with pytest.raises(UnavailableError, match="closed"):
            await asyncio.wait_for(pending, 10)
    finally:
        await watch.aclose()
        await client.close()
