"""The agent's view of the mesh on real etcd: a remote read directly, and a remote read from the local
KVStoreMesh cache, with the validations agents apply."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
import pytest_asyncio
import yaml

from apiserver.cli import main as cli_main
from apiserver.clusterinfo import ClusterInfo
from apiserver.kube import KubeOptions
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstoremesh import MeshConfig
from localmesh.agent import Agent, AgentSettings
from localmesh.agent import _validate as v
from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.polling import eventually

ID = 2


def node(name: str, cluster: str = "cluster2", cid: int = ID) -> bytes:
    return orjson.dumps({"Name": name, "Cluster": cluster, "ClusterID": cid, "IPAddresses": []})


def service(ns: str, name: str, backends: dict[str, int], cluster: str = "cluster2", cid: int = ID) -> bytes:
    return orjson.dumps({"cluster": cluster, "namespace": ns, "name": name, "frontends": {},
                         "backends": {ip: {"http": {"Protocol": "TCP", "Port": port}} for ip, port in backends.items()},
                         "labels": {}, "selector": {}, "includeExternal": True, "shared": True, "clusterID": cid})


def ip(address: str) -> bytes:
    return orjson.dumps({"IP": address, "Mask": None, "HostIP": "172.18.0.2", "ID": (ID << 16) + 5})


def remote_keys(cached: bool) -> dict[str, bytes]:
    """What cluster2's exporter writes (``cached=False``) or what KVStoreMesh caches of it locally."""
    def p(kind: str, rest: str) -> str:
        if cached:
            base = {"ip": "cilium/cache/ip/v1/cluster2", "identities": "cilium/cache/identities/v1/cluster2/id"}.get(
                kind, f"cilium/cache/{kind}/v1/cluster2")
        else:
            base = {"ip": "cilium/state/ip/v1/default", "identities": "cilium/state/identities/v1/id"}.get(
                kind, f"cilium/state/{kind}/v1/cluster2")
        return f"{base}/{rest}"

    config = {"id": ID, "capabilities": {"syncedCanaries": True, "maxConnectedClusters": 255,
                                         "serviceExportsEnabled": False}}
    if cached:
        config["capabilities"]["cached"] = True  # type: ignore[index]
    keys = {
        "cilium/cluster-config/cluster2": orjson.dumps(config),
        "cilium/.heartbeat": b"2026-12-03T12:00:00Z",
        p("nodes", "n1"): node("n1"), p("nodes", "n2"): node("n2"),
        p("nodes", "bad"): node("bad", cid=7),
        p("services", "default/echo"): service("default", "echo", {"12.0.1.5": 8080, "12.0.2.5": 8080}),
        p("services", "default/liar"): service("default", "liar", {"12.0.1.9": 80}, cluster="cluster3"),
        p("identities", str((ID << 16) + 5)): b"k8s:app=echo;",
        p("identities", str((3 << 16) + 5)): b"k8s:app=foreign;",
        p("ip", "12.0.1.5"): ip("12.0.1.5"), p("ip", "12.0.2.5"): ip("12.0.2.5"),
    }
    for kind in ("nodes", "services", "identities", "ip", "serviceexports"):
        keys[f"cilium/synced/cluster2/{'cilium/cache' if cached else 'cilium/state'}/{kind}/v1"] = b"now"
    return keys


def local_echo() -> list[dict[str, object]]:
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "echo", "namespace": "default", "annotations": {"service.cilium.io/global": "true"}},
         "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {
            "name": "echo-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "echo"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["11.0.0.7"], "conditions": {"ready": True}}]},
    ]


@pytest_asyncio.fixture
async def client(etcd_server: EtcdServer) -> AsyncIterator[EtcdClient]:
    async with await EtcdClient.connect(EtcdConfig(endpoints=(etcd_server.endpoint,))) as c:
        yield c


@pytest.mark.parametrize("cached", [pytest.param(False, id="remote-etcd-directly"),
                                    pytest.param(True, id="through-kvstoremesh-cache")])
