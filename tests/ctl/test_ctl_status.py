"""status: cilium-cli's figures, printed line for line in the Cluster Mesh guide's layout."""

from __future__ import annotations

from apiserver.ctl import _status
from apiserver.ctl._access import AccessInfo
from apiserver.kvstoremesh import RemoteClusterConfigStatus, RemoteClusterStatus, RemoteClusterSyncedStatus
from tests.ctl.conftest import guide_status

GUIDE = guide_status("172.19.255.46", ["cluster1"])

INFO = AccessInfo("cluster2", "2", "LoadBalancer", ("172.19.255.46",), 2379, b"")


def ready(name: str) -> RemoteClusterStatus:
    return RemoteClusterStatus(
        name=name, connected=True, ready=True, status="",
        config=RemoteClusterConfigStatus(required=True, retrieved=True, cluster_id=1),
        synced=RemoteClusterSyncedStatus(nodes=True, services=True, identities=True, endpoints=True))


def render(agents: dict[str, _status.PodView], kvstoremesh: dict[str, _status.PodView], expected: list[str]) -> str:
    lines = [*_status.header_lines(INFO), _status.deployment_line(), _status.kvstoremesh_line(True)]
    lines += _status.connectivity_lines(_status.connectivity(expected, agents),
                                        _status.connectivity(expected, kvstoremesh), "kube-system")
    return "\n".join(lines)


def test_healthy_mesh_prints_the_guides_output_line_for_line() -> None:
    agents = {f"cilium-{i}": _status.PodView({"cluster1": ready("cluster1")}, 1) for i in range(3)}
    kv = {"clustermesh-apiserver-0": _status.PodView({"cluster1": ready("cluster1")})}
    assert render(agents, kv, ["cluster1"]).splitlines() == GUIDE.splitlines()


def test_broken_mesh_names_every_failure_with_its_hint() -> None:
    down = RemoteClusterStatus(name="cluster3", connected=False, ready=False,
                               status="timed out connecting to the remote etcd after 15s")
    missing_config = RemoteClusterStatus(name="cluster3", connected=True, ready=False,
                                         config=RemoteClusterConfigStatus(required=True, retrieved=False))
    syncing = RemoteClusterStatus(name="cluster3", connected=True, ready=False,
                                  config=RemoteClusterConfigStatus(required=True, retrieved=True),
                                  synced=RemoteClusterSyncedStatus(nodes=True, services=False, identities=True))
    agents = {"cilium-a": _status.PodView({"cluster1": ready("cluster1"), "cluster3": missing_config}, 2),
              "cilium-b": _status.PodView({"cluster1": ready("cluster1"), "cluster3": syncing}, 1),
              "cilium-c": _status.PodView({"cluster1": ready("cluster1")}, 0)}
    kv = {"clustermesh-apiserver-0": _status.PodView({"cluster1": ready("cluster1"), "cluster3": down})}
    lines = render(agents, kv, ["cluster1", "cluster3"]).splitlines()
    assert lines[5:] == [
        "",
        "⚠️ 3/3 nodes are not connected to all clusters [min:1 / avg:1.0 / max:1]",
        "⚠️ 1/1 KVStoreMesh replicas are not connected to all clusters [min:1 / avg:1.0 / max:1]",
        "",
        "🔌 Cluster Connections:",
        " - cluster1: 3 configured, 3/3 connected",
        "   KVStoreMesh: 1/1 configured, 1/1 connected",
        " - cluster3: 2 configured, 0/3 connected",
        "   KVStoreMesh: 1/1 configured, 0/1 connected",
        "",
        "🔀 Global services: [ min:0 / avg:1.0 / max:2 ]",
        "",
        "❌ 4 Errors:",
        "  ❌ cilium-a is not connected to cluster cluster3: remote cluster configuration required but not found",
        "     💡 This is likely caused by KVStoreMesh not being connected to the given cluster",
        "  ❌ cilium-b is not connected to cluster cluster3: synchronization in progress for endpoints, services",
        "  ❌ cilium-c is not connected to cluster cluster3: unknown status",
        "  ❌ clustermesh-apiserver-0 is not connected to cluster cluster3: timed out connecting to the remote etcd "
        "after 15s",
        "     💡 Run 'kubectl exec -it -n kube-system clustermesh-apiserver-0 -c kvstoremesh -- "
        "/usr/bin/clustermesh-apiserver kvstoremesh-dbg troubleshoot cluster3' to investigate the cause",
    ]


def test_no_cluster_connected() -> None:
    lines = _status.connectivity_lines(_status.connectivity([], {"cilium-a": _status.PodView({})}), None, "ns")
    assert lines == ["", "", "🔌 No cluster connected", "", "🔀 Global services: [ min:0 / avg:0.0 / max:0 ]"]


def test_json_has_cilium_cli_fields() -> None:
    agents = _status.connectivity(["cluster1"], {"cilium-a": _status.PodView({"cluster1": ready("cluster1")})})
    kv = _status.connectivity(["cluster1"], {})
    doc = _status.status_json(INFO, agents, True, kv)
    assert doc["access_information"]["service_ips"] == ["172.19.255.46"]
    assert doc["connectivity"] == {"connected": {"min": 1, "avg": 1.0, "max": 1},
                                   "clusters": {"cluster1": {"configured": 1, "connected": 1}}, "total": 1}
    # No replica answered: min keeps cilium-cli's initial -1.
    assert doc["kvstoremesh"] == {"enabled": True, "status": {"connected": {"min": -1}, "clusters": {"cluster1": {}}}}
