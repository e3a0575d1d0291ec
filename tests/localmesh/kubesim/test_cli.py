"""``clustermesh-apiserver kubesim`` as a process: seeds, kubeconfig, serving, clean SIGTERM exit."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import yaml

from localmesh.kubesim import SAMPLE_CLUSTER, KubeSim, load_manifests
from localmesh.testing.processes import child_process, wait_for_file

SEED = """\
apiVersion: cilium.io/v2
kind: CiliumNode
metadata: {name: seeded}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: default}
  spec: {ports: [{port: 80}]}
- apiVersion: v1
  kind: Namespace
  metadata: {name: extra}
"""


async def test_standalone_process(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    kubeconfig = tmp_path / "out" / "kubeconfig"
    async with child_process(
        sys.executable, "-m", "apiserver", "kubesim", "--port", "0", "--seed", str(seed),
        "--kubeconfig-out", str(kubeconfig), "--history", "100",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) as proc:
        await wait_for_file(proc, kubeconfig, 20)
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server}/apis/cilium.io/v2/ciliumnodes") as resp:
                nodes = await resp.json()
            async with http.get(f"{server}/api/v1/services") as resp:
                services = await resp.json()
            async with http.get(f"{server}/api/v1/namespaces/extra") as resp:
                assert resp.status == 200
        assert [n["metadata"]["name"] for n in nodes["items"]] == ["seeded"]
        # Beside the seeded one, the kubernetes Service every cluster has.
        assert [s["metadata"]["name"] for s in services["items"]] == ["kubernetes", "web"]
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0
        log = err.decode()
        assert "msg=\"Seeded objects\"" in log and "count=3" in log and "msg=\"Shutting down\"" in log


async def test_bad_seed_fails(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("apiVersion: example.com/v1\nkind: Unknown\nmetadata: {name: x}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "kubesim", "--port", "0", "--seed", str(seed),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert "Cannot load seed manifests" in err.decode()


def test_sample_manifests_load() -> None:
    sim = KubeSim()
    assert sim.load(load_manifests(SAMPLE_CLUSTER)) == 18
    assert len(sim.list("cilium.io/v2", "CiliumEndpoint")) == 6
    assert len(sim.list("discovery.k8s.io/v1", "EndpointSlice", "ns-0")) == 1
    assert sim.get("multicluster.x-k8s.io/v1alpha1", "ServiceExport", "svc-0", "ns-0") is not None
