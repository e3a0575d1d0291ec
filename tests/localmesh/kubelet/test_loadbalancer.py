"""The LoadBalancer data path: a Service's ingress IP reaches its ready pod from the host and from the pods
of another local cluster (another API server, kubelet, bridge and pod subnet)."""

from __future__ import annotations

import ipaddress
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from localmesh.kubelet import local_kubelet
from localmesh.kubesim import KubeSim, ServerTLS
from tests.localmesh.kubelet.conftest import NODE, Cluster, eventually, pod_manifest, run_in, shell
from tests.localmesh.kubelet.test_pods import etcd_container


@pytest_asyncio.fixture
async def second(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Another local cluster: its own API server, kubelet, bridge and pod subnet."""
    sim = KubeSim()
    await sim.start(tls=ServerTLS.self_signed(tmp_path / "tls2"))
    workdir = tmp_path / "second"
    workdir.mkdir()
    try:
        async with local_kubelet(sim, node_name=NODE, workdir=workdir) as kubelet:
            yield Cluster(sim, kubelet, workdir / f"{NODE}.kubeconfig")
    finally:
        await sim.stop()

def _lb_ip() -> str:
    return str(ipaddress.IPv4Address("10.203.0.0") + random.randrange(1, 65535))


async def _health(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(2)) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


async def test_load_balancer_ip_reaches_the_ready_pod_from_host_and_other_clusters(
        cluster: Cluster, second: Cluster) -> None:
    assert cluster.kubelet.network.subnet != second.kubelet.network.subnet
    manifest = pod_manifest("etcd", [etcd_container()], volumes=[{"name": "data", "emptyDir": {}}])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    lb_ip = _lb_ip()
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "etcd", "namespace": "default"},
               "spec": {"type": "LoadBalancer", "selector": {"app": "etcd"},
                        "ports": [{"port": 2379, "targetPort": 2379, "protocol": "TCP"}]}}
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(service))
    # the address as the LoadBalancer controller would write it
    stored = cluster.sim.get("v1", "Service", "etcd", "default")
    assert stored is not None
    stored["status"] = {"loadBalancer": {"ingress": [{"ip": lb_ip, "ipMode": "VIP"}]}}
    cluster.sim.apply(stored)
    await eventually(lambda: cluster.condition("etcd", "Ready") == "True")
    url = f"http://{lb_ip}:2379/health"
    await eventually(lambda: _health(url))

    client = pod_manifest("client", [shell("main", "exec sleep 3600")])
    await second.kubectl("apply", "-f", "-", input=json.dumps(client))
    await eventually(lambda: second.condition("client", "Ready") == "True")
    code, out, err = await run_in(second, "client", "main", "curl", "-sS", "--max-time", "5", url)
    assert code == 0, err
    assert '"health":"true"' in out
    # the pod's own address works too, across clusters
    pod_ip = (cluster.pod("etcd") or {})["status"]["podIP"]
    code, out, _ = await run_in(second, "client", "main", "curl", "-sS", "--max-time", "5",
                                f"http://{pod_ip}:2379/health")
    assert code == 0 and '"health":"true"' in out

    # the pod goes: the address stops answering (its route is removed)
    await cluster.kubectl("delete", "pod", "etcd", "--wait=false")
    await eventually(lambda: cluster.pod("etcd") is None)
    await eventually(lambda: lb_ip not in cluster.kubelet.lb.current)
    assert not await _health(url)
