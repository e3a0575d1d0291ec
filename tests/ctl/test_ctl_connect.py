"""connect / disconnect against emulated clusters: the Secrets and users each pair gets, per mode."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from apiserver.ctl._render import decode_data
from tests.ctl.conftest import Clusters

LB = {"cluster1": "172.19.255.41", "cluster2": "172.19.255.42", "cluster3": "172.19.255.43"}


async def enable_all(clusters: Clusters, *extra: str, contexts: tuple[str, ...] = tuple(LB)) -> None:
    for i, context in enumerate(contexts):
        inherit = ("--inherit-ca", contexts[0]) if i else ()
        result = await clusters.enable(context, *inherit, *extra)
        assert result.code == 0, result.err
        clusters.assign_lb(context, LB[context])


def files(clusters: Clusters, context: str, secret: str) -> dict[str, Any]:
    obj = clusters.obj(context, "Secret", secret)
    return {} if obj is None else {k: yaml.safe_load(v) for k, v in decode_data(obj).items()}


def users(clusters: Clusters, context: str) -> list[str]:
    cm = clusters.obj(context, "ConfigMap", "clustermesh-remote-users")
    assert cm is not None
    return [u["name"] for u in yaml.safe_load(cm["data"]["users.yaml"])["users"] or []]


def peers(clusters: Clusters) -> dict[str, list[str]]:
    return {c: sorted(files(clusters, c, "cilium-kvstoremesh")) for c in LB}


@pytest.mark.parametrize(("mode", "destinations", "expected", "message"), [
    pytest.param("unicast", "cluster2", {"cluster1": ["cluster2"], "cluster2": [], "cluster3": []},
                 "✅ Connected cluster cluster1 => cluster2!", id="unicast"),
    pytest.param("bidirectional", "cluster2", {"cluster1": ["cluster2"], "cluster2": ["cluster1"], "cluster3": []},
                 "✅ Connected cluster cluster1 <=> cluster2!", id="bidirectional"),
    pytest.param("mesh", "cluster2,cluster3", {"cluster1": ["cluster2", "cluster3"],
                                               "cluster2": ["cluster1", "cluster3"],
                                               "cluster3": ["cluster1", "cluster2"]},
                 "✅ Connected clusters cluster2, cluster3, and cluster1!", id="mesh"),
])
async def test_connect_modes(clusters: Clusters, mode: str, destinations: str, expected: dict[str, list[str]],
                             message: str) -> None:
    await enable_all(clusters)
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", destinations,
                                "--connection-mode", mode)
    assert result.code == 0, result.err
    assert result.lines[-1] == message
    assert peers(clusters) == expected
    for context, names in expected.items():
        assert users(clusters, context) == [f"remote-{n}" for n in names]
        agents = files(clusters, context, "cilium-clustermesh")
        assert sorted(agents) == names
        for name in names:
            kv = files(clusters, context, "cilium-kvstoremesh")[name]
            assert kv["endpoints"] == [f"https://{name}.mesh.cilium.io:2379"]
            assert kv["cilium-host-aliases"] == {f"{name}.mesh.cilium.io": {"ips": [LB[name]]}}
            assert agents[name]["endpoints"] == ["https://clustermesh-apiserver.kube-system.svc:2379"]
            assert agents[name]["cert-file"] == "/var/lib/cilium/clustermesh/local-etcd-client.crt"


async def test_connect_is_idempotent_and_disconnect_removes_one_peer(clusters: Clusters) -> None:
    await enable_all(clusters)
    argv = ("connect", "--context", "cluster1", "--destination-context", "cluster2,cluster3", "--connection-mode",
            "mesh")
    assert (await clusters.run(*argv)).code == 0
    versions = {c: clusters.obj(c, "Secret", "cilium-kvstoremesh")["metadata"]["resourceVersion"]  # type: ignore[index]
                for c in LB}
    assert (await clusters.run(*argv)).code == 0
    assert versions == {c: clusters.obj(c, "Secret", "cilium-kvstoremesh")["metadata"]["resourceVersion"]  # type: ignore[index]
                        for c in LB}
    result = await clusters.run("disconnect", "--context", "cluster1", "--destination-context", "cluster3")
    assert result.code == 0, result.err
    assert result.lines[-1] == "✅ Disconnected clusters cluster1 <x> cluster3!"
    assert peers(clusters) == {"cluster1": ["cluster2"], "cluster2": ["cluster1", "cluster3"],
                               "cluster3": ["cluster2"]}
    assert users(clusters, "cluster1") == ["remote-cluster2"]
    assert users(clusters, "cluster3") == ["remote-cluster2"]


async def test_connect_without_kvstoremesh_points_agents_at_the_peers(clusters: Clusters) -> None:
    await enable_all(clusters, "--kvstore-mesh=false", contexts=("cluster1", "cluster2"))
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster2")
    assert result.code == 0, result.err
    assert clusters.obj("cluster1", "Secret", "cilium-kvstoremesh") is None
    agents = files(clusters, "cluster1", "cilium-clustermesh")
    assert agents["cluster2"]["endpoints"] == ["https://cluster2.mesh.cilium.io:2379"]
    assert agents["cluster2"]["cert-file"] == "/var/lib/cilium/clustermesh/common-etcd-client.crt"


async def test_clashing_ids_are_refused_and_nothing_is_written(clusters: Clusters) -> None:
    await enable_all(clusters)
    config = clusters.obj("cluster2", "ConfigMap", "cilium-config") or {}
    config["data"]["cluster-id"] = "1"
    clusters.sim("cluster2").apply(config)
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster2")
    assert result.code == 1
    assert result.err.splitlines()[0] == ("Error: Unable to connect cluster: remote and local cluster have the same, "
                                          "non-unique ID: 1")
    assert result.err.splitlines()[1].startswith("💡 ")
    assert peers(clusters) == {c: [] for c in LB}


async def test_wrong_ca_is_refused_unless_allowed(clusters: Clusters) -> None:
    await enable_all(clusters, contexts=("cluster1", "cluster2"))
    result = await clusters.enable("cluster3")  # a CA of its own
    assert result.code == 0
    clusters.assign_lb("cluster3", LB["cluster3"])
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster3")
    assert result.code == 1
    assert "Cilium CA certificates do not match between clusters cluster1 and cluster3" in result.err
    assert "--allow-mismatching-ca" in result.err
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster3",
                                "--allow-mismatching-ca")
    assert result.code == 0, result.err
    cas = [base64.b64decode((clusters.obj(c, "Secret", "cilium-ca") or {})["data"]["ca.crt"]) for c in
           ("cluster1", "cluster3")]
    for context in ("cluster1", "cluster3"):
        for secret in ("clustermesh-apiserver-server-cert", "clustermesh-apiserver-remote-cert"):
            bundle = base64.b64decode((clusters.obj(context, "Secret", secret) or {})["data"]["ca.crt"])
            assert all(ca in bundle for ca in cas), (context, secret)
        deploy = clusters.obj(context, "Deployment", "clustermesh-apiserver", "apps/v1") or {}
        assert "cilium.io/caBundleChangeRestartedAt" in deploy["spec"]["template"]["metadata"]["annotations"]
    # enable again keeps the certificates, and so the bundles.
    assert (await clusters.enable("cluster3")).code == 0
    bundle = base64.b64decode((clusters.obj("cluster3", "Secret", "clustermesh-apiserver-remote-cert") or {})
                              ["data"]["ca.crt"])
    assert all(ca in bundle for ca in cas)


async def test_unreachable_and_unprepared_peers(clusters: Clusters) -> None:
    await enable_all(clusters, contexts=("cluster1", "cluster2"))
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster3")
    assert result.code == 1
    assert 'unable to get clustermesh service "clustermesh-apiserver"' in result.err
    assert "clustermeshctl enable" in result.err
    await clusters.sim("cluster2").stop()
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster2")
    assert result.code == 1
    assert "cannot reach the Kubernetes API of context 'cluster2'" in result.err.splitlines()[0]
    assert result.err.splitlines()[1] == "💡 check that the cluster is running"
    result = await clusters.run("connect", "--context", "cluster1")
    assert "no destination context specified" in result.err
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster3",
                                "--connection-mode", "star")
    assert result.err.splitlines() == ["Error: Unable to connect cluster: star is not a correct connection mode.",
                                       "💡 Available connection modes: bidirectional, mesh, unicast"]
