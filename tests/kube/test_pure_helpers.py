"""Line splitting, backoff, rate limiting and the resource table: the reflector's pure helpers."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from apiserver.kube import (
    ALL_RESOURCES,
    CILIUM_NODES,
    ENDPOINT_SLICES,
    SERVICES,
    Backoff,
    TokenBucket,
    label_selector_for,
    namespaced_name,
    object_key,
    object_name,
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
    rl = TokenBucket(10, burst=3, clock=lambda: now[0])
    assert [rl.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.try_acquire() == pytest.approx(0.1)
    now[0] += 0.25  # 2.5 tokens back
    assert rl.try_acquire() == 0.0
    assert rl.try_acquire() == 0.0
    assert rl.try_acquire() == pytest.approx(0.05)
    assert TokenBucket(0, burst=1).unlimited
    assert TokenBucket(None, burst=1).try_acquire() == 0.0


async def test_rate_limiter_acquire_waits_first_come_first_served() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    rl = TokenBucket(200, burst=1, clock=lambda: now[0], sleep=sleep)
    waits = [await rl.acquire() for _ in range(5)]
    # 1 from the burst, then one every 5 ms.
    assert waits == pytest.approx([0.0, 0.005, 0.005, 0.005, 0.005])
    assert now[0] == pytest.approx(0.02)
    # Reserved ahead: three callers at once wait 5, 10 and 15 ms, in their order.
    assert [rl.reserve() for _ in range(3)] == pytest.approx([0.005, 0.010, 0.015])


async def test_rate_limiter_cancelled_wait_gives_its_token_back() -> None:
    now = [0.0]

    async def never(seconds: float) -> None:
        raise asyncio.CancelledError

    rl = TokenBucket(10, burst=1, clock=lambda: now[0], sleep=never)
    assert await rl.acquire() == 0.0
    with pytest.raises(asyncio.CancelledError):
        await rl.acquire()
    assert rl.reserve() == pytest.approx(0.1)  # not 0.2: the cancelled waiter's token came back
    rl.set_rate(None)
    assert rl.unlimited and rl.reserve() == 0.0


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


@pytest.mark.parametrize(("obj", "name"), [
    pytest.param({"metadata": {"namespace": "ns", "name": "a"}}, "ns/a", id="namespaced"),
    pytest.param({"metadata": {"name": "node1"}}, "node1", id="cluster-scoped"),
    pytest.param({"metadata": {"namespace": "ns"}}, "ns/<unnamed>", id="malformed"),
    pytest.param({}, "<unnamed>", id="no-metadata"),
])
def test_object_name(obj: dict[str, Any], name: str) -> None:
    assert object_name(obj) == name


def test_namespaced_name_is_the_text_of_object_key() -> None:
    obj = {"metadata": {"namespace": "ns", "name": "a"}}
    assert namespaced_name(*object_key(obj)) == object_name(obj) == "ns/a"
