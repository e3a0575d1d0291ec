"""The health and metrics servers answer kubelet and Prometheus over real HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from apiserver.metrics import Metrics
from apiserver.server import HealthServer, MetricsServer, parse_listen_address


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def test_readyz_follows_the_ready_callable() -> None:
    state = {"ready": False}
    server = HealthServer(0, ready=lambda: state["ready"], host="127.0.0.1")
    async with server:
        assert await _get(f"{server.url}/readyz") == (500, "NotReady")
        state["ready"] = True
        assert await _get(f"{server.url}/readyz") == (200, "Ready")


async def test_healthz_reports_the_reason_of_a_failure() -> None:
    reasons: list[str | None] = [None, "etcd: connection refused"]

    async def healthy() -> str | None:
        return reasons.pop(0)

    async def broken() -> str | None:
        raise ConnectionError("kube-apiserver unreachable")

    async with HealthServer(0, ready=lambda: True, healthy=healthy, host="127.0.0.1") as server:
        assert await _get(f"{server.url}/healthz") == (200, "ok")
        assert await _get(f"{server.url}/healthz") == (500, "etcd: connection refused")
    async with HealthServer(0, ready=lambda: True, healthy=broken, host="127.0.0.1") as server:
        status, text = await _get(f"{server.url}/healthz")
        assert status == 500 and "kube-apiserver unreachable" in text


async def test_metrics_server_serves_upstream_names() -> None:
    metrics = Metrics()
    metrics.kvstore_sync_errors_total.labels("nodes/v1", "c1").inc(3)
    async with MetricsServer("127.0.0.1:0", metrics.registry) as server:
        status, text = await _get(f"{server.url}/metrics")
    assert status == 200
    sample = 'cilium_clustermesh_apiserver_kvstore_sync_errors_total{scope="nodes/v1",source_cluster="c1"} 3.0'
    assert sample in text
    assert "_created" not in text  # Go client_golang emits no created series
    assert 'cilium_clustermesh_apiserver_version{arch=' in text


async def test_start_twice_and_busy_port_are_clear_errors() -> None:
    async with HealthServer(0, ready=lambda: True, host="127.0.0.1") as first:
        with pytest.raises(RuntimeError, match="already started"):
            await first.start()
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1"):
            await HealthServer(first.port, ready=lambda: True, host="127.0.0.1").start()


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        pytest.param(":9962", ("", 9962), id="all-addresses"),
        pytest.param("localhost:9889", ("localhost", 9889), id="host"),
        pytest.param("[::1]:80", ("::1", 80), id="ipv6"),
    ],
)
def test_parse_listen_address(addr: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(addr) == expected


@pytest.mark.parametrize("addr", ["9962", "host:port", ":70000"])
def test_parse_listen_address_refuses_garbage(addr: str) -> None:
    with pytest.raises(ValueError, match="invalid listen address"):
        parse_listen_address(addr)
