"""CiliumNode -> cilium/state/nodes/v1/<cluster>/<node>."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
import yaml
from _convert_golden import k8s_object, listing

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert import ConversionError, convert_cilium_node

CLUSTER3 = ClusterInfo("cluster3", 3)
PREFIX = "cilium/state/nodes/v1"
GOLDEN = "ciliumnodes.txtar"

# Spec section 1.2 example, verbatim.
SPEC_EXAMPLE_KEY = "cilium/state/nodes/v1/cluster3/test-node-2"
SPEC_EXAMPLE_VALUE = (
    b'{"Name":"test-node-2","Cluster":"cluster3","IPAddresses":[{"Type":"InternalIP","IP":"172.18.0.3"},'
    b'{"Type":"InternalIP","IP":"fc00:c111::3"},{"Type":"CiliumInternalIP","IP":"10.244.1.130"},'
    b'{"Type":"CiliumInternalIP","IP":"fd00:10:244:1::9089"}],"IPv4AllocCIDR":{"IP":"10.244.1.0",'
    b'"Mask":"////AA=="},"IPv4SecondaryAllocCIDRs":null,"IPv6AllocCIDR":{"IP":"fd00:10:244:1::",'
    b'"Mask":"//////////8AAAAAAAAAAA=="},"IPv6SecondaryAllocCIDRs":null,"IPv4HealthIP":"10.244.1.153",'
    b'"IPv6HealthIP":"fd00:10:244:1::835d","IPv4IngressIP":"","IPv6IngressIP":"","ClusterID":3,'
    b'"Source":"custom-resource","EncryptionKey":7,"Labels":{"kubernetes.io/hostname":"test-node-2"},'
    b'"Annotations":null,"NodeIdentity":0,"WireguardPubKey":"","BootID":"c1d2cda2-aca0-4033-abca-3843298860b9"}'
)


def _golden_with(node: str, old: str, new: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The golden's ``replace old new`` step, applied to both the object and its expectation."""
    obj = yaml.safe_load(yaml.safe_dump(k8s_object(GOLDEN, f"{node}.yaml")).replace(old, new))
    expected = listing(GOLDEN, f"{node}.expected", prefix=PREFIX)
    return obj, {k: v.replace(old.encode(), new.encode()) for k, v in expected.items()}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(k8s_object(GOLDEN, "node-1.yaml"), listing(GOLDEN, "node-1.expected", prefix=PREFIX),
                     id="golden-node-1"),
        pytest.param(k8s_object(GOLDEN, "node-2.yaml"), listing(GOLDEN, "node-2.expected", prefix=PREFIX),
                     id="golden-node-2"),
        pytest.param(*_golden_with("node-1", "10.244.0.134", "10.244.0.135"), id="golden-node-1-updated"),
        pytest.param(k8s_object(GOLDEN, "node-2.yaml"), {SPEC_EXAMPLE_KEY[len(PREFIX) + 1:]: SPEC_EXAMPLE_VALUE},
                     id="spec-example"),
    ],
)
def test_golden(obj: dict[str, Any], expected: dict[str, bytes]) -> None:
    key, value = convert_cilium_node(obj, CLUSTER3)
    assert {key: value} == expected


def _node(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "n1", **meta}, "spec": spec or {}}


def _fields(obj: dict[str, Any], cluster: ClusterInfo = CLUSTER3) -> dict[str, Any]:
    """The decoded value, for rows that check a few fields (the order is checked above)."""
    key, value = convert_cilium_node(obj, cluster)
    assert key == f"{cluster.name}/n1"
    decoded: dict[str, Any] = orjson.loads(value)
    return decoded


_BARE = (
    b'{"Name":"n1","Cluster":"cluster3","IPAddresses":null,"IPv4AllocCIDR":null,"IPv4SecondaryAllocCIDRs":null,'
    b'"IPv6AllocCIDR":null,"IPv6SecondaryAllocCIDRs":null,"IPv4HealthIP":"","IPv6HealthIP":"","IPv4IngressIP":"",'
    b'"IPv6IngressIP":"","ClusterID":3,"Source":"custom-resource","EncryptionKey":0,"Labels":null,'
    b'"Annotations":null,"NodeIdentity":0,"WireguardPubKey":"","BootID":""}'
)


def test_bare_node_has_nulls_and_empty_strings() -> None:
    assert convert_cilium_node({"metadata": {"name": "n1"}}, CLUSTER3) == ("cluster3/n1", _BARE)


