"""cilium-host-aliases: a peer's ``<name>.mesh.cilium.io`` dialed at its IPs, the certificate still checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from apiserver.kvstore import UnavailableError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.etcd._transport import Transport
from apiserver.kvstore.etcd.config import EtcdConfigError
from localmesh.testing.etcd import EtcdServer, EtcdTLS


def aliased_config(server: EtcdServer, pki: EtcdTLS, tmp_path: Path, hostname: str, aliases: object) -> EtcdConfig:
    path = pki.client_config("root", [f"https://{hostname}:{server.client_port}"], tmp_path / "peer")
    doc = yaml.safe_load(path.read_text())
    doc["cilium-host-aliases"] = aliases
    path.write_text(yaml.safe_dump(doc))
    return EtcdConfig.from_yaml(path)


async def test_mesh_name_reaches_the_aliased_ip(etcd_tls_shared: EtcdServer, etcd_pki: EtcdTLS, tmp_path: Path) -> None:
    config = aliased_config(etcd_tls_shared, etcd_pki, tmp_path, "cluster9.mesh.cilium.io",
                            {"cluster9.mesh.cilium.io": {"ips": ["127.0.0.1"]}})
    async with await EtcdClient.connect(config, timeout=5) as client:
        assert (await client.status()).cluster_id == client.cluster_id


async def test_alias_does_not_bypass_the_certificate_name(etcd_tls_shared: EtcdServer, etcd_pki: EtcdTLS,
                                                          tmp_path: Path) -> None:
    config = aliased_config(etcd_tls_shared, etcd_pki, tmp_path, "peer.example.org",
                            [{"hostname": "peer.example.org", "ips": ["127.0.0.1"]}])
    with pytest.raises(UnavailableError):
        await EtcdClient.connect(config, timeout=1)


def test_one_endpoint_per_aliased_ip() -> None:
    config = EtcdConfig(endpoints=("https://c2.mesh.cilium.io:2379", "https://other:2379"),
                        host_aliases=(("c2.mesh.cilium.io", ("192.0.2.1", "2001:db8::1")),))
    endpoints = Transport(config).endpoints
    assert [(e.target, e.server_name) for e in endpoints] == [
        ("192.0.2.1:2379", "c2.mesh.cilium.io"), ("[2001:db8::1]:2379", "c2.mesh.cilium.io"), ("other:2379", "")]


@pytest.mark.parametrize(("aliases", "message"), [
    pytest.param({"": {"ips": ["1.2.3.4"]}}, "empty hostname", id="empty-hostname"),
    pytest.param({"a": {"ips": []}}, "no ips for 'a'", id="no-ips"),
    pytest.param({"a": {"ips": ["nope"]}}, "invalid IP 'nope'", id="bad-ip"),
    pytest.param([{"hostname": "a", "ips": ["1.1.1.1"]}, {"hostname": "a", "ips": ["2.2.2.2"]}], "listed twice",
                 id="duplicate"),
    pytest.param("a=1.2.3.4", "must be a mapping", id="wrong-shape"),
])
def test_invalid_aliases_are_refused(tmp_path: Path, aliases: object, message: str) -> None:
    path = tmp_path / "cfg"
    path.write_text(yaml.safe_dump({"endpoints": ["https://a:2379"], "cilium-host-aliases": aliases}))
    with pytest.raises(EtcdConfigError, match=message):
        EtcdConfig.from_yaml(path)
