"""Kubernetes API faults under a running exporter process: watches dropped; 410 on re-watch; the
API server restarted having lost objects and with its resourceVersions back at the start;
unreachable for a while; a storm of 5xx answers. Each ends verify-equal."""

from __future__ import annotations

import time

import pytest

from localmesh.kubesim import KubeSim
from localmesh.testing.synthetic import ClusterShape, cilium_endpoint, synthetic_cluster
from tests.faults.harness import World, poll
from tests.faults.test_etcd_faults import SHAPE, exporting


def _endpoints(world: World) -> list[tuple[str, str]]:
    return [(o["metadata"]["name"], o["metadata"]["namespace"])
            for o in world.sim.list("cilium.io/v2", "CiliumEndpoint")]


def _churn(world: World, start: int, count: int) -> None:
    """Delete ``count`` endpoints and add as many new ones (new IPs)."""
    for name, namespace in _endpoints(world)[:count]:
        world.sim.delete("cilium.io/v2", "CiliumEndpoint", name, namespace)
    shape = ClusterShape(name="cluster1", namespaces=SHAPE.namespaces, endpoints=start + count)
    for i in range(start, start + count):
        world.sim.apply(cilium_endpoint(shape, i))


async def test_watches_dropped_and_410_on_rewatch(world: World) -> None:
    exporter = await exporting(world)
    fault = time.monotonic()
    world.sim.faults.expire_next_watch(count=10)
    world.sim.faults.close_watches()
    _churn(world, 1000, 50)
    await world.converged("kube: watches dropped, 410 on re-watch, 50 endpoints churned", exporter, since=fault)


async def test_api_server_restarted_having_lost_objects(world: World) -> None:
    exporter = await exporting(world)
    # A restored API server: a third of the endpoints and one service gone, its resourceVersions
    # starting again from the beginning (every watch of ours is "too large" for it).
    restored = KubeSim()
    kept = [o for o in synthetic_cluster(SHAPE)
            if not (o["kind"] == "CiliumEndpoint" and int(o["metadata"]["name"].rsplit("-", 1)[1]) % 3 == 0)
            and not (o["kind"] == "Service" and o["metadata"]["name"] == "svc-1")]
    restored.load(kept)
    fault = time.monotonic()
    await world.replace_sim(restored)
    await world.converged("kube: API server restored with objects lost, versions back", exporter, since=fault)


async def test_api_server_unreachable_then_back(world: World) -> None:
    exporter = await exporting(world)
    port = int(world.sim.url.rsplit(":", 1)[1])
    fault = time.monotonic()
    await world.sim.stop()  # connections refused

    before = exporter.logs().count("Kubernetes request failed, retrying")

    async def retried() -> bool:  # every reflector (7) retried 4 times: a few seconds of outage
        return exporter.logs().count("Kubernetes request failed, retrying") - before >= 28

    await poll(retried, "the exporter retrying against the unreachable API server")
    assert await exporter.ready()  # it keeps serving what it exported; etcd is fine
    _churn(world, 2000, 30)  # changes made meanwhile (the store lives on; its history too)
    await world.sim.start(host="127.0.0.1", port=port)
    await world.converged("kube: API server unreachable, changes meanwhile, back", exporter, since=fault)


@pytest.mark.slow
async def test_5xx_storm(world: World) -> None:
    exporter = await exporting(world)
    fault = time.monotonic()
    world.sim.faults.fail("*", 503, count=15)
    world.sim.faults.fail("*", 500, count=10)
    world.sim.faults.close_watches()
    _churn(world, 3000, 40)
    await world.converged("kube: 5xx storm (25 failed requests) during churn", exporter, since=fault)
