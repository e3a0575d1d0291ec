"""Pods run by the local kubelet: own network namespace, readiness, status as kubelet writes it."""

from __future__ import annotations

import ipaddress
import json

import aiohttp

from tests.localmesh.kubelet.conftest import IMAGE, Cluster, eventually, pod_manifest


def etcd_container(port: int = 2379) -> dict[str, object]:
    return {"name": "etcd", "command": ["/usr/bin/etcd"],
            "args": ["--data-dir=/var/run/etcd", f"--listen-client-urls=http://0.0.0.0:{port}",
                     f"--advertise-client-urls=http://localhost:{port}", "--listen-peer-urls=http://127.0.0.1:2380"],
            "ports": [{"name": "etcd", "containerPort": port}],
            "readinessProbe": {"httpGet": {"path": "/health", "port": "etcd"}, "periodSeconds": 1},
            "volumeMounts": [{"name": "data", "mountPath": "/var/run/etcd"}]}


async def test_etcd_pod_runs_in_its_own_netns_and_becomes_ready(cluster: Cluster) -> None:
    manifest = pod_manifest("etcd", [etcd_container()], volumes=[{"name": "data", "emptyDir": {}}])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await eventually(lambda: cluster.condition("etcd", "Ready") == "True")
    pod = cluster.pod("etcd")
    assert pod is not None
    status = pod["status"]
    assert status["phase"] == "Running"
    assert ipaddress.ip_address(status["podIP"]) in cluster.kubelet.network.subnet
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] == str(cluster.kubelet.network.gateway)
    (cs,) = status["containerStatuses"]
    assert cs["name"] == "etcd" and cs["image"] == IMAGE and cs["ready"] is True and cs["started"] is True
    assert cs["restartCount"] == 0 and "running" in cs["state"]
    assert {c["type"] for c in status["conditions"]} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    async with aiohttp.ClientSession() as session, session.get(f"http://{status['podIP']}:2379/health") as resp:
        assert resp.status == 200
    # The host's own 127.0.0.1:2379 is not the pod's: the pod listens only in its namespace.
    _, out, _ = await cluster.kubectl("get", "pod", "etcd", "-o", "jsonpath={.status.phase}")
    assert out == "Running"
