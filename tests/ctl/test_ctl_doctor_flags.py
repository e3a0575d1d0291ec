"""doctor's checks over cluster facts, and the command line cilium-cli scripts use."""

from __future__ import annotations

import dataclasses

import pytest

from apiserver.ctl._cli import build_parser
from apiserver.ctl._doctor import ClusterFacts, DoctorReport, facts_from, pod_cidrs, prerequisite_checks


def guide_config(name: str, cid: int, v4: str, v6: str, **extra: str) -> dict[str, str]:
    return {"cluster-name": name, "cluster-id": str(cid), "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
            "cluster-pool-ipv4-cidr": v4, "cluster-pool-ipv6-cidr": v6, **extra}


C1 = facts_from("kind-c1", guide_config("cluster1", 1, "11.0.0.0/8", "fd00::/104"), [], reachability=None,
                kvstoremesh=True, endpoint="172.19.255.46:2379")
C2 = facts_from("kind-c2", guide_config("cluster2", 2, "12.0.0.0/8", "fd01::/104"), [], reachability=None,
                kvstoremesh=True, endpoint="172.19.255.47:2379")


def failed(facts: list[ClusterFacts]) -> dict[str, tuple[str, ...]]:
    return {c.title: c.problems for c in prerequisite_checks(facts) if c.ok is False}


def test_guide_clusters_pass() -> None:
    report = DoctorReport(2, prerequisite_checks([C1, C2]))
    assert report.ok
    assert report.lines()[-1] == "✅ The 2 clusters can be meshed"
    assert any("not checked from here" in line for line in report.lines())  # node-to-node is said so


@pytest.mark.parametrize(("change", "title", "problem"), [
    pytest.param({"id": 1}, "Cluster names and IDs are valid and unique", "share cluster ID 1", id="clashing-ids"),
    pytest.param({"name": "cluster1"}, "Cluster names and IDs are valid and unique", "both use cluster name",
                 id="clashing-names"),
    pytest.param({"name": "default"}, "Cluster names and IDs are valid and unique", "cannot use default",
                 id="default-name"),
    pytest.param({"pod_cidrs": ("11.128.0.0/9",)}, "Pod CIDRs do not overlap", "11.0.0.0/8 in 'cluster1' overlaps",
                 id="overlapping-cidrs"),
    pytest.param({"max_connected_clusters": 511}, "max-connected-clusters is the same everywhere", "disagree",
                 id="max-differs"),
    pytest.param({"tunnel_protocol": "geneve"}, "Same datapath (routing mode, tunnel protocol)", "tunnel/geneve",
                 id="datapath"),
    pytest.param({"kvstoremesh": False}, "KVStoreMesh on or off everywhere", "cluster2=off", id="kvstoremesh-mixed"),
    pytest.param({"reachability": "certificate not trusted: unable to get local issuer certificate"},
                 "Mesh API servers reachable on their port from here (TLS handshake with the mesh CA)", "not trusted",
                 id="wrong-ca"),
    pytest.param({"reachability": "[Errno 111] Connect call failed"},
                 "Mesh API servers reachable on their port from here (TLS handshake with the mesh CA)",
                 "Connect call failed", id="unreachable"),
])
def test_each_prerequisite_fails_alone(change: dict[str, object], title: str, problem: str) -> None:
    broken = dataclasses.replace(C2, **change)  # type: ignore[arg-type]
    failures = failed([C1, broken])
    assert list(failures) == [title]
    assert any(problem in p for p in failures[title])
    assert not DoctorReport(2, prerequisite_checks([C1, broken])).ok


def test_pod_cidrs_from_config_and_ciliumnodes() -> None:
    nodes = [{"spec": {"ipam": {"podCIDRs": ["11.0.1.0/24"], "pools": {"allocated": [{"cidrs": ["11.9.0.0/24"]}]}}}}]
    assert pod_cidrs({"cluster-pool-ipv4-cidr": "11.0.0.0/8 13.0.0.0/8"}, nodes) == (
        "11.0.0.0/8", "13.0.0.0/8", "11.0.1.0/24", "11.9.0.0/24")


def test_not_enabled_yet_is_said_so() -> None:
    a, b = (dataclasses.replace(c, kvstoremesh=None, reachability="") for c in (C1, C2))
    checks = {c.title: c for c in prerequisite_checks([a, b])}
    assert checks["KVStoreMesh on or off everywhere"].ok is None
    assert checks["Mesh API servers reachable on their port"].ok is None


@pytest.mark.parametrize(("argv", "expected"), [
    pytest.param(["enable", "--context", "c1", "--service-type=LoadBalancer", "--kvstore-mesh=false"],
                 {"context": "c1", "service_type": "LoadBalancer", "kvstoremesh": False}, id="guide-enable"),
    pytest.param(["enable", "--service-type", "NodePort", "--enable-kvstoremesh"], {"kvstoremesh": True},
                 id="enable-kvstoremesh"),
    pytest.param(["--context", "c1", "connect", "--destination-context", "c2,c3", "--destination-context", "c4",
                  "--connection-mode", "mesh"],
                 {"context": "c1", "destination_context": ["c2", "c3", "c4"], "connection_mode": "mesh"},
                 id="connect-mesh"),
    pytest.param(["connect", "--destination-context", "c2"], {"connection_mode": "bidirectional",
                                                               "allow_mismatching_ca": False}, id="connect-default"),
    pytest.param(["connect", "--destination-endpoint", "1.2.3.4:2379", "--allow-mismatching-ca"],
                 {"destination_endpoint": ["1.2.3.4:2379"], "allow_mismatching_ca": True}, id="endpoints"),
    pytest.param(["status", "--wait", "--wait-duration", "5m", "-o", "json"],
                 {"wait": True, "wait_duration": 300.0, "output": "json"}, id="status"),
    pytest.param(["status"], {"wait": False, "wait_duration": 900.0, "output": "summary"}, id="status-defaults"),
    pytest.param(["-n", "cilium", "status", "--kubeconfig", "/k"], {"namespace": "cilium", "kubeconfig": "/k"},
                 id="globals-both-sides"),
])
def test_flags(argv: list[str], expected: dict[str, object]) -> None:
    args = build_parser().parse_args(argv)
    for key, value in expected.items():
        assert getattr(args, key) == value, key
