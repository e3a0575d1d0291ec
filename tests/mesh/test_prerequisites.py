"""Mesh prerequisites: one row per rule, and the command against emulated clusters."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from apiserver.mesh import ClusterFacts, check_mesh
from apiserver.mesh.facts import facts_from, pod_cidrs
from localmesh.kubesim import KubeSim
from localmesh.testing.synthetic import ClusterShape, cilium_config, cilium_node

A = ClusterFacts("c1", 1, pod_cidrs=("10.1.0.0/16", "fd00:1::/48"))
B = ClusterFacts("c2", 2, pod_cidrs=("10.2.0.0/16", "fd00:2::/48"))


@pytest.mark.parametrize(
    ("clusters", "problem"),
    [
        pytest.param([A, B], None, id="ok"),
        pytest.param([A, ClusterFacts("c1", 2)], "cluster name 'c1' is used twice", id="same-name"),
        pytest.param([A, ClusterFacts("c2", 1)], "share cluster ID 1", id="same-id"),
        pytest.param([A, ClusterFacts("c2", 0)], "invalid cluster-id 0", id="id-zero"),
        pytest.param([A, ClusterFacts("default", 2)], "cannot use default cluster name", id="default-name"),
        pytest.param([A, ClusterFacts("c2", 2, max_connected_clusters=511)], "disagree on max-connected-clusters",
                     id="max-clusters"),
        pytest.param([A, ClusterFacts("c2", 2, pod_cidrs=("10.1.128.0/17",))],
                     "Pod CIDRs overlap: 10.1.0.0/16 in 'c1' and 10.1.128.0/17 in 'c2'", id="ipv4-overlap"),
        pytest.param([A, ClusterFacts("c2", 2, pod_cidrs=("fd00:1:0:5::/64",))], "Pod CIDRs overlap",
                     id="ipv6-overlap"),
        pytest.param([A, ClusterFacts("c2", 2, pod_cidrs=("banana",))], "invalid Pod CIDR", id="bad-cidr"),
        pytest.param([A, ClusterFacts("c2", 2, tunnel_protocol="geneve")], "different datapaths "
                     "(tunnel/vxlan vs tunnel/geneve)", id="tunnel-protocol"),
        pytest.param([A, ClusterFacts("c2", 2, routing_mode="native")], "different datapaths", id="routing-mode"),
    ],
)
def test_check_mesh(clusters: list[ClusterFacts], problem: str | None) -> None:
    problems = check_mesh(clusters)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_native_routing_ignores_the_tunnel_protocol() -> None:
    assert check_mesh([ClusterFacts("c1", 1, routing_mode="native", tunnel_protocol="vxlan"),
                       ClusterFacts("c2", 2, routing_mode="native", tunnel_protocol="")]) == []


def test_facts_from_config_and_nodes() -> None:
    node = {"spec": {"ipam": {"podCIDRs": ["10.1.0.0/24"], "pools": {"allocated": [{"cidrs": ["10.9.0.0/24"]}]}}}}
    facts = facts_from({"cluster-name": "c1", "cluster-id": "7", "routing-mode": "native"}, [node, node])
    assert facts == ClusterFacts("c1", 7, 255, ("10.1.0.0/24", "10.9.0.0/24"), "native", "vxlan")
    assert facts_from({"cluster-id": "x"}, []).id == -1
    assert pod_cidrs([{}]) == ()


async def _cluster(tmp_path: Path, shape: ClusterShape, **config: str) -> tuple[KubeSim, Path]:
    sim = KubeSim()
    await sim.start()
    sim.apply(cilium_config(shape, **config))
    for i in range(shape.nodes):
        sim.apply(cilium_node(shape, i))
    return sim, sim.write_kubeconfig(tmp_path / f"{shape.name}.kubeconfig")


async def _mesh_check(*kubeconfigs: Path) -> tuple[int, str]:
    args = [a for k in kubeconfigs for a in ("--kubeconfig", str(k))]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "apiserver", "mesh-check", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_mesh_check_command(tmp_path: Path) -> None:
    sims = []
    try:
        one, kc1 = await _cluster(tmp_path, ClusterShape(name="cluster1", cluster_index=1))
        two, kc2 = await _cluster(tmp_path, ClusterShape(name="cluster2", cluster_index=2))
        clash, kc3 = await _cluster(tmp_path, ClusterShape(name="cluster3", cluster_index=1),
                                    **{"cluster-id": "2", "tunnel-protocol": "geneve"})
        sims = [one, two, clash]
        code, out = await _mesh_check(kc1, kc2)
        assert code == 0, out
        assert "✓ 2 clusters can be meshed" in out
        code, out = await _mesh_check(kc1, kc2, kc3)
        assert code == 1
        assert "share cluster ID 2" in out and "Pod CIDRs overlap" in out and "different datapaths" in out
    finally:
        for sim in sims:
            await sim.stop()
