"""A 3-member etcd cluster with a fault proxy in front of every member's client port (the exporter's
endpoints) and peer port (the URL each member advertises to the others). The member the exporter
is connected to, the leader, is partitioned from everyone: its client proxy forwards nothing, its
peer proxy forwards nothing, and the other members' peer proxies hold every connection on which it
named itself (rafthttp sends ``X-Server-From: <member ID>`` on each request: every member dials
from 127.0.0.1). The exporter fails over and keeps writing through the remaining quorum, nothing
lost; after the heal the member catches up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from localmesh.testing.ports import free_port
from localmesh.testing.synthetic import synthetic_cluster
from localmesh.testing.tcpproxy import TcpProxy
from tests.faults.etcd_cluster import EtcdCluster
from tests.faults.harness import World, poll, seed_objects
from tests.faults.test_etcd_faults import SHAPE
from tests.faults.test_proxy_faults import churn, exporter_through

pytestmark = pytest.mark.slow

Proxies = tuple[list[TcpProxy], list[TcpProxy]]  # (client, peer) proxy of every member


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
async def partitionable(world: World) -> AsyncIterator[tuple[EtcdCluster, Proxies]]:
    members = EtcdCluster(token="partition")
    async with AsyncExitStack() as stack:
        stack.callback(members.close)
        clients, peers = [], []
        for i, client_url in enumerate(members.client_urls):
            clients.append(await stack.enter_async_context(TcpProxy(_port(client_url))))
            listen = free_port()  # the member listens here; its advertised peer URL is the proxy
            members.listen_peer_urls[i] = f"http://127.0.0.1:{listen}"
            peers.append(await TcpProxy(listen).start(port=_port(members.peer_urls[i])))
            stack.push_async_callback(peers[-1].stop)
        await members.start()
        world.endpoints = members.endpoints  # the verifier reaches every member directly
        yield members, (clients, peers)


async def _status(url: str) -> tuple[int, int, int]:
    """(member ID, leader ID, revision) as the member at ``url`` sees them (its own answer)."""
    client = await EtcdClient.connect(EtcdConfig(endpoints=(url,)), timeout=5, check_cluster_id=False)
    try:
        status = await client.status()
        return status.member_id, status.leader, status.revision
    finally:
        await client.close()


async def test_the_exporters_member_partitioned_then_healed(world: World,
                                                            partitionable: tuple[EtcdCluster, Proxies]) -> None:
    members, (clients, peers) = partitionable
    lost = await members.wait_leader()
    others = [i for i in range(3) if i != lost]
    seed_objects(world.sim, synthetic_cluster(SHAPE))
    exporter = exporter_through(world, [clients[i].endpoint for i in [lost, *others]])
    await exporter.start()
    await world.converged("initial export (300 endpoints, 10 services)", exporter)
    assert clients[lost].connections > 0 and not any(clients[i].accepted for i in others)
    lost_id, _, _ = await _status(members.client_urls[lost])

    fault = time.monotonic()
    clients[lost].blackhole()
    peers[lost].blackhole()
    for i in others:
        peers[i].blackhole(matching=f"X-Server-From: {lost_id:x}\r\n".encode())
    world.endpoints = [members.client_urls[i] for i in others]
    churn(world, range(SHAPE.endpoints, SHAPE.endpoints + 100), deleted=100)
    await world.converged("3-member etcd: the exporter's member (leader) partitioned, churn (100+100)",
                          exporter, since=fault)
    assert any(clients[i].connections for i in others)  # failed over
    seen = {i: await _status(members.client_urls[i]) for i in others}
    (quorum_leader,) = {leader for _, leader, _ in seen.values()}  # the two agree on a new leader...
    quorum = next(i for i, (member, _, _) in seen.items() if member == quorum_leader)
    _, lost_leader, lost_revision = await _status(members.client_urls[lost])
    assert lost_leader != quorum_leader and lost_revision < seen[quorum][2]  # ...it saw none of it

    fault = time.monotonic()
    for proxy in clients + peers:
        proxy.heal()
    churn(world, range(SHAPE.endpoints + 100, SHAPE.endpoints + 150), deleted=50)
    await world.converged("3-member etcd: partitioned member healed, churn (50+50)", exporter, since=fault)

    async def caught_up() -> bool:
        (_, _, mine), (_, _, theirs) = await _status(members.client_urls[lost]), await _status(
            members.client_urls[quorum])
        return mine == theirs

    await poll(caught_up, "the healed member caught up")
    world.endpoints = [members.client_urls[lost]]  # the healed member alone holds everything
    report = await world.drift()
    assert report.equal, report.text()
