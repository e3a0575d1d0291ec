"""Access information and connect validation: cilium-cli's rules and messages."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from apiserver.ctl._access import (
    NODEPORT_WARNING,
    AccessInfo,
    ca_match,
    extract_access_info,
    split_endpoint,
    validate_for_connect,
)
from apiserver.ctl._errors import CtlError
from apiserver.security.pki import generate_ca

CA = generate_ca().cert_pem()
CONFIG = {"cluster-name": "cluster1", "cluster-id": "1", "routing-mode": "tunnel"}


def service(kind: str, **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {"spec": {"type": kind, **spec}, "status": status}


def node(*addresses: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"addresses": [{"type": t, "address": a} for t, a in addresses]}}


@pytest.mark.parametrize(("svc", "nodes", "endpoints", "ips", "port"), [
    pytest.param(service("ClusterIP", clusterIP="10.96.0.5", ports=[{"port": 2379}]), [], [],
                 ("10.96.0.5",), 2379, id="clusterip"),
    pytest.param(service("NodePort", ports=[{"port": 2379, "nodePort": 32379}]),
                 [node(("InternalIP", "172.18.0.2")), node(("InternalIP", "172.18.0.3"))], [],
                 ("172.18.0.2",), 32379, id="nodeport-first-node"),
    pytest.param(service("NodePort", ports=[{"port": 2379, "nodePort": 32379}]),
                 [node(("InternalIP", "172.18.0.2"), ("ExternalIP", "203.0.113.9"))], [],
                 ("203.0.113.9",), 32379, id="nodeport-external-preferred"),
    pytest.param(service("NodePort", ports=[{"port": 2379, "nodePort": 32379}]),
                 [node(), node(("InternalIP", "10.0.0.7"))], [], ("10.0.0.7",), 32379,
                 id="nodeport-skips-nodes-without-address"),
    pytest.param(service("LoadBalancer", ports=[{"port": 2379}],
                         status={"loadBalancer": {"ingress": [{"ip": "172.19.255.46"}, {"ip": "172.19.255.47"}]}}),
                 [], [], ("172.19.255.46", "172.19.255.47"), 2379, id="loadbalancer-ingress"),
    pytest.param(service("LoadBalancer", ports=[{"port": 2379}]), [], ["192.0.2.1:2380", "[2001:db8::1]:2380"],
                 ("192.0.2.1", "2001:db8::1"), 2380, id="explicit-endpoints-override"),
])
def test_addresses_by_service_type(svc: dict[str, Any], nodes: list[dict[str, Any]], endpoints: list[str],
                                   ips: tuple[str, ...], port: int) -> None:
    info = extract_access_info(CONFIG, svc, CA, nodes=nodes, endpoints=endpoints)
    assert (info.service_ips, info.service_port) == (ips, port)
    assert info.tunnel == "vxlan" and info.max_connected_clusters == 255
    assert (NODEPORT_WARNING in info.warnings) == (svc["spec"]["type"] == "NodePort" and not endpoints)


@pytest.mark.parametrize(("config", "svc", "endpoints", "message"), [
    pytest.param({"cluster-id": "1"}, service("ClusterIP"), [], 'cluster-name is not set in ConfigMap "cilium-config"',
                 id="no-name"),
    pytest.param(CONFIG, service("LoadBalancer", ports=[{"port": 2379}]), [],
                 "unable to derive service IPs automatically", id="lb-without-ingress"),
    pytest.param(CONFIG, service("NodePort", ports=[{"port": 2379}]), [], "nodeport is not set in service",
                 id="nodeport-unset"),
    pytest.param(CONFIG, service("ClusterIP"), [], "port of service could not be derived, service has no ports",
                 id="no-ports"),
    pytest.param(CONFIG, service("ClusterIP", ports=[{"port": 2379}]), ["1.2.3.4:1", "1.2.3.5:2"],
                 "port mismatch (1 != 2), all endpoints must use the same port number", id="port-mismatch"),
    pytest.param(CONFIG, service("ClusterIP", ports=[{"port": 2379}]), ["1.2.3.4"],
                 "invalid endpoint '1.2.3.4', must be IP:PORT: missing port in address", id="no-port"),
    pytest.param({**CONFIG, "max-connected-clusters": "many"}, service("ClusterIP"), [],
                 "unable to parse max-connected-clusters", id="bad-max"),
])
def test_access_errors(config: dict[str, str], svc: dict[str, Any], endpoints: list[str], message: str) -> None:
    with pytest.raises(CtlError) as err:
        extract_access_info(config, svc, CA, endpoints=endpoints)
    assert err.value.message.startswith(message)
    assert err.value.hint


def info(name: str, cid: str, **kw: Any) -> AccessInfo:
    return dataclasses.replace(AccessInfo(name, cid, "LoadBalancer", ("192.0.2.1",), 2379, CA), **kw)


@pytest.mark.parametrize(("local", "remote", "message"), [
    pytest.param(info("c1", "1"), info("default", "2"), "remote cluster has non-unique name (default) and/or ID (2)",
                 id="remote-default-name"),
    pytest.param(info("c1", "1"), info("c2", "0"), "remote cluster has non-unique name (c2) and/or ID (0)",
                 id="remote-id-0"),
    pytest.param(info("c1", ""), info("c2", "2"),
                 "local cluster has the default name (cluster name: c1) and/or ID 0 (cluster ID: )", id="local-no-id"),
    pytest.param(info("c1", "1"), info("c2", "x"),
                 "remote cluster has non-numeric cluster ID x. Only numeric values 1-255 are allowed",
                 id="non-numeric"),
    pytest.param(info("c1", "1"), info("c2", "256"),
                 "remote cluster has cluster ID 256 out of acceptable range (1-255)", id="out-of-range"),
    pytest.param(info("c1", "1"), info("c2", "3", max_connected_clusters=511),
                 "remote and local clusters have different max connected clusters: 511 != 255", id="max-differs"),
    pytest.param(info("c1", "1"), info("c1", "2"), "remote and local cluster have the same, non-unique name: c1",
                 id="same-name"),
    pytest.param(info("c1", "1"), info("c2", "1"), "remote and local cluster have the same, non-unique ID: 1",
                 id="clashing-ids"),
])
def test_validation_messages(local: AccessInfo, remote: AccessInfo, message: str) -> None:
    with pytest.raises(CtlError) as err:
        validate_for_connect(local, remote)
    assert err.value.message == message


def test_valid_pair_passes() -> None:
    validate_for_connect(info("c1", "1"), info("c2", "2"))


def test_ca_match_compares_key_ids() -> None:
    other = generate_ca().cert_pem()
    assert ca_match(info("c1", "1"), info("c2", "2"))
    assert not ca_match(info("c1", "1"), info("c2", "2", ca=other))
    with pytest.raises(CtlError, match="failed to parse certificate PEM for remote CA cert"):
        ca_match(info("c1", "1"), info("c2", "2", ca=b"junk"))


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.1:2379", ("192.0.2.1", 2379)), ("[2001:db8::1]:32379", ("2001:db8::1", 32379)),
])
def test_split_endpoint(text: str, expected: tuple[str, int]) -> None:
    assert split_endpoint(text) == expected


def test_access_json_fields() -> None:
    doc = info("c1", "1", tunnel="vxlan").to_json()
    assert list(doc) == ["service_type", "service_ips", "service_port", "cluster_id", "cluster_name", "ca", "tunnel",
                         "max_connected_clusters"]
    assert doc["service_ips"] == ["192.0.2.1"] and doc["cluster_id"] == "1"
