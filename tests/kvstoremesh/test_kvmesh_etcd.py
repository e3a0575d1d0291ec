"""KVStoreMesh against real etcds: one local, several remotes fed with wire-format keys.

After every step the local cache must equal each remote's state EXACTLY (full key/value maps,
no missing, no stale keys) and ``GET /v1/cluster`` / ``kvstoremesh-dbg status`` must tell the truth.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from kvmesh_etcd import ETCD_FAST, Mesh, client_of, etcds, seed, snapshot, with_config
from kvmesh_helpers import RemoteData, eventually

from apiserver.cli import main as cli_main
from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstore import Put
from localmesh.testing.tcpproxy import TcpProxy

pytestmark = pytest.mark.slow


async def dbg_status(capsys: pytest.CaptureFixture[str], mesh: Mesh, *args: str) -> str:
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, ["kvstoremesh-dbg", "status", "-H", mesh.daemon.api.url, *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


async def test_mirror_updates_kill_restart_wipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with etcds("local", "r2", "r3", "r4") as srv:
        data = {name: RemoteData.sample(name, i, nodes=3, mcs=(None if name == "r4" else True))
                for i, name in enumerate(("r2", "r3", "r4"), start=2)}
        await asyncio.gather(*(seed(srv[n], d) for n, d in data.items()))
        async with Mesh(tmp_path, srv["local"]) as mesh:
            for name in data:
                mesh.add(name, srv[name].endpoint)
            # Initial mirror of three remotes, exact; then ready.
            for name in data:
                await mesh.mirrored(name, srv[name])
            assert await _eventually_ready(mesh) == 200
            text = await dbg_status(capsys, mesh)
            assert text.startswith("KVStoreMesh:\t3/3 clusters ready\n")
            assert "   r3: ready, 3 nodes, 2 endpoints, 2 identities, 1 services, 0 failures (last: never)" in text
            as_json = json.loads(await dbg_status(capsys, mesh, "-o", "json"))
            assert [c["name"] for c in as_json] == ["r2", "r3", "r4"]
            assert as_json == await mesh.clusters()
            metrics = await mesh.metrics_text()
            assert 'cilium_kvstoremesh_remote_cluster_readiness_status{target_cluster="r2"} 1.0' in metrics
            assert "cilium_kvstoremesh_remote_clusters 3.0" in metrics

            # Live updates and deletes.
            async with client_of(srv["r2"]) as r2:
                await r2.put("cilium/state/nodes/v1/r2/node-new", b'{"Name":"node-new"}')
                await r2.put("cilium/state/services/v1/r2/default/svc-0", b'{"changed":1}')
                await r2.delete("cilium/state/nodes/v1/r2/node-0")
                await r2.delete("cilium/state/ip/v1/default/10.2.0.1")
                await r2.put("cilium/state/nodes/v1/r20/foreign", b"{}")  # another cluster's key
            await mesh.mirrored("r2", srv["r2"])

            # r3 crashes (SIGKILL) and comes back with its data; changes made after the restart.
            await srv["r3"].kill()
            await eventually(lambda: _not_connected(mesh, "r3"), what="r3 reported down")
            assert await mesh.readyz() == 200  # readiness is a latch
            await srv["r3"].start()
            async with client_of(srv["r3"]) as r3:
                await r3.delete("cilium/state/identities/v1/id/196608")
                await r3.put("cilium/state/identities/v1/id/196700", b"k8s:app=late;")
            await mesh.mirrored("r3", srv["r3"])
            entry = await mesh.cluster("r3")
            assert entry is not None and entry["num-failures"] >= 1

            # r4 restarts WITHOUT its data dir, as a new Pod would (etcdinit wipes the data dir and the
            # Pod UID is the cluster token, hence a new etcd cluster ID), and is re-fed a smaller state.
            srv["r4"].extra_args = ("--initial-cluster-token", "r4-second-pod")
            await srv["r4"].restart(wipe=True)
            await seed(srv["r4"], RemoteData.sample("r4", 4, nodes=1, identities=1, ips=0, mcs=None))
            await mesh.mirrored("r4", srv["r4"])
            for name in ("r2", "r3"):  # the others were never disturbed
                await mesh.mirrored(name, srv[name])


async def _eventually_ready(mesh: Mesh) -> int:
    await eventually(lambda: _ready(mesh), what="/readyz 200")
    return await mesh.readyz()


async def _ready(mesh: Mesh) -> bool:
    return await mesh.readyz() == 200


async def _not_connected(mesh: Mesh, name: str) -> bool:
    entry = await mesh.cluster(name)
    return entry is not None and not entry.get("connected") and not entry.get("ready")


async def test_compaction_during_outage_relists_exactly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Status probes tolerate the outage: the watch itself resumes, finds its revision compacted,
    # and the watch store relists (rather than the whole connection being re-created).
    config = with_config(ETCD_FAST, max_status_failures=100)
    async with etcds("local", "r2") as srv:
        proxy = await TcpProxy(srv["r2"].client_port).start()
        try:
            await seed(srv["r2"], RemoteData.sample("r2", 2, nodes=6))
            async with Mesh(tmp_path, srv["local"], config=config) as mesh:
                mesh.add("r2", proxy.endpoint)
                await mesh.mirrored("r2", srv["r2"])
                connects_before = _connections(caplog)
                proxy.cut()
                async with client_of(srv["r2"]) as r2:
                    for i in range(3):
                        await r2.delete(f"cilium/state/nodes/v1/r2/node-{i}")
                    await r2.put("cilium/state/nodes/v1/r2/node-5", b"changed during the outage")
                    await r2.put("cilium/state/nodes/v1/r2/node-9", b"added during the outage")
                    _, revision = await r2.list_prefix("cilium/")
                    await r2.compact(revision)
                proxy.restore()
                await mesh.mirrored("r2", srv["r2"])
                assert any(r.getMessage() == "Watch revision compacted, relisting" for r in caplog.records)
                assert _connections(caplog) == connects_before  # no reconnection was needed
        finally:
            await proxy.stop()


def _connections(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.getMessage() == "Connection to remote cluster established")


async def test_removal_readd_and_bad_remotes(tmp_path: Path) -> None:
    async with etcds("local", "r2", "r3") as srv:
        await seed(srv["r2"], RemoteData.sample("r2", 2))
        await seed(srv["r3"], RemoteData.sample("r3", 3))
        clash = RemoteData.sample("clash", 2)  # advertises r2's cluster ID
        async with client_of(srv["r3"]) as r3:  # served by r3's etcd, under its own name
            await r3.apply([Put(k, v) for k, v in clash.all_keys().items()])
        async with Mesh(tmp_path, srv["local"]) as mesh:
            mesh.add("r2", srv["r2"].endpoint)
            mesh.add("r3", srv["r3"].endpoint)
            await mesh.mirrored("r2", srv["r2"])
            await mesh.mirrored("r3", srv["r3"])
            # Bad remotes: unreachable, bad TLS material, ID clash. None may touch the others.
            mesh.add("unreachable", "http://127.0.0.1:1")
            mesh.add("badtls", "https://127.0.0.1:2379", extra="trusted-ca-file: /nonexistent/ca.crt\n")
            mesh.add("clash", srv["r3"].endpoint)
            await eventually(lambda: _failed(mesh, ("unreachable", "badtls", "clash")), what="bad remotes refused")
            clusters = {c["name"]: c for c in await mesh.clusters()}
            assert "already used by remote cluster 'r2'" in clusters["clash"]["status"]
            assert "ca.crt" in clusters["badtls"]["status"]
            for name in ("unreachable", "badtls", "clash"):
                assert await mesh.view(name) == {}
            metrics = await mesh.metrics_text()
            assert 'cilium_kvstoremesh_remote_cluster_failures{target_cluster="clash"}' in metrics
            await mesh.mirrored("r2", srv["r2"])
            await mesh.mirrored("r3", srv["r3"])

            # Removal: cluster config first, then (after the grace period) everything of r3.
            mesh.remove("r3")
            await eventually(lambda: _gone(mesh, "r3"), what="r3 drained")
            assert [c["name"] for c in await mesh.clusters()] == ["badtls", "clash", "r2", "unreachable"]
            local = await snapshot(srv["local"])
            assert not any("/r3/" in k or k.endswith("/r3") for k in local)
            # Re-added: mirrored again from scratch.
            mesh.add("r3", srv["r3"].endpoint)
            await mesh.mirrored("r3", srv["r3"])
            await mesh.mirrored("r2", srv["r2"])


async def _failed(mesh: Mesh, names: tuple[str, ...]) -> bool:
    clusters = {c["name"]: c for c in await mesh.clusters()}
    return all(clusters.get(n, {}).get("num-failures", 0) >= 1 and not clusters[n].get("ready") for n in names)


async def _gone(mesh: Mesh, name: str) -> bool:
    return await mesh.view(name) == {} and await mesh.cluster(name) is None


async def test_chained_kvstoremesh(tmp_path: Path) -> None:
    """KVStoreMesh A mirrors cluster r0 from an etcd that KVStoreMesh B feeds (a cached remote)."""
    async with etcds("origin", "b-local", "a-local") as srv:
        await seed(srv["origin"], RemoteData.sample("r0", 5, nodes=3, mcs=True))
        async with Mesh(tmp_path, srv["b-local"], cluster=ClusterInfo("b", 2), enable_heartbeat=True,
                        name="b") as mesh_b, \
                Mesh(tmp_path, srv["a-local"], cluster=ClusterInfo("a", 3), name="a") as mesh_a:
            mesh_b.add("r0", srv["origin"].endpoint)
            mesh_a.add("r0", srv["b-local"].endpoint)
            await mesh_b.mirrored("r0", srv["origin"])
            await mesh_a.mirrored("r0", srv["b-local"])  # read from b's cache paths (cached: true)
            # A's cache holds exactly the origin's data, at the same cache paths.
            a_view = await mesh_a.view("r0")
            b_view = await mesh_b.view("r0")
            assert a_view == b_view
            entry = await mesh_a.cluster("r0")
            assert entry is not None and entry["config"]["kvstoremesh"] is True
            assert "cilium/.heartbeat" in await snapshot(srv["b-local"], "cilium/.heartbeat")
            # A change at the origin flows through both meshes.
            async with client_of(srv["origin"]) as origin:
                await origin.delete("cilium/state/nodes/v1/r0/node-1")
                await origin.put("cilium/state/services/v1/r0/default/svc-9", b'{"chained":true}')
            await mesh_b.mirrored("r0", srv["origin"])
            await mesh_a.mirrored("r0", srv["b-local"])
            assert await mesh_a.view("r0") == await mesh_b.view("r0")
