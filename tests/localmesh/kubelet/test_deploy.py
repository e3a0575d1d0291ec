"""The repository's deploy/ base, unchanged, on a local cluster: kubesim with its controllers (Deployment,
scheduler, LoadBalancer addresses) and the local kubelet. Apply -> the mesh API pod Running and Ready
through its readiness probes -> the Service's external IP -> etcd at <external IP>:2379 over mutual TLS
with the admin certificate, holding what the exporter in the pod wrote from the Kubernetes API."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import pytest_asyncio

from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from localmesh.kubelet import local_kubelet
from localmesh.kubesim import KubeSim, ServerTLS
from localmesh.kubesim.controllers import ControllerManager
from tests.localmesh.kubelet.conftest import Cluster, eventually

REPO = Path(__file__).resolve().parents[3]
NS = "kube-system"


@pytest_asyncio.fixture
async def mesh_cluster(tmp_path: Path) -> AsyncIterator[tuple[Cluster, str]]:
    if os.geteuid() != 0:
        pytest.skip("the local kubelet needs root")
    lb_ip = str(ipaddress.IPv4Address("10.204.0.0") + random.randrange(1, 65535))
    sim = KubeSim()
    await sim.start(tls=ServerTLS.self_signed(tmp_path / "tls"))
    manager = ControllerManager(sim, lb_pool=f"{lb_ip}/32")
    await manager.start()
    try:
        async with local_kubelet(sim, node_name="c1-node", workdir=tmp_path) as kubelet:
            yield Cluster(sim, kubelet, tmp_path / "c1-node.kubeconfig"), lb_ip
    finally:
        await manager.stop()
        await sim.stop()

async def _run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"{argv}: {err.decode()}"
    return out.decode()


async def test_deploy_base_runs_and_etcd_answers_on_the_external_ip(
        mesh_cluster: tuple[Cluster, str], tmp_path: Path) -> None:
    cluster, lb_ip = mesh_cluster
    pki = tmp_path / "pki"
    await _run(sys.executable, "-m", "apiserver", "pki", "--out", str(pki), "--cluster-name", "c1",
               "--namespace", NS, "--san", lb_ip)
    for name, source in (("clustermesh-apiserver-server-cert", "server"),
                         ("clustermesh-apiserver-admin-cert", "admin-c1"),
                         ("clustermesh-apiserver-remote-cert", "remote"),
                         ("clustermesh-apiserver-local-cert", "local-c1")):
        await cluster.kubectl("-n", NS, "create", "secret", "generic", name, "--type=kubernetes.io/tls",
                              *(f"--from-file={f}={pki / source / f}" for f in ("ca.crt", "tls.crt", "tls.key")))
    await cluster.kubectl("-n", NS, "create", "configmap", "cilium-config", "--from-literal=cluster-name=c1",
                          "--from-literal=cluster-id=1")
    _, rendered, _ = await cluster.kubectl("kustomize", str(REPO / "deploy" / "base"))
    await cluster.kubectl("apply", "-f", "-", input=rendered)
    await cluster.kubectl("-n", NS, "rollout", "status", "deployment/clustermesh-apiserver", "--timeout=240s")

    pods = cluster.sim.list("v1", "Pod", NS, label_selector="k8s-app=clustermesh-apiserver")
    (pod,) = pods
    status = pod["status"]
    assert status["phase"] == "Running"
    assert [c["name"] for c in status["initContainerStatuses"]] == ["etcd-init"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert {c["name"]: c["ready"] for c in status["containerStatuses"]} == {
        "etcd": True, "apiserver": True, "kvstoremesh": True}
    service = cluster.sim.get("v1", "Service", "clustermesh-apiserver", NS)
    assert service is not None
    assert service["status"]["loadBalancer"]["ingress"][0]["ip"] == lb_ip

    config = EtcdConfig(endpoints=(f"https://{lb_ip}:2379",), trusted_ca_file=str(pki / "admin-c1" / "ca.crt"),
                        cert_file=str(pki / "admin-c1" / "tls.crt"), key_file=str(pki / "admin-c1" / "tls.key"))
    first_cluster_id = await _exported(config)

    # The pod goes: the Deployment replaces it, with a fresh etcd (a new emptyDir) that the exporter of
    # the new pod fills again; the external IP follows the new pod.
    await cluster.kubectl("-n", NS, "delete", "pod", pod["metadata"]["name"], "--wait=false")

    def replaced() -> bool:
        pods = cluster.sim.list("v1", "Pod", NS, label_selector="k8s-app=clustermesh-apiserver")
        return len(pods) == 1 and pods[0]["metadata"]["uid"] != pod["metadata"]["uid"] and any(
            c["type"] == "Ready" and c["status"] == "True" for c in pods[0]["status"].get("conditions") or [])

    await eventually(replaced, within=240)
    assert await _exported(config) != first_cluster_id  # etcd's cluster token is the pod's uid


async def _exported(config: EtcdConfig) -> int:
    """Connect over mTLS and wait for the exporter's cluster config; returns the etcd cluster's ID."""

    async def connected() -> EtcdClient | None:
        try:
            return await EtcdClient.connect(config, timeout=5)
        except Exception:
            return None

    etcd: EtcdClient = await eventually(connected, within=120)
    try:
        cluster_config = await eventually(lambda: etcd.get("cilium/cluster-config/c1"), within=120)
        assert orjson.loads(cluster_config.value)["id"] == 1
        assert etcd.cluster_id is not None
        return etcd.cluster_id
    finally:
        await etcd.close()
