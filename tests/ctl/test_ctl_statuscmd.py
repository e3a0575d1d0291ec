"""status through the CLI: the Kubernetes reads, every pod's view through exec, the guide's output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from apiserver.ctl._exec import ExecResult
from apiserver.ctl._kube import Kube
from apiserver.kvstoremesh import (
    RemoteClusterConfigStatus,
    RemoteClusterStatus,
    RemoteClusterSyncedStatus,
    status_to_json,
)
from tests.ctl.conftest import NS, Clusters, guide_status
from tests.ctl.test_ctl_connect import enable_all

Views = dict[tuple[str, str], Any]  # (context, pod) -> the JSON the pod prints


def ready(name: str, cluster_id: int) -> dict[str, Any]:
    return status_to_json(RemoteClusterStatus(
        name=name, connected=True, ready=True, status="",
        config=RemoteClusterConfigStatus(required=True, retrieved=True, cluster_id=cluster_id),
        synced=RemoteClusterSyncedStatus(nodes=True, services=True, identities=True, endpoints=True)))


def down(name: str) -> dict[str, Any]:
    return status_to_json(RemoteClusterStatus(name=name, connected=False, ready=False,
                                              status="connection refused", num_failures=3))


def fake_exec(views: Views, calls: list[Sequence[str]]) -> Callable[..., Any]:
    async def exec_(self: Kube, namespace: str, pod: str, container: str, argv: Sequence[str], *,
                    timeout: float = 30.0) -> ExecResult:
        calls.append((pod, container, *argv))
        result = ExecResult()
        if argv[0] == "cilium-dbg":  # the local runtime's agents have no cilium-dbg: the fallback answers
            result.exit_code, result.error = 1, 'exec: "cilium-dbg": executable file not found in $PATH'
            return result
        result.stdout += orjson.dumps(views[(self.context, pod)])
        result.exit_code = 0
        return result

    return exec_


def set_up_pods(clusters: Clusters, context: str, agents: int) -> None:
    sim = clusters.sim(context)
    deploy = clusters.obj(context, "Deployment", "clustermesh-apiserver", "apps/v1") or {}
    deploy["status"] = {"observedGeneration": deploy["metadata"].get("generation", 1), "replicas": 1,
                        "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1}
    sim.apply(deploy)
    def pod(name: str, app: str, containers: Sequence[str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": {"k8s-app": app}},
                "spec": {"nodeName": f"{context}-node0",
                         "containers": [{"name": c, "image": "ghcr.io/clustermesh-python/clustermesh-apiserver:v0.1.0"}
                                        for c in containers]},
                "status": {"phase": "Running"}}

    for i in range(agents):
        sim.apply(pod(f"cilium-{i}", "cilium", ["cilium-agent"]))
    sim.apply(pod("clustermesh-apiserver-0", "clustermesh-apiserver", ["etcd", "apiserver", "kvstoremesh"]))


@pytest.fixture
def meshed_views() -> Views:
    peers = [ready("cluster2", 2), ready("cluster3", 3)]
    views: Views = {("cluster1", f"cilium-{i}"): {"cluster-mesh": {"clusters": peers, "num-global-services": 1}}
                    for i in range(3)}
    views[("cluster1", "clustermesh-apiserver-0")] = peers
    return views


GUIDE_HEALTHY = guide_status("172.19.255.41", ["cluster2", "cluster3"])


async def test_healthy_mesh_status(clusters: Clusters, monkeypatch: pytest.MonkeyPatch, meshed_views: Views) -> None:
    await enable_all(clusters)
    assert (await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster2,cluster3",
                               "--connection-mode", "mesh")).code == 0
    set_up_pods(clusters, "cluster1", 3)
    calls: list[Sequence[str]] = []
    monkeypatch.setattr(Kube, "exec", fake_exec(meshed_views, calls))
    result = await clusters.run("status", "--context", "cluster1", "--wait")
    assert result.code == 0, result.err
    assert result.out.splitlines() == GUIDE_HEALTHY.splitlines()
    assert ("clustermesh-apiserver-0", "kvstoremesh", "/usr/bin/clustermesh-apiserver", "kvstoremesh-dbg", "status",
            "-o", "json") in calls
    assert ("cilium-0", "cilium-agent", "cilium-dbg", "status", "-o", "json") in calls
    doc = orjson.loads((await clusters.run("status", "--context", "cluster1", "-o", "json")).out)
    assert doc["connectivity"]["clusters"] == {"cluster2": {"configured": 3, "connected": 3},
                                               "cluster3": {"configured": 3, "connected": 3}}
    assert doc["kvstoremesh"]["enabled"] is True and doc["kvstoremesh"]["status"]["total"] == 1
    assert doc["access_information"]["cluster_name"] == "cluster1"


async def test_broken_mesh_status_and_wait_timeout(clusters: Clusters, monkeypatch: pytest.MonkeyPatch,
                                                   meshed_views: Views) -> None:
    await enable_all(clusters)
    assert (await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster2,cluster3",
                               "--connection-mode", "mesh")).code == 0
    set_up_pods(clusters, "cluster1", 3)
    meshed_views[("cluster1", "clustermesh-apiserver-0")] = [ready("cluster2", 2), down("cluster3")]
    meshed_views[("cluster1", "cilium-2")] = {"cluster-mesh": {"clusters": [ready("cluster2", 2)],
                                                               "num-global-services": 0}}
    monkeypatch.setattr(Kube, "exec", fake_exec(meshed_views, []))
    result = await clusters.run("status", "--context", "cluster1")
    assert result.code == 0
    assert result.out.splitlines()[5:] == [
        "",
        "⚠️ 1/3 nodes are not connected to all clusters [min:1 / avg:1.7 / max:2]",
        "⚠️ 1/1 KVStoreMesh replicas are not connected to all clusters [min:1 / avg:1.0 / max:1]",
        "",
        "🔌 Cluster Connections:",
        " - cluster2: 3 configured, 3/3 connected",
        "   KVStoreMesh: 1/1 configured, 1/1 connected",
        " - cluster3: 2 configured, 2/3 connected",
        "   KVStoreMesh: 1/1 configured, 0/1 connected",
        "",
        "🔀 Global services: [ min:0 / avg:0.7 / max:1 ]",
        "",
        "❌ 2 Errors:",
        "  ❌ cilium-2 is not connected to cluster cluster3: unknown status",
        "  ❌ clustermesh-apiserver-0 is not connected to cluster cluster3: connection refused",
        "     💡 Run 'kubectl exec -it -n kube-system clustermesh-apiserver-0 -c kvstoremesh -- "
        "/usr/bin/clustermesh-apiserver kvstoremesh-dbg troubleshoot cluster3' to investigate the cause",
    ]
    waited = await clusters.run("status", "--context", "cluster1", "--wait", "--wait-duration", "1s")
    assert waited.code == 1
    assert "❌ 2 Errors:" in waited.out


async def test_status_before_enable_says_what_is_missing(clusters: Clusters) -> None:
    result = await clusters.run("status", "--context", "cluster2")
    assert result.code == 1
    assert result.err.splitlines()[0] == ('Error: Unable to determine status: unable to get clustermesh service '
                                          '"clustermesh-apiserver": services "clustermesh-apiserver" not found '
                                          "(context 'cluster2')")
    assert result.err.splitlines()[1] == "💡 run 'clustermeshctl enable' in this cluster first"


async def test_status_waits_for_the_deployment(clusters: Clusters) -> None:
    await enable_all(clusters, contexts=("cluster1",))
    result = await clusters.run("status", "--context", "cluster1", "--wait", "--wait-duration", "1s")
    assert result.code == 1
    assert "deployment clustermesh-apiserver is not ready: the latest generation is not observed yet" in result.err
