"""A 3-member etcd cluster (three processes on loopback) behind the exporter process: the leader
killed mid-export and during churn; the exporter keeps writing through the remaining quorum,
with nothing lost."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from localmesh.testing.synthetic import ClusterShape, cilium_endpoint, synthetic_cluster
from tests.faults.etcd_cluster import EtcdCluster
from tests.faults.harness import World, poll, seed_objects

SHAPE = ClusterShape(name="cluster1", namespaces=3, nodes=10, identities=50, endpoints=3000, services=20)

pytestmark = pytest.mark.slow


@pytest.fixture
async def cluster(world: World) -> AsyncIterator[EtcdCluster]:
    members = EtcdCluster()
    try:
        await members.start()
        world.endpoints = members.endpoints
        yield members
    finally:
        members.close()


async def _keys(world: World) -> int:
    client = await world.etcd_client()
    try:
        kvs, _ = await client.list_prefix("cilium/state/ip/", keys_only=True)
        return len(kvs)
    except Exception:
        return 0
    finally:
        await client.close()


async def test_leader_killed_mid_export_and_during_churn(world: World, cluster: EtcdCluster) -> None:
    seed_objects(world.sim, synthetic_cluster(SHAPE))
    exporter = world.exporter()
    await exporter.start()

    async def export_under_way() -> bool:
        return await _keys(world) > 0

    await poll(export_under_way, "the initial export under way")
    fault = time.monotonic()
    leader = await cluster.wait_leader()
    cluster.kill_member(leader)  # mid-export
    await world.converged("3-member etcd: leader killed mid-export (6,000 IP keys)", exporter, since=fault)

    # Churn, and the new leader killed during it; the first one comes back meanwhile.
    cluster.start_member(leader)
    await cluster.wait_leader()
    shape = ClusterShape(name="cluster1", namespaces=SHAPE.namespaces, endpoints=4000)
    for i in range(3000, 3500):
        world.sim.apply(cilium_endpoint(shape, i))
    fault = time.monotonic()
    second = await cluster.wait_leader()
    cluster.kill_member(second)
    for obj in world.sim.list("cilium.io/v2", "CiliumEndpoint")[:300]:
        world.sim.delete("cilium.io/v2", "CiliumEndpoint", obj["metadata"]["name"], obj["metadata"]["namespace"])
    await world.converged("3-member etcd: leader killed during churn (500 added, 300 deleted)", exporter,
                          since=fault)
