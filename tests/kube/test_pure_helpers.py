"""Line splitting, backoff, rate limiting and the resource table: the reflector's pure helpers."""

from __future__ import annotations

import asyncio
import random

import pytest

from apiserver.kube import (
    ALL_RESOURCES,
    CILIUM_NODES,
    ENDPOINT_SLICES,
    SERVICES,
    Backoff,
    TokenBucket,
    label_selector_for,
)
from apiserver.kube._lines import LineSplitter, LineTooLongError
from apiserver.kube.resources import service_proxy_selector


def test_lines_split_across_chunks() -> None:
    sp = LineSplitter()
    assert sp.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert sp.feed(b":2") == []
    assert sp.feed(b'}\n\n{"c":3}\n{"d"') == [b'{"b":2}', b'{"c":3}']
    assert sp.feed(b":4}") == []
    assert sp.tail() == b'{"d":4}'
    assert sp.tail() == b""


def test_lines_large_line_in_many_pieces() -> None:
    big = b'{"x":"' + b"y" * (5 * 1024 * 1024) + b'"}'
    sp = LineSplitter()
    out: list[bytes] = []
    for i in range(0, len(big), 65536):
        out += sp.feed(big[i:i + 65536])
    out += sp.feed(b"\n")
    assert out == [big]


def test_lines_too_long() -> None:
    sp = LineSplitter(max_line=10)
    sp.feed(b"12345")
    with pytest.raises(LineTooLongError):
        sp.feed(b"678901")


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(initial=0.2, maximum=30.0, jitter=0.2, rng=random.Random(1))
    delays = [b.next() for _ in range(12)]
    for n, d in enumerate(delays):
        base = min(30.0, 0.2 * 2**n)
        assert base * 0.8 <= d <= base * 1.2
    assert max(delays) <= 36.0
    b.reset()
    assert b.next() <= 0.24
    for _ in range(5000):  # no float overflow after many failures
        b.next()


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=5, maximum=1)


def test_rate_limiter_burst_then_rate() -> None:
    now = [100.0]
    rl = TokenBucket(qps=10, burst=3, clock=lambda: now[0])
    assert [rl.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.try_acquire() == pytest.approx(0.1)
    now[0] += 0.25  # 2.5 tokens back
    assert rl.try_acquire() == 0.0
    assert rl.try_acquire() == 0.0
    assert rl.try_acquire() == pytest.approx(0.05)
    assert TokenBucket(qps=0, burst=1).unlimited


async def test_rate_limiter_acquire_waits() -> None:
    rl = TokenBucket(qps=200, burst=1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(5):
        await rl.acquire()
    # 1 from the burst, 4 at 200/s: at least ~20 ms.
    assert loop.time() - start >= 0.018


@pytest.mark.parametrize(("proxy", "expected"), [
    pytest.param("", "!service.kubernetes.io/service-proxy-name", id="default-proxy"),
    pytest.param("my-proxy", "service.kubernetes.io/service-proxy-name=my-proxy", id="named-proxy"),
])
def test_service_proxy_selector(proxy: str, expected: str) -> None:
    assert service_proxy_selector(proxy) == expected
    assert label_selector_for(SERVICES, proxy) == expected
    assert label_selector_for(ENDPOINT_SLICES, proxy) == (
        "endpointslice.kubernetes.io/managed-by!=endpointslice-mesh-controller.cilium.io," + expected)
    assert label_selector_for(CILIUM_NODES, proxy) == ""


@pytest.mark.parametrize(("plural", "path", "namespaced"), [
    pytest.param("ciliumnodes", "/apis/cilium.io/v2/ciliumnodes", False, id="ciliumnodes"),
    pytest.param("ciliumidentities", "/apis/cilium.io/v2/ciliumidentities", False, id="ciliumidentities"),
    pytest.param("ciliumendpoints", "/apis/cilium.io/v2/ciliumendpoints", True, id="ciliumendpoints"),
    pytest.param("ciliumendpointslices", "/apis/cilium.io/v2alpha1/ciliumendpointslices", False,
                 id="ciliumendpointslices"),
    pytest.param("services", "/api/v1/services", True, id="services"),
    pytest.param("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", True, id="endpointslices"),
    pytest.param("namespaces", "/api/v1/namespaces", False, id="namespaces"),
    pytest.param("serviceexports", "/apis/multicluster.x-k8s.io/v1alpha1/serviceexports", True,
                 id="serviceexports"),
])
def test_resource_table(plural: str, path: str, namespaced: bool) -> None:
    (res,) = [r for r in ALL_RESOURCES if r.plural == plural]
    assert res.list_path() == path
    assert res.namespaced is namespaced


def test_resource_namespaced_paths() -> None:
    assert SERVICES.list_path("kube-system") == "/api/v1/namespaces/kube-system/services"
    assert SERVICES.api_version == "v1"
    assert ENDPOINT_SLICES.api_version == "discovery.k8s.io/v1"
    with pytest.raises(ValueError, match="cluster-scoped"):
        CILIUM_NODES.list_path("default")
