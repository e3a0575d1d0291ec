"""Connection modes and what connect writes for each pair: Secrets, host aliases, users."""

from __future__ import annotations

import base64

import pytest
import yaml

from apiserver.ctl import _pairing, _render
from apiserver.ctl._errors import CtlError
from apiserver.security.users_config import parse_users_config


@pytest.mark.parametrize(("mode", "expected"), [
    pytest.param("unicast", {"c1": ["c2", "c3"]}, id="unicast"),
    pytest.param("bidirectional", {"c1": ["c2", "c3"], "c2": ["c1"], "c3": ["c1"]}, id="bidirectional"),
    pytest.param("mesh", {"c1": ["c2", "c3"], "c2": ["c1", "c3"], "c3": ["c1", "c2"]}, id="mesh"),
])
def test_pairing(mode: str, expected: dict[str, list[str]]) -> None:
    plan = _pairing.plan(mode, "c1", ["c2", "c3"])
    assert plan == expected
    assert all(name not in peers for name, peers in plan.items())  # never to itself


def test_full_mesh_of_four_is_complete() -> None:
    plan = _pairing.plan("mesh", "a", ["b", "c", "d"])
    edges = {(x, y) for x, peers in plan.items() for y in peers}
    assert edges == {(x, y) for x in "abcd" for y in "abcd" if x != y}


@pytest.mark.parametrize(("mode", "remotes", "message"), [
    pytest.param("star", ["c2"], "star is not a correct connection mode.", id="bad-mode"),
    pytest.param("mesh", ["c2", "c2"], "Multiple remote clusters have the same name 'c2'", id="duplicate"),
])
def test_pairing_errors(mode: str, remotes: list[str], message: str) -> None:
    with pytest.raises(CtlError) as err:
        _pairing.plan(mode, "c1", remotes)
    assert err.value.message == message


PEERS = {"cluster2": _render.Peer("cluster2", ("172.19.255.47",), 2379),
         "cluster3": _render.Peer("cluster3", ("172.19.255.48", "172.19.255.49"), 2379)}


def decoded(secret: dict[str, object]) -> dict[str, str]:
    return _render.decode_data(secret)


def test_kvstoremesh_secret_one_file_per_peer_in_helm_layout() -> None:
    files = decoded(_render.kvstoremesh_secret(PEERS, "kube-system"))
    assert sorted(files) == ["cluster2", "cluster3"]
    assert files["cluster2"] == (
        "endpoints:\n"
        "- https://cluster2.mesh.cilium.io:2379\n"
        "trusted-ca-file: /var/lib/cilium/clustermesh/common-etcd-client-ca.crt\n"
        "key-file: /var/lib/cilium/clustermesh/common-etcd-client.key\n"
        "cert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt\n"
        "cilium-host-aliases:\n"
        "  cluster2.mesh.cilium.io:\n"
        "    ips:\n"
        "    - 172.19.255.47\n")
    doc = yaml.safe_load(files["cluster3"])
    assert doc["cilium-host-aliases"] == {"cluster3.mesh.cilium.io": {"ips": ["172.19.255.48", "172.19.255.49"]}}


@pytest.mark.parametrize(("kvstoremesh", "endpoint", "prefix"), [
    pytest.param(True, "https://clustermesh-apiserver.kube-system.svc:2379", "local-", id="with-kvstoremesh"),
    pytest.param(False, "https://cluster2.mesh.cilium.io:2379", "common-", id="without-kvstoremesh"),
])
def test_agents_secret(kvstoremesh: bool, endpoint: str, prefix: str) -> None:
    secret = _render.agents_secret(PEERS, "kube-system", kvstoremesh=kvstoremesh)
    doc = yaml.safe_load(decoded(secret)["cluster2"])
    assert doc["endpoints"] == [endpoint]
    assert doc["key-file"] == f"/var/lib/cilium/clustermesh/{prefix}etcd-client.key"
    assert doc["trusted-ca-file"] == f"/var/lib/cilium/clustermesh/{prefix}etcd-client-ca.crt"
    assert ("cilium-host-aliases" in doc) is not kvstoremesh
    annotation = secret["metadata"]["annotations"][_render.PEERS_ANNOTATION]  # type: ignore[index]
    assert _render.peers_from_annotation(annotation) == PEERS


def test_users_configmap_is_what_the_users_manager_reads() -> None:
    cm = _render.users_configmap(PEERS, "kube-system")
    text = cm["data"]["users.yaml"]
    parsed = parse_users_config(text)
    assert [(u.name, u.role) for u in parsed.users] == [("remote-cluster2", "remote"), ("remote-cluster3", "remote")]
    assert not parsed.rejected
    assert parse_users_config(_render.users_yaml({})).users == ()


def test_secret_values_are_base64() -> None:
    data = _render.kvstoremesh_secret(PEERS, "ns")["data"]
    assert base64.b64decode(data["cluster2"]).startswith(b"endpoints:")  # type: ignore[index]


def test_bad_annotation_is_a_clear_error() -> None:
    with pytest.raises(CtlError, match="is not valid"):
        _render.peers_from_annotation("{not json")
