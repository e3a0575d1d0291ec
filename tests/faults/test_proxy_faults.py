"""Network faults between the exporter process and etcd, through the fault TCP proxy
(``localmesh.testing.tcpproxy``), one after the other on one exporter: latency during the initial
export and during churn, every connection reset, and a partition (connections accepted, nothing
forwarded: /readyz must say not ready) then healed. The verifier reaches etcd directly."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from localmesh.testing.synthetic import ClusterShape, cilium_endpoint, synthetic_cluster
from localmesh.testing.tcpproxy import TcpProxy
from tests.faults.harness import ExporterProcess, World, poll, seed_objects
from tests.faults.test_etcd_faults import SHAPE

LATENCY = 0.2  # seconds, each way
# Keepalive as an operator would tune it for a quick failover (upstream's etcd.config keys).
KEEPALIVE = "dial-keep-alive-time: 1s\ndial-keep-alive-timeout: 2s\n"


@pytest.fixture
async def proxy(world: World) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(world.etcd.client_port) as p:
        yield p


def exporter_through(world: World, endpoints: list[str], name: str = "exporter") -> ExporterProcess:
    """An exporter whose etcd client config lists ``endpoints`` (proxies), with a short keepalive."""
    config = world.tmp / f"{name}-etcd.yaml"
    config.write_text("endpoints:\n" + "".join(f"- {e}\n" for e in endpoints) + KEEPALIVE)
    process = ExporterProcess(world.tmp, endpoints[0], world.kubeconfig, name=name)
    process.args = [f"--kvstore-opt=etcd.config={config}" if a.startswith("--kvstore-opt=etcd.address=") else a
                    for a in process.args]
    world.add(process)
    return process


def churn(world: World, added: range, deleted: int) -> None:
    shape = ClusterShape(name=SHAPE.name, namespaces=SHAPE.namespaces, endpoints=added.stop)
    for i in added:
        world.sim.apply(cilium_endpoint(shape, i))
    for obj in world.sim.list("cilium.io/v2", "CiliumEndpoint")[:deleted]:
        world.sim.delete("cilium.io/v2", "CiliumEndpoint", obj["metadata"]["name"], obj["metadata"]["namespace"])


async def test_etcd_slow_reset_and_partitioned(world: World, proxy: TcpProxy) -> None:
    proxy.latency(up=LATENCY, down=LATENCY)
    seed_objects(world.sim, synthetic_cluster(SHAPE))
    exporter = exporter_through(world, [proxy.endpoint])
    fault = time.monotonic()
    await exporter.start()
    await world.converged("etcd slow (200 ms each way): initial export", exporter, since=fault)

    fault = time.monotonic()
    churn(world, range(SHAPE.endpoints, SHAPE.endpoints + 200), deleted=100)
    await world.converged("etcd slow (200 ms each way): churn (200 added, 100 deleted)", exporter, since=fault)

    # Every connection reset in the middle of churn, still slow.
    fault = time.monotonic()
    churn(world, range(SHAPE.endpoints + 200, SHAPE.endpoints + 300), deleted=50)
    proxy.reset()
    await world.converged("etcd slow, every connection reset during churn", exporter, since=fault)
    assert proxy.accepted > 1

    # Partitioned (connections accepted, nothing forwarded): not ready; changes meanwhile; healed.
    proxy.heal()
    fault = time.monotonic()
    proxy.blackhole()
    await poll(exporter.not_ready, "not ready while etcd is unreachable")
    churn(world, range(SHAPE.endpoints + 300, SHAPE.endpoints + 400), deleted=100)
    proxy.heal()
    await world.converged("etcd partitioned (blackhole) during churn, then healed", exporter, since=fault)
