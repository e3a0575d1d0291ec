"""``LocalClusters`` and ``clustermesh-apiserver kubesim --clusters N``: several clusters, one kubeconfig,
TLS, in-cluster access, clean stop."""

from __future__ import annotations

import asyncio
import base64
import shutil
import signal
import socket
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from localmesh.kubesim import LocalClusters
from localmesh.kubesim._clusters import default_lb_pool
from localmesh.testing.processes import child_process, wait_for_file
from tests.localmesh.controllers.conftest import Result, eventually

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


async def kubectl(kubeconfig: Path, home: Path, *args: str) -> Result:
    assert KUBECTL is not None
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={home / 'cache'}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={"HOME": str(home)})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def _lb(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 2379}]}}


def test_default_pools_are_disjoint() -> None:
    assert [default_lb_pool(i) for i in (1, 2, 16, 17)] == [
        "172.19.255.0/28", "172.19.255.16/28", "172.19.255.240/28", "172.19.254.0/28"]


async def test_two_clusters_one_kubeconfig(tmp_path: Path) -> None:
    async with LocalClusters(2, tls=True, state_dir=tmp_path / "state") as clusters:
        path = clusters.write_kubeconfig(tmp_path / "kubeconfig")
        doc = yaml.safe_load(path.read_text())
        assert [c["name"] for c in doc["contexts"]] == ["cluster1", "cluster2"]
        assert doc["current-context"] == "cluster1"
        assert clusters["cluster1"].url != clusters["cluster2"].url
        for name in ("cluster1", "cluster2"):
            clusters[name].sim.apply(_lb(f"lb-{name}"))
        got = {}
        for name in ("cluster1", "cluster2"):
            result = await kubectl(path, tmp_path, "--context", name, "get", "service", f"lb-{name}", "-o",
                                   "jsonpath={.status.loadBalancer.ingress[0].ip}")
            if not result.out:
                await eventually(lambda n=name: clusters[n].sim.get("v1", "Service", f"lb-{n}", "default")
                                 .get("status", {}).get("loadBalancer"))
                result = await kubectl(path, tmp_path, "--context", name, "get", "service", f"lb-{name}", "-o",
                                       "jsonpath={.status.loadBalancer.ingress[0].ip}")
            assert result.code == 0, result.err
            got[name] = result.out
        assert got == {"cluster1": "172.19.255.1", "cluster2": "172.19.255.17"}
        # The other cluster does not see it.
        other = await kubectl(path, tmp_path, "--context", "cluster2", "get", "service", "lb-cluster1")
        assert other.code == 1 and "NotFound" in other.err


async def test_in_cluster_access(tmp_path: Path) -> None:
    """What a pod's in-cluster config uses: the kubernetes Endpoints, kube-root-ca.crt and a token."""
    async with LocalClusters(1, tls=True, state_dir=tmp_path) as clusters:
        cluster = clusters[0]
        sim = cluster.sim
        sim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-mesh"}})
        config = await eventually(lambda: sim.get("v1", "ConfigMap", "kube-root-ca.crt", "kube-mesh"))
        assert sim.get("v1", "ServiceAccount", "default", "kube-mesh") is not None
        ca = config["data"]["ca.crt"]
        assert ca.encode() == cluster.ca_pem()
        endpoints = sim.get("v1", "Endpoints", "kubernetes", "default")
        assert endpoints is not None
        subset = endpoints["subsets"][0]
        address, port = subset["addresses"][0]["ip"], subset["ports"][0]["port"]
        service = sim.get("v1", "Service", "kubernetes", "default")
        assert service is not None and service["spec"]["clusterIP"] == "10.96.0.1"
        context = ssl.create_default_context(cadata=ca)
        headers = {"Authorization": "Bearer any-service-account-token"}
        async with aiohttp.ClientSession() as http, http.get(
                f"https://{address}:{port}/api/v1/namespaces/kube-mesh/configmaps", ssl=context,
                headers=headers) as response:
            assert response.status == 200
            listed = await response.json()
        assert [c["metadata"]["name"] for c in listed["items"]] == ["kube-root-ca.crt"]
        # Deleted, it comes back.
        sim.delete("v1", "ConfigMap", "kube-root-ca.crt", "kube-mesh")
        await eventually(lambda: sim.get("v1", "ConfigMap", "kube-root-ca.crt", "kube-mesh"))
        assert base64.b64decode(clusters.kubeconfig()["clusters"][0]["cluster"]["certificate-authority-data"]) \
            == cluster.ca_pem()


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_stop_closes_every_server(tmp_path: Path) -> None:
    clusters = LocalClusters(3)
    await clusters.start()
    ports = [c.port for c in clusters]
    assert not any(_closed(p) for p in ports)
    await clusters.stop()
    assert all(_closed(p) for p in ports)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("kubesim-")]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="2 lb_pools given for 3 clusters"):
        LocalClusters(3, lb_pools=["10.0.0.0/28", "10.0.1.0/28"])
    with pytest.raises(ValueError, match="at least 1"):
        LocalClusters(0)


async def test_command_starts_n_clusters_and_stops_on_sigint(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with child_process(
        sys.executable, "-m", "apiserver", "kubesim", "--clusters", "3", "--port", "0", "--tls",
        "--kubeconfig-out", str(kubeconfig), "--lb-pool", "10.10.0.0/30", "--lb-pool", "10.10.1.0/30",
        "--lb-pool", "10.10.2.0/30", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) as proc:
        await wait_for_file(proc, kubeconfig, 30)
        doc = yaml.safe_load(kubeconfig.read_text())
        assert [c["name"] for c in doc["contexts"]] == ["cluster1", "cluster2", "cluster3"]
        assert all(c["cluster"]["server"].startswith("https://") for c in doc["clusters"])
        result = await kubectl(kubeconfig, tmp_path, "--context", "cluster3", "create", "deployment", "web",
                               "--image=example/web:1", "--replicas=2")
        assert result.code == 0, result.err
        pods = await kubectl(kubeconfig, tmp_path, "--context", "cluster3", "get", "pods", "-o", "name")
        for _ in range(100):
            if len(pods.out.split()) == 2:
                break
            await asyncio.sleep(0.05)
            pods = await kubectl(kubeconfig, tmp_path, "--context", "cluster3", "get", "pods", "-o", "name")
        assert len(pods.out.split()) == 2 and pods.out.startswith("pod/web-"), pods.out + pods.err
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        log = err.decode()
        assert "Shutting down" in log and "Local clusters stopped" in log and "count=3" in log


async def test_command_refuses_bad_flags(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "kubesim", "--clusters", "2", "--lb-pool", "10.0.0.0/28",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "--lb-pool given 1 times for 2 clusters" in err.decode()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "kubesim", "--lb-pool", "not-a-pool",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and "invalid address pool 'not-a-pool'" in err.decode()
