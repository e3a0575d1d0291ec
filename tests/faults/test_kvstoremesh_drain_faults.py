"""KVStoreMesh (its own process) mirroring a large remote: the remote's config file removed, the
remote changed meanwhile, and the file re-created while the cache is being drained (the drain
grace period holds the drain open). The re-add waits for the drain and is replayed after it: the
cache ends equal to the remote, nothing stale, and status, readiness and metrics agree."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from localmesh.testing.etcd import EtcdServer
from localmesh.testing.synthetic import ClusterShape
from tests.faults.harness import World, poll
from tests.faults.test_etcd_faults import exporting
from tests.faults.test_kvstoremesh_faults import Mesh, logged_text

pytestmark = pytest.mark.slow

LARGE = ClusterShape(name="cluster1", namespaces=3, nodes=10, identities=50, endpoints=1000, services=20)
GRACE = "2s"
READINESS = 'cilium_kvstoremesh_remote_cluster_readiness_status{target_cluster="cluster1"}'


class Observed:
    """What the KVStoreMesh process says about itself: /v1/cluster, /readyz, /metrics."""

    def __init__(self, mesh: Mesh) -> None:
        args = mesh.process.args
        self.api = _value(args, "--api-serve-addr=")
        self.health = f"127.0.0.1:{_value(args, '--health-port=')}"
        self.metrics = _value(args, "--prometheus-serve-addr=")

    async def get(self, addr: str, path: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.get(f"http://{addr}{path}") as resp:
            body = await (resp.json() if resp.content_type == "application/json" else resp.text())
            return resp.status, body

    async def cluster(self, name: str) -> dict[str, Any] | None:
        _, clusters = await self.get(self.api, "/v1/cluster")
        return next((c for c in clusters if c["name"] == name), None)

    async def gauge(self, line_start: str) -> float | None:
        _, text = await self.get(self.metrics, "/metrics")
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
        return values[0] if values else None


def _value(args: list[str], flag: str) -> str:
    return next(a[len(flag):] for a in args if a.startswith(flag))


@pytest.fixture
async def large_mesh(world: World) -> AsyncIterator[Mesh]:
    with EtcdServer(name="cluster2") as local:
        await exporting(world, shape=LARGE)
        mesh = Mesh(world, local)
        mesh.process.args = [f"--clustermesh-drain-grace-period={GRACE}" if a.startswith(
            "--clustermesh-drain-grace-period=") else a for a in mesh.process.args]
        mesh.process.args.append(f"--prometheus-serve-addr=127.0.0.1:{mesh.metrics_port}")
        await mesh.process.start()
        await mesh.converged("kvstoremesh: initial mirror (2,000 IP keys)", time.monotonic())
        yield mesh
        await mesh.process.kill()


async def test_remote_removed_and_re_added_during_its_drain(large_mesh: Mesh) -> None:
    m = large_mesh
    seen = Observed(m)
    config = m.config_dir / "cluster1"
    content = config.read_text()

    fault = time.monotonic()
    config.unlink()
    await poll(lambda: logged_text(m.process, "Waiting before removing cached data"), "drain under way")
    # While it drains, the remote is gone from the status and the metrics.
    assert await seen.cluster("cluster1") is None
    assert await seen.gauge("cilium_kvstoremesh_remote_clusters ") == 0
    assert await seen.gauge(READINESS) is None
    # The remote changes while it is not watched: the replayed connection must see all of it.
    for obj in m.world.sim.list("cilium.io/v2", "CiliumEndpoint")[:200]:
        m.world.sim.delete("cilium.io/v2", "CiliumEndpoint", obj["metadata"]["name"], obj["metadata"]["namespace"])
    config.write_text(content)
    await poll(lambda: logged_text(m.process, "Delaying configuration of remote cluster"), "re-add queued")
    assert "Successfully removed all cached data" not in m.process.logs()  # re-added during the drain
    await m.world.converged("(remote) exporter, 200 endpoints deleted", None)
    await m.converged("kvstoremesh: remote removed and re-added during its drain (2,000 IP keys)", fault)
    logs = m.process.logs()
    assert logs.index("Successfully removed all cached data") < logs.index("Replaying delayed configuration")

    # Status, readiness and metrics agree with the cache.
    async def consistent() -> bool:
        entry = await seen.cluster("cluster1")
        return entry is not None and entry["ready"] and entry["connected"] \
            and entry["num-endpoints"] == 2 * (LARGE.endpoints - 200)

    await poll(consistent, "/v1/cluster: cluster1 ready, with every endpoint counted")
    assert (await seen.get(seen.health, "/readyz"))[0] == 200
    assert await seen.gauge("cilium_kvstoremesh_remote_clusters ") == 1
    assert await seen.gauge(READINESS) == 1
