"""etcd faults under a running exporter process: SIGKILL and restart with its data; restart with
an empty data dir; leases revoked behind our back. Every scenario ends verify-equal, and /readyz
tells the truth throughout (not ready while etcd is gone or empty)."""

from __future__ import annotations

import time

from localmesh.testing.synthetic import ClusterShape, synthetic_cluster
from tests.faults.harness import ExporterProcess, World, poll, seed_objects

SHAPE = ClusterShape(name="cluster1", namespaces=3, nodes=5, identities=20, endpoints=300, services=10)


async def exporting(world: World, *extra: str, shape: ClusterShape = SHAPE) -> ExporterProcess:
    seed_objects(world.sim, synthetic_cluster(shape))
    exporter = world.exporter(*extra)
    await exporter.start()
    await world.converged("initial export (300 endpoints, 10 services)", exporter)
    return exporter


async def logged(process: ExporterProcess, text: str) -> bool:
    return text in process.logs()


async def test_etcd_sigkill_and_restart_with_its_data(world: World) -> None:
    exporter = await exporting(world)
    fault = time.monotonic()
    await world.etcd.kill()
    await poll(exporter.not_ready, "not ready while etcd is gone")
    await world.etcd.start()
    await world.converged("etcd: SIGKILL, restart with its data", exporter, since=fault)


async def test_etcd_restarted_with_an_empty_data_dir(world: World) -> None:
    exporter = await exporting(world)
    fault = time.monotonic()
    await world.etcd.kill()
    await world.etcd.restart(wipe=True)  # the pod's emptyDir: same member, no data
    await poll(lambda: logged(exporter, "etcd store was reset; writing everything again"), "reset noticed")
    # From the moment it is ready again, etcd must be complete: readiness is truthful.
    await poll(exporter.ready, "ready again")
    report = await world.drift()
    assert report.equal, report.text()
    await world.converged("etcd: restart with an empty data dir", exporter, since=fault)


async def test_leases_revoked_behind_our_back(world: World) -> None:
    exporter = await exporting(world, "--kvstore-lease-ttl=30s")
    client = await world.etcd_client()
    try:
        fault = time.monotonic()
        kvs, _ = await client.list_prefix("cilium/")
        for lease in {kv.lease for kv in kvs if kv.lease}:
            await client.revoke_lease(lease)
        kvs, _ = await client.list_prefix("cilium/state/")
        assert kvs == []
    finally:
        await client.close()
    await world.converged("etcd: every lease revoked behind our back", exporter, since=fault)
