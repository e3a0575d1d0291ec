"""doctor through the CLI against emulated clusters, with real TLS handshakes for reachability."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.ctl.conftest import NS, Clusters
from tests.ctl.test_ctl_connect import enable_all


async def test_guide_clusters_can_be_meshed(clusters: Clusters) -> None:
    result = await clusters.run("doctor", "--context", "cluster1", "--context", "cluster2", "--context", "cluster3")
    assert result.code == 0, result.out
    assert "✅ Cluster names and IDs are valid and unique: cluster1=1, cluster2=2, cluster3=3" in result.lines
    assert "✅ Pod CIDRs do not overlap: cluster1: 11.0.0.0/8 fd00::/104 11.0.0.0/24 11.0.1.0/24 11.0.2.0/24; " \
           "cluster2: 12.0.0.0/8 fd01::/104 12.0.0.0/24 12.0.1.0/24 12.0.2.0/24; cluster3: 13.0.0.0/8 fd02::/104 " \
           "13.0.0.0/24 13.0.1.0/24 13.0.2.0/24" in result.lines
    assert result.lines[-1] == "✅ The 3 clusters can be meshed"
    assert any("Node-to-node connectivity between clusters: not checked from here" in line for line in result.lines)


async def test_overlapping_cidrs_and_missing_config_fail(clusters: Clusters) -> None:
    config = clusters.obj("cluster2", "ConfigMap", "cilium-config") or {}
    config["data"]["cluster-pool-ipv4-cidr"] = "11.128.0.0/9"
    clusters.sim("cluster2").apply(config)
    clusters.sim("cluster3").delete("v1", "ConfigMap", "cilium-config", NS)
    result = await clusters.run("doctor", "--context", "cluster1", "--context", "cluster2", "--context", "cluster3")
    assert result.code == 1
    assert "❌ cilium-config of context 'cluster3':" in result.lines
    assert "   - 11.0.0.0/8 in 'cluster1' overlaps 11.128.0.0/9 in 'cluster2'" in result.lines
    assert "   💡 give every cluster its own cluster-pool-ipv4-cidr / cluster-pool-ipv6-cidr" in result.lines
    assert result.lines[-1] == "❌ 2 of 8 checks failed"


@pytest_asyncio.fixture
async def tls_server(clusters: Clusters, tmp_path: Path) -> AsyncIterator[int]:
    """cluster1's mesh etcd stand-in: TLS with its server certificate, client certificates required."""
    await enable_all(clusters)
    secret = clusters.obj("cluster1", "Secret", "clustermesh-apiserver-server-cert") or {}
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    for name, blob in data.items():
        (tmp_path / name).write_bytes(blob)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    context.load_cert_chain(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    context.verify_mode = ssl.CERT_REQUIRED

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


def point_service(clusters: Clusters, context: str, port: int) -> None:
    svc = clusters.obj(context, "Service", "clustermesh-apiserver") or {}
    svc["spec"]["ports"] = [{"port": port}]
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    clusters.sim(context).apply(svc)


async def test_reachability_by_tls_handshake(clusters: Clusters, tls_server: int) -> None:
    point_service(clusters, "cluster1", tls_server)
    point_service(clusters, "cluster2", tls_server)  # same CA: cluster2's client certificate is trusted too
    result = await clusters.run("doctor", "--context", "cluster1", "--context", "cluster2")
    assert result.code == 0, result.out
    assert (f"✅ Mesh API servers reachable on their port from here (TLS handshake with the mesh CA): cluster1 "
            f"127.0.0.1:{tls_server}, cluster2 127.0.0.1:{tls_server}") in result.lines
    assert "✅ KVStoreMesh on or off everywhere: on" in result.lines


async def test_wrong_ca_and_unreachable_peer(clusters: Clusters, tls_server: int) -> None:
    point_service(clusters, "cluster1", tls_server)
    for name in ("cilium-ca", "clustermesh-apiserver-remote-cert"):
        clusters.sim("cluster3").delete("v1", "Secret", name, NS)
    assert (await clusters.enable("cluster3")).code == 0  # a CA of its own
    point_service(clusters, "cluster3", tls_server)
    sock_port = tls_server + 1 if tls_server < 65535 else tls_server - 1
    point_service(clusters, "cluster2", sock_port)
    result = await clusters.run("doctor", "--context", "cluster1", "--context", "cluster2", "--context", "cluster3")
    assert result.code == 1
    lines = [line for line in result.lines if line.startswith("   - cluster")]
    assert any(line.startswith(f"   - cluster3 (127.0.0.1:{tls_server}): certificate not trusted") for line in lines)
    assert any(line.startswith(f"   - cluster2 (127.0.0.1:{sock_port}):") for line in lines)