async def test_agent_reads_and_validates_the_mesh(etcd_server: EtcdServer, client: EtcdClient, tmp_path: Path,
                                                  cached: bool, kubesim: KubeSim, kubeconfig_path: Path) -> None:
    # The agent's own cluster1 has a global service with the same name: its backends join the view.
    for obj in local_echo():
        kubesim.apply(obj)
    kube = KubeOptions(kubeconfig_path=str(kubeconfig_path))
    for key, value in remote_keys(cached).items():
        await client.put(key, value)
    config_dir = tmp_path / "clustermesh"
    config_dir.mkdir()
    (config_dir / "cluster2").write_text(yaml.safe_dump({"endpoints": [etcd_server.endpoint]}))
    (config_dir / "cluster1").write_text(yaml.safe_dump({"endpoints": ["http://127.0.0.1:1"]}))  # itself: ignored
    agent = Agent(AgentSettings(ClusterInfo("cluster1", 1), str(config_dir), "127.0.0.1:0", kube=kube,
                                mesh=MeshConfig(disable_drain_on_disconnection=True, config_poll_interval=0.05)))
    await agent.start()
    try:
        async def ready() -> bool:
            clusters = (await agent.cluster_mesh())["clusters"]
            return bool(clusters) and bool(clusters[0].get("ready", False))

        async def echo_gone() -> bool:
            return "cluster2" not in (await agent.view()).services["default/echo"].backends

        async def no_clusters() -> bool:
            return bool((await agent.cluster_mesh())["clusters"] == [])

        await eventually(ready, 15.0)
        mesh = (await agent.cluster_mesh())
        remote = mesh["clusters"][0]
        assert remote["name"] == "cluster2" and remote["connected"] is True
        assert remote["config"]["cluster-id"] == ID and remote["config"].get("kvstoremesh", False) is cached
        assert remote["synced"] == {"endpoints": True, "identities": True, "nodes": True, "service-exports": True,
                                   "services": True}
        assert (remote["num-nodes"], remote["num-shared-services"], remote["num-identities"],
                remote["num-endpoints"]) == (3, 2, 2, 2)
        assert mesh["num-global-services"] == 1
        view = (await agent.view())
        echo = view.services["default/echo"]
        assert [b.ip for b in echo.backends["cluster2"]] == ["12.0.1.5", "12.0.2.5"]
        assert [(b.ip, b.ports) for b in echo.backends["cluster1"]] == [
            ("11.0.0.7", {"http": {"Protocol": "TCP", "Port": 8080}})]
        assert view.valid["cluster2"] == {"nodes": 2, "identities": 1, "endpoints": 2, "services": 1}
        assert sorted((r.resource, r.key) for r in view.rejected) == [
            ("identities", str((3 << 16) + 5)), ("nodes", "bad"), ("services", "default/liar")]
        await check_agent_dbg(agent.api_port)
        # A service going away reaches the view.
        prefix = "cilium/cache/services/v1/cluster2" if cached else "cilium/state/services/v1/cluster2"
        await client.delete(f"{prefix}/default/echo")
        await eventually(echo_gone, 15.0)
        # The config file removed: the remote leaves the status.
        (config_dir / "cluster2").unlink()
        await eventually(no_clusters, 15.0)
    finally:
        await agent.stop()


async def check_agent_dbg(port: int) -> None:
    """What ``clustermeshctl status`` and the demo run inside the agent's pod."""
    out = io.StringIO()

    def call(*argv: str) -> int:
        with contextlib.redirect_stdout(out):
            return cli_main(["agent-dbg", "-H", f"127.0.0.1:{port}", *argv])

    assert await asyncio.to_thread(call, "status", "-o", "json") == 0
    doc = json.loads(out.getvalue())
    assert doc["cluster-mesh"]["num-global-services"] == 1
    assert [c["name"] for c in doc["cluster-mesh"]["clusters"]] == ["cluster2"]
    out.truncate(0)
    out.seek(0)
    assert await asyncio.to_thread(call, "services") == 0
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["default/echo:", "  cluster1: 11.0.0.7:8080", "  cluster2: 12.0.1.5:8080, 12.0.2.5:8080"]
    assert "rejected services default/liar of cluster2: cluster 'cluster3' is not 'cluster2'" in lines


@pytest.mark.parametrize(("check", "expected"), [
    pytest.param(lambda: v.check_node("n1", node("n1"), "cluster2", ID), None, id="node-ok"),
    pytest.param(lambda: v.check_node("n2", node("n1"), "cluster2", ID), "node name 'n1' does not match key 'n2'",
                 id="node-key"),
    pytest.param(lambda: v.check_node("n1", node("n1", cluster="c9"), "cluster2", ID), "cluster 'c9' is not 'cluster2'",
                 id="node-cluster"),
    pytest.param(lambda: v.check_service("default/echo", service("default", "echo", {}), "cluster2", ID), None,
                 id="service-ok"),
    pytest.param(lambda: v.check_service("echo", service("default", "echo", {}), "cluster2", ID),
                 "key 'echo' is not <namespace>/<name>", id="service-key"),
    pytest.param(lambda: v.check_service("default/echo", service("default", "echo", {}, cid=3), "cluster2", ID),
                 "cluster ID 3 is not 2", id="service-id"),
    pytest.param(lambda: v.check_identity(str((2 << 16) + 1), b"x", 2, 255), None, id="identity-ok"),
    pytest.param(lambda: v.check_identity(str(2 << 16), b"x", 2, 255), "identity 131072 is outside cluster 2's range",
                 id="identity-zero-local-part"),
    pytest.param(lambda: v.check_identity(str((2 << 15) + 1), b"x", 2, 511), None, id="identity-511"),
    pytest.param(lambda: v.check_ip("10.0.0.1", ip("10.0.0.1")), None, id="ip-ok"),
    pytest.param(lambda: v.check_ip("nope", ip("10.0.0.1")), "key 'nope' is not an IP address", id="ip-key"),
    pytest.param(lambda: v.check_node("n1", b"{", "cluster2", ID), "not valid JSON", id="bad-json"),
])
def test_validations(check: Callable[[], str | None], expected: str | None) -> None:
    result = check()
    if expected is None:
        assert result is None
    else:
        assert result is not None and result.startswith(expected)
