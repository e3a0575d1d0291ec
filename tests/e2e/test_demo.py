"""The whole mesh: emulated clusters -> exporters -> etcds -> KVStoreMesh caches, end to end."""

from __future__ import annotations

import asyncio
import sys

from localmesh.demo import SimulatedMesh
from localmesh.demo._report import consistency_errors, propagation_latency
from localmesh.testing.synthetic import ClusterShape, cilium_endpoint


async def test_mesh_converges_and_follows_changes(tmp_path: object) -> None:
    mesh = SimulatedMesh(3, ClusterShape(endpoints=10, nodes=2, services=2), workdir=str(tmp_path))
    try:
        await mesh.start()
        assert mesh.prerequisite_problems() == []
        await mesh.wait_ready(60)
        assert await consistency_errors(mesh) == []
        first, second, third = mesh.clusters
        latency = await propagation_latency(mesh, first, second, 1)
        assert latency < 30
        # A deleted endpoint disappears from every remote cache.
        cep = cilium_endpoint(first.shape, 3)
        first.sim.delete("cilium.io/v2", "CiliumEndpoint", cep["metadata"]["name"],
                         namespace=cep["metadata"]["namespace"])
        ip = cep["status"]["networking"]["addressing"][0]["ipv4"]
        for peer in (second, third):
            key = f"cilium/cache/ip/v1/cluster1/{ip}"
            for _ in range(500):
                if not await peer.keys(key):
                    break
                await asyncio.sleep(0.02)
            assert not await peer.keys(key), f"{key} still cached in {peer.info.name}"
        for _ in range(500):
            if not await consistency_errors(mesh):
                break
            await asyncio.sleep(0.02)
        assert await consistency_errors(mesh) == []
    finally:
        await mesh.stop()


async def test_demo_command_once() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "demo", "--simulated", "--once", "--clusters", "2", "--endpoints", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    text = out.decode()
    assert "every cache equals its remote, byte for byte" in text
    assert "mesh prerequisites: unique names and IDs, disjoint Pod CIDRs, same datapath" in text
    assert "caches cluster2: nodes=3" in text