@pytest.mark.parametrize(
    ("obj", "field", "expected"),
    [
        pytest.param(
            _node({"ipam": {"podCIDRs": ["10.0.1.7/24", "fd00::/64", "10.0.2.0/24", "bogus", "fd01::/64"],
                            "pools": {"allocated": [{"pool": "p", "cidrs": ["10.9.0.0/16", "fd02::/48"]}]}}}),
            ("IPv4AllocCIDR", "IPv4SecondaryAllocCIDRs", "IPv6AllocCIDR", "IPv6SecondaryAllocCIDRs"),
            ({"IP": "10.0.1.0", "Mask": "////AA=="},
             [{"IP": "10.0.2.0", "Mask": "////AA=="}, {"IP": "10.9.0.0", "Mask": "//8AAA=="}],
             {"IP": "fd00::", "Mask": "//////////8AAAAAAAAAAA=="},
             [{"IP": "fd01::", "Mask": "//////////8AAAAAAAAAAA=="},
              {"IP": "fd02::", "Mask": "////////AAAAAAAAAAAAAA=="}]),
            id="cidrs-pod-then-pools-split-by-family-invalid-skipped"),
        pytest.param(
            _node({"ipam": {"podCIDRs": ["::ffff:10.1.2.3/104"]}}),
            ("IPv4AllocCIDR", "IPv6AllocCIDR"),
            ({"IP": "10.0.0.0", "Mask": "/////////////////wAAAA=="}, None),
            id="ipv4-mapped-cidr-counts-as-ipv4"),
        pytest.param(
            _node({"addresses": [{"ip": "::ffff:172.18.0.3", "type": "InternalIP"}, {"ip": "nope", "type": "X"},
                                 {"ip": "FC00::3"}, {"type": "ExternalIP"}]}),
            ("IPAddresses",),
            ([{"Type": "InternalIP", "IP": "172.18.0.3"}, {"Type": "", "IP": "fc00::3"}],),
            id="addresses-canonical-invalid-skipped"),
        pytest.param(
            _node({"health": {"ipv4": "10.0.0.5", "ipv6": "bad"}, "ingress": {"ipv4": "::ffff:10.0.0.6",
                                                                             "ipv6": "FD00::6"}}),
            ("IPv4HealthIP", "IPv6HealthIP", "IPv4IngressIP", "IPv6IngressIP"),
            ("10.0.0.5", "", "10.0.0.6", "fd00::6"),
            id="health-and-ingress-ips"),
        pytest.param(
            _node(annotations={"io.cilium.network.wg-pub-key": "alias-key"}),
            ("WireguardPubKey", "Annotations"),
            ("alias-key", {"io.cilium.network.wg-pub-key": "alias-key"}),
            id="wireguard-alias"),
        pytest.param(
            _node(annotations={"io.cilium.network.wg-pub-key": "alias", "network.cilium.io/wg-pub-key": "main"}),
            ("WireguardPubKey",), ("main",), id="wireguard-main-key-wins"),
        pytest.param(_node(labels={}, annotations={}), ("Labels", "Annotations"), ({}, {}),
                     id="empty-maps-stay-empty-objects"),
        pytest.param(_node(labels={"b": "2", "a": None}), ("Labels",), ({"a": "", "b": "2"},),
                     id="null-label-value-is-empty-string"),
        pytest.param(_node({"encryption": {"key": 257}, "nodeidentity": (1 << 32) + 5}),
                     ("EncryptionKey", "NodeIdentity"), (1, 5), id="go-integer-conversions-wrap"),
        pytest.param(_node({"bootid": "b-1", "unknownField": [1]}), ("BootID",), ("b-1",),
                     id="unknown-fields-ignored"),
    ],
)
def test_fields(obj: dict[str, Any], field: tuple[str, ...], expected: tuple[Any, ...]) -> None:
    decoded = _fields(obj)
    assert tuple(decoded[f] for f in field) == expected


def test_cluster_name_and_id_are_always_the_local_ones() -> None:
    decoded = _fields(_node(labels={"io.cilium.k8s.policy.cluster": "other"}), ClusterInfo("c9", 9))
    assert (decoded["Cluster"], decoded["ClusterID"]) == ("c9", 9)


def test_labels_are_sorted_by_key() -> None:
    _, value = convert_cilium_node(_node(labels={"z": "1", "a": "2", "<m>": "3"}), CLUSTER3)
    assert b'"Labels":{"\\u003cm\\u003e":"3","a":"2","z":"1"}' in value


def _broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(k8s_object(GOLDEN, "node-1.yaml"))
    target = obj
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"spec": {}}, id="no-metadata"),
        pytest.param({"metadata": "x"}, id="metadata-not-object"),
        pytest.param(_broken(("metadata", "name"), ""), id="empty-name"),
        pytest.param(_broken(("metadata", "name"), 7), id="name-not-string"),
        pytest.param(_broken(("metadata", "name"), "n" * (64 * 1024 + 1)), id="name-over-64KiB"),
        pytest.param(_broken(("metadata", "name"), "a/b"), id="name-with-slash"),
        pytest.param(_broken(("metadata", "labels"), ["a"]), id="labels-not-object"),
        pytest.param(_broken(("metadata", "labels"), {"a": 1}), id="label-value-not-string"),
        pytest.param(_broken(("spec",), "x"), id="spec-not-object"),
        pytest.param(_broken(("spec", "addresses"), {"ip": "1.2.3.4"}), id="addresses-not-array"),
        pytest.param(_broken(("spec", "addresses"), ["1.2.3.4"]), id="address-not-object"),
        pytest.param(_broken(("spec", "addresses"), [{"ip": 1234}]), id="address-ip-not-string"),
        pytest.param(_broken(("spec", "ipam", "podCIDRs"), "10.0.0.0/8"), id="pod-cidrs-not-array"),
        pytest.param(_broken(("spec", "encryption"), {"key": "7"}), id="key-is-string"),
        pytest.param(_broken(("spec", "encryption"), {"key": True}), id="key-is-bool"),
        pytest.param(_broken(("spec", "encryption"), {"key": 7.0}), id="key-is-float"),
        pytest.param(_broken(("spec", "nodeidentity"), -1), id="negative-uint64"),
        pytest.param(_broken(("spec", "health"), {"ipv4": ["10.0.0.1"]}), id="health-ip-not-string"),
    ],
)
def test_malformed_objects_raise_conversion_error(obj: Any) -> None:
    with pytest.raises(ConversionError) as err:
        convert_cilium_node(obj, CLUSTER3)
    assert err.value.reason
