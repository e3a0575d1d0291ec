"""Exporter faults: SIGKILL mid-bootstrap then restart (stale keys of the dead run gone at once);
two exporters of one cluster during a rolling update; one Service too large for etcd."""

from __future__ import annotations

import time

import pytest

from localmesh.testing.synthetic import ClusterShape, endpoint_slice, service, synthetic_cluster
from tests.faults.harness import World, poll, seed_objects
from tests.faults.test_etcd_faults import SHAPE, exporting, logged

BIG = ClusterShape(name="cluster1", namespaces=4, nodes=20, identities=100, endpoints=5000, services=50)


async def _count(world: World, prefix: str) -> int:
    client = await world.etcd_client()
    try:
        kvs, _ = await client.list_prefix(prefix, keys_only=True)
        return len(kvs)
    finally:
        await client.close()


@pytest.mark.slow
async def test_exporter_sigkill_mid_bootstrap_then_restart(world: World) -> None:
    seed_objects(world.sim, synthetic_cluster(BIG))
    exporter = world.exporter()
    await exporter.start()

    async def some_written() -> bool:
        return await _count(world, "cilium/state/ip/v1/") > 0

    await poll(some_written, "first IP keys written")
    await exporter.kill()  # mid-bootstrap: some keys written, canaries not all
    # While it is down, endpoints go away: their keys, written by the dead run, are now stale.
    for obj in list(world.sim.list("cilium.io/v2", "CiliumEndpoint"))[:500]:
        world.sim.delete("cilium.io/v2", "CiliumEndpoint", obj["metadata"]["name"], obj["metadata"]["namespace"])
    fault = time.monotonic()
    await exporter.start()
    await world.converged("exporter: SIGKILL mid-bootstrap (5,000 endpoints), 500 deleted, restart",
                          exporter, since=fault)
    assert "Deleting stale keys left over from a previous run" in exporter.logs()


async def test_two_exporters_during_a_rolling_update(world: World) -> None:
    """Both compute the same bytes from the same API (the converters are deterministic), so their
    writes agree; each writes every key under its own leases at start, so the old one's leases
    hold nothing once the new one is synced, and stopping the old one loses nothing."""
    old = await exporting(world, "--kvstore-lease-ttl=30s")
    client = await world.etcd_client()
    try:
        kvs, _ = await client.list_prefix("cilium/state/")
        old_leases = {kv.lease for kv in kvs}
        new = world.exporter("--kvstore-lease-ttl=30s", name="exporter-new")
        await new.start()
        await poll(new.ready, "new exporter ready")
        # Changes while both run reach etcd once, with the same bytes.
        name, namespace = _first_endpoint(world)
        world.sim.delete("cilium.io/v2", "CiliumEndpoint", name, namespace)

        async def moved_to_new_leases() -> bool:
            found, _ = await client.list_prefix("cilium/state/")
            return bool(found) and not ({kv.lease for kv in found} & old_leases)

        await poll(moved_to_new_leases, "every key on the new exporter's leases")
        fault = time.monotonic()
        assert await old.terminate() == 0
        await world.converged("exporter: two at once (rolling update), old one stopped", new, since=fault)
        for lease in old_leases:  # the old run's leases expire: nothing of ours goes with them
            await client.revoke_lease(lease)
        report = await world.drift()
        assert report.equal, report.text()
    finally:
        await client.close()


def _first_endpoint(world: World) -> tuple[str, str]:
    obj = world.sim.list("cilium.io/v2", "CiliumEndpoint")[0]
    return obj["metadata"]["name"], obj["metadata"]["namespace"]


async def test_a_service_too_large_for_etcd_fails_alone(world: World) -> None:
    exporter = await exporting(world)
    svc = service(SHAPE, 0)
    namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    # 40 EndpointSlices of 1,000 ready endpoints: the ClusterService value exceeds 1.5 MiB.
    big_slices = []
    for s in range(40):
        big = endpoint_slice(SHAPE, 0)
        big["metadata"]["name"] = f"{name}-big-{s}"
        big["endpoints"] = [{"addresses": [f"10.{100 + s}.{i // 250}.{i % 250 + 1}"],
                             "conditions": {"ready": True}} for i in range(1000)]
        big_slices.append(big)
        world.sim.apply(big)
    await poll(lambda: logged(exporter, "Value too large for etcd"), "the oversized value logged")
    assert f"cilium/state/services/v1/cluster1/{namespace}/{name}" in exporter.logs()
    metrics = await exporter.metrics()
    assert "cilium_clustermesh_apiserver_kvstore_values_too_large_total{" in metrics
    # Nothing else is held back: another service changes meanwhile and reaches etcd.
    other = endpoint_slice(SHAPE, 1)
    other["endpoints"] = other["endpoints"][:1]
    world.sim.apply(other)
    big_key = f"cilium/state/services/v1/cluster1/{namespace}/{name}"

    async def only_the_big_one_differs() -> bool:
        report = await world.drift()
        drift = [p for p in report.prefixes if not p.equal]
        return (not report.problems and len(drift) == 1 and drift[0].differing == (big_key,)
                and not drift[0].missing and not drift[0].stale)

    await poll(only_the_big_one_differs, "everything but the oversized value in etcd")
    assert await exporter.ready()
    fault = time.monotonic()
    for big in big_slices:  # the fix: the value shrinks, and is written at once
        world.sim.delete("discovery.k8s.io/v1", "EndpointSlice", big["metadata"]["name"], namespace)
    await world.converged("exporter: a Service beyond etcd's request limit, then fixed", exporter, since=fault)
