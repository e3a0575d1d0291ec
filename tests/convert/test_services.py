"""Service + EndpointSlices -> cilium/state/services/v1/<cluster>/<ns>/<name>."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from _convert_golden import k8s_object, listing

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert import (
    ConversionError,
    convert_service,
    endpoint_slice_service,
    is_global_service,
    is_headless_service,
    is_shared_service,
    namespace_is_global,
    service_key,
    service_selected,
)

CLUSTER3 = ClusterInfo("cluster3", 3)
PREFIX = "cilium/state/services/v1"
SYNC, GLOBALNS = "servicesync.txtar", "globalnamespace-services.txtar"

# Spec section 1.5 example, verbatim.
SPEC_EXAMPLE = {
    "cluster3/test/echo": (
        b'{"cluster":"cluster3","namespace":"test","name":"echo","frontends":{"10.96.50.104":{"http":'
        b'{"Protocol":"TCP","Port":80}}},"backends":{"10.244.1.1":{"http":{"Protocol":"TCP","Port":8080}}},'
        b'"zones":{"10.244.1.1":{"zone":"zone1","forZones":[{"name":"zone1"}]}},"labels":{},"selector":'
        b'{"name":"echo"},"includeExternal":true,"shared":true,"clusterID":3}'
    )
}


def _export(svc: dict[str, Any], slices: list[dict[str, Any]]) -> dict[str, bytes]:
    value = convert_service(svc, slices, CLUSTER3)
    return {} if value is None else {service_key(CLUSTER3, svc): value}


def _sync_objects() -> tuple[dict[str, Any], dict[str, Any]]:
    return copy.deepcopy(k8s_object(SYNC, "service.yaml")), copy.deepcopy(k8s_object(SYNC, "endpointslice.yaml"))


def _expected(section: str, *replacements: tuple[str, str]) -> dict[str, bytes]:
    out = listing(SYNC, section, prefix=PREFIX)
    for old, new in replacements:
        out = {k: v.replace(old.encode(), new.encode()) for k, v in out.items()}
    return out


def test_golden_servicesync_steps() -> None:
    svc, eps = _sync_objects()
    assert _export(svc, []) == _expected("services-1.expected"), "1. service before its slice"
    assert _export(svc, [eps]) == _expected("services-2.expected"), "2. slice added"
    eps["endpoints"][0]["addresses"] = ["10.244.2.2"]
    services_3 = _expected("services-2.expected", ("10.244.1.1", "10.244.2.2"))
    assert _export(svc, [eps]) == services_3, "3. backend IP changed"
    eps["ports"][0]["port"] = 9090
    svc["spec"]["ports"][0]["targetPort"] = 9090
    services_4 = {k: v.replace(b'"Port":8080', b'"Port":9090') for k, v in services_3.items()}
    assert _export(svc, [eps]) == services_4, "4. backend port changed"
    assert _export(svc, []) == _expected("services-1.expected"), "5. slice removed"
    assert _export(svc, [eps]) == services_4, "8. slice before service"
    svc["metadata"]["annotations"]["service.cilium.io/global"] = "false"
    assert _export(svc, [eps]) == {}, "9. not global"
    del svc["metadata"]["annotations"]["service.cilium.io/shared"]
    svc["metadata"]["annotations"]["service.cilium.io/global"] = "true"
    assert _export(svc, [eps]) == services_4, "10. global services are shared by default"
    svc["metadata"]["annotations"]["service.cilium.io/shared"] = "false"
    assert _export(svc, [eps]) == {}, "11. not shared"
    svc["metadata"]["annotations"]["service.cilium.io/shared"] = "true"
    svc["spec"]["ports"][0]["name"] = None  # the golden's `sed http ""` leaves `name:` empty
    eps["ports"][0]["name"] = None
    services_5 = {k: v.replace(b'"http"', b'""') for k, v in services_4.items()}
    assert _export(svc, [eps]) == services_5, "12. unnamed ports"


def test_golden_global_namespace_services() -> None:
    got: dict[str, bytes] = {}
    for name in ("alpha", "beta"):
        svc, eps = k8s_object(GLOBALNS, f"service-{name}.yaml"), k8s_object(GLOBALNS, f"endpointslice-{name}.yaml")
        got |= _export(svc, [eps])
    assert got == listing(GLOBALNS, "services-1+2.expected", prefix=PREFIX)


def test_spec_example() -> None:
    svc, eps = _sync_objects()
    assert _export(svc, [eps]) == SPEC_EXAMPLE


# ----- which services are exported ----- #

@pytest.mark.parametrize(
    ("annotations", "is_global", "is_shared"),
    [
        pytest.param({}, False, False, id="no-annotations"),
        pytest.param({"service.cilium.io/global": "true"}, True, True, id="global-shared-by-default"),
        pytest.param({"service.cilium.io/global": "TRUE"}, True, True, id="case-insensitive"),
        pytest.param({"service.cilium.io/global": "yes"}, False, False, id="only-true-counts"),
        pytest.param({"io.cilium/global-service": "True"}, True, True, id="global-alias"),
        pytest.param({"service.cilium.io/global": "false", "io.cilium/global-service": "true"}, False, False,
                     id="main-annotation-wins-over-alias"),
        pytest.param({"service.cilium.io/global": "true", "service.cilium.io/shared": "false"}, True, False,
                     id="not-shared"),
        pytest.param({"service.cilium.io/global": "true", "service.cilium.io/shared": "TrUe"}, True, True,
                     id="shared-case-insensitive"),
        pytest.param({"service.cilium.io/global": "true", "io.cilium/shared-service": "false"}, True, False,
                     id="shared-alias"),
        pytest.param({"service.cilium.io/global": "true", "service.cilium.io/shared": "true",
                      "io.cilium/shared-service": "false"}, True, True, id="shared-main-wins"),
        pytest.param({"service.cilium.io/global": "true", "service.cilium.io/shared": ""}, True, False,
                     id="shared-empty-is-false"),
        pytest.param({"service.cilium.io/shared": "true"}, False, False, id="shared-ignored-if-not-global"),
    ],
)
def test_annotation_matrix(annotations: dict[str, str], is_global: bool, is_shared: bool) -> None:
    svc = {"metadata": {"name": "s", "namespace": "n", "annotations": annotations}, "spec": {"clusterIP": "10.0.0.1"}}
    assert (is_global_service(svc), is_shared_service(svc)) == (is_global, is_shared)
    assert (convert_service(svc, [], CLUSTER3) is not None) == is_shared


def _svc(spec: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "s", "namespace": "n", "annotations": {"service.cilium.io/global": "true"}}
    if labels is not None:
        meta["labels"] = labels
    return {"metadata": meta, "spec": {"clusterIP": "10.96.0.1", **(spec or {})}}


def _slice(endpoints: list[dict[str, Any]], ports: list[dict[str, Any]] | None = None, *, name: str = "s-1",
           address_type: str = "IPv4", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "n",
                         "labels": {"kubernetes.io/service-name": "s"} if labels is None else labels},
            "addressType": address_type, "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}] if ports is None else ports}


def _fields(svc: dict[str, Any], slices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value = convert_service(svc, slices or [], CLUSTER3)
    assert value is not None
    decoded: dict[str, Any] = orjson.loads(value)
    return decoded


@pytest.mark.parametrize(
    ("spec", "labels", "frontends"),
    [
        pytest.param({"clusterIP": "None"}, None, {}, id="headless-cluster-ip-none"),
        pytest.param({"clusterIP": "none"}, None, {}, id="headless-case-insensitive"),
        pytest.param({}, {"service.kubernetes.io/headless": ""}, {}, id="headless-label"),
        pytest.param({"clusterIPs": ["10.96.0.1", "fd00::1"], "ports": [{"name": "a", "port": 1, "protocol": "UDP"}]},
                     None, {"10.96.0.1": {"a": {"Protocol": "UDP", "Port": 1}},
                            "fd00::1": {"a": {"Protocol": "UDP", "Port": 1}}}, id="one-frontend-per-cluster-ip"),
        pytest.param({"clusterIPs": [], "ports": [{"port": 53, "protocol": "UDP"}, {"name": "b", "port": 70000}]},
                     None, {"10.96.0.1": {"": {"Protocol": "UDP", "Port": 53}, "b": {"Protocol": "", "Port": 4464}}},
                     id="cluster-ip-fallback-unnamed-port-verbatim-protocol-uint16"),
        pytest.param({"clusterIP": None, "type": "ExternalName"}, None, {"": {}}, id="no-cluster-ip-as-upstream"),
    ],
)
def test_frontends(spec: dict[str, Any], labels: dict[str, str] | None, frontends: dict[str, Any]) -> None:
    assert _fields(_svc(spec, labels))["frontends"] == frontends


def test_headless_detection() -> None:
    assert is_headless_service(_svc({"clusterIP": "NONE"}))
    assert not is_headless_service(_svc())


def test_labels_selector_and_flags() -> None:
    svc = _svc({"selector": {"b": "2", "a": "1"}}, labels={"z": "1", "k": "2"})
    value = convert_service(svc, [], CLUSTER3)
    assert value is not None
    assert value.endswith(b'"labels":{"k":"2","z":"1"},"selector":{"a":"1","b":"2"},"includeExternal":true,'
                          b'"shared":true,"clusterID":3}')
    assert _fields(_svc())["labels"] == {} and _fields(_svc())["selector"] == {}


_HTTP = {"http": {"Protocol": "TCP", "Port": 8080}}


@pytest.mark.parametrize(
    ("slices", "backends"),
    [
        pytest.param([_slice([{"addresses": ["10.0.0.1"]}])], {"10.0.0.1": _HTTP}, id="conditions-absent-is-ready"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"], "conditions": {"ready": False}}])], {"10.0.0.1": _HTTP},
                     id="not-ready-but-serving-absent"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"], "conditions": {"ready": False, "serving": True,
                                                                          "terminating": True}}])],
                     {"10.0.0.1": _HTTP}, id="terminating-but-serving"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"], "conditions": {"ready": True, "serving": False}}])],
                     {"10.0.0.1": _HTTP}, id="ready-not-serving"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"], "conditions": {"ready": False, "serving": False}}])], {},
                     id="neither-ready-nor-serving"),
        pytest.param([_slice([{"addresses": ["fd00::1"]}], address_type="FQDN")], {}, id="fqdn-slice-ignored"),
        pytest.param([_slice([{"addresses": ["FD00:0::1", "::ffff:10.0.0.1", "10.0.0.2@3", "bogus"]}],
                             address_type="IPv6")],
                     {"fd00::1": _HTTP, "::ffff:10.0.0.1": _HTTP, "10.0.0.2": _HTTP}, id="netip-text-invalid-skipped"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"]}],
                             [{"port": 1}, {"name": "u", "port": 2, "protocol": "UDP"},
                              {"name": "s", "port": 3, "protocol": "SCTP"},
                              {"name": "x", "port": 4, "protocol": "ICMP"},
                              {"name": "noport", "protocol": "TCP"}, {"name": "big", "port": 65537}])],
                     {"10.0.0.1": {"": {"Protocol": "TCP", "Port": 1}, "big": {"Protocol": "TCP", "Port": 1},
                                   "s": {"Protocol": "SCTP", "Port": 3}, "u": {"Protocol": "UDP", "Port": 2}}},
                     id="slice-port-defaults-and-filtering"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"]}]),
                      _slice([{"addresses": ["10.0.0.1"]}], [{"name": "h2", "port": 9}], name="s-2")],
                     {"10.0.0.1": {"h2": {"Protocol": "TCP", "Port": 9}}}, id="later-slice-overwrites"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"]}]),
                      _slice([{"addresses": ["10.0.0.1"], "conditions": {"ready": False, "serving": False}}],
                             name="s-2")],
                     {"10.0.0.1": _HTTP}, id="later-unready-slice-does-not-remove"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.1"], "conditions":
                                                              {"ready": False, "serving": False}}])],
                     {}, id="last-endpoint-in-a-slice-decides"),
        pytest.param([_slice([{"addresses": ["10.0.0.1"]}], labels={"kubernetes.io/service-name": "other"}),
                      _slice([{"addresses": ["10.0.0.2"]}], labels={
                          "kubernetes.io/service-name": "s",
                          "endpointslice.kubernetes.io/managed-by": "endpointslice-mesh-controller.cilium.io"}),
                      _slice([{"addresses": ["10.0.0.3"]}], labels={})],
                     {}, id="foreign-mirrored-and-unowned-slices-ignored"),
    ],
)
def test_backends(slices: list[dict[str, Any]], backends: dict[str, Any]) -> None:
    assert _fields(_svc(), slices)["backends"] == backends


@pytest.mark.parametrize(
    ("endpoint", "hostnames", "zones"),
    [
        pytest.param({"addresses": ["10.0.0.1"]}, None, None, id="both-omitted-when-empty"),
        pytest.param({"addresses": ["10.0.0.1"], "hostname": "pod-a"}, {"10.0.0.1": "pod-a"}, None, id="hostname"),
        pytest.param({"addresses": ["10.0.0.1"], "zone": "z1"}, None,
                     {"10.0.0.1": {"zone": "z1", "forZones": []}}, id="zone-without-hints-has-empty-for-zones"),
        pytest.param({"addresses": ["10.0.0.1"], "zone": "z1", "hints": {"forZones": [{"name": "z1"}, {"name": "z2"}]}},
                     None, {"10.0.0.1": {"zone": "z1", "forZones": [{"name": "z1"}, {"name": "z2"}]}}, id="hints"),
        pytest.param({"addresses": ["10.0.0.1"], "deprecatedTopology": {"topology.kubernetes.io/zone": "z0"}}, None,
                     {"10.0.0.1": {"zone": "z0", "forZones": []}}, id="deprecated-topology-zone"),
        pytest.param({"addresses": ["10.0.0.1"], "zone": "",
                      "deprecatedTopology": {"topology.kubernetes.io/zone": "z0"}}, None, None,
                     id="explicit-empty-zone-wins-over-topology"),
        pytest.param({"addresses": ["10.0.0.1"], "zone": "z1", "hostname": "h",
                      "conditions": {"ready": False, "serving": False}}, None, None, id="excluded-endpoint"),
    ],
)
def test_hostnames_and_zones(endpoint: dict[str, Any], hostnames: Any, zones: Any) -> None:
    decoded = _fields(_svc(), [_slice([endpoint])])
    assert (decoded.get("hostnames"), decoded.get("zones")) == (hostnames, zones)


def test_hostnames_field_order() -> None:
    value = convert_service(_svc(), [_slice([{"addresses": ["10.0.0.1"], "hostname": "h", "zone": "z"}])], CLUSTER3)
    assert value is not None
    assert b'"backends":{"10.0.0.1":{"http":{"Protocol":"TCP","Port":8080}}},"hostnames":{"10.0.0.1":"h"},"zones":' \
           b'{"10.0.0.1":{"zone":"z","forZones":[]}},"labels":{}' in value


# ----- selection helpers ----- #

@pytest.mark.parametrize(
    ("labels", "proxy_name", "selected"),
    [
        pytest.param(None, "", True, id="no-label-default-proxy"),
        pytest.param({"service.kubernetes.io/service-proxy-name": "other"}, "", False, id="other-proxy"),
        pytest.param({"service.kubernetes.io/service-proxy-name": ""}, "", False, id="label-present-empty"),
        pytest.param({"service.kubernetes.io/service-proxy-name": "cilium"}, "cilium", True, id="named-match"),
        pytest.param(None, "cilium", False, id="named-no-label"),
        pytest.param({"service.kubernetes.io/service-proxy-name": "x"}, "cilium", False, id="named-mismatch"),
    ],
)
def test_service_selected(labels: dict[str, str] | None, proxy_name: str, selected: bool) -> None:
    obj = {"metadata": {"name": "s", "namespace": "n", **({"labels": labels} if labels is not None else {})}}
    assert service_selected(obj, proxy_name) is selected


@pytest.mark.parametrize(
    ("labels", "owner"),
    [
        pytest.param({"kubernetes.io/service-name": "echo"}, "n/echo", id="owned"),
        pytest.param({}, None, id="no-label"),
        pytest.param({"kubernetes.io/service-name": ""}, None, id="empty-label"),
        pytest.param({"kubernetes.io/service-name": "echo",
                      "endpointslice.kubernetes.io/managed-by": "endpointslice-mesh-controller.cilium.io"},
                     None, id="mirrored-by-cilium"),
        pytest.param({"kubernetes.io/service-name": "echo",
                      "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                     "n/echo", id="managed-by-kubernetes"),
    ],
)
def test_endpoint_slice_service(labels: dict[str, str], owner: str | None) -> None:
    assert endpoint_slice_service({"metadata": {"name": "x", "namespace": "n", "labels": labels}}) == owner


@pytest.mark.parametrize(
    ("annotations", "default", "expected"),
    [
        pytest.param(None, True, True, id="default-true"),
        pytest.param(None, False, False, id="default-false"),
        pytest.param({"clustermesh.cilium.io/global": "true"}, False, True, id="annotated-true"),
        pytest.param({"clustermesh.cilium.io/global": "True"}, False, True, id="case-insensitive"),
        pytest.param({"clustermesh.cilium.io/global": "false"}, True, False, id="annotated-false"),
        pytest.param({"clustermesh.cilium.io/global": ""}, True, False, id="present-not-true"),
        pytest.param({"other": "true"}, False, False, id="other-annotation"),
    ],
)
def test_namespace_is_global(annotations: dict[str, str] | None, default: bool, expected: bool) -> None:
    ns = {"metadata": {"name": "n", **({"annotations": annotations} if annotations is not None else {})}}
    assert namespace_is_global(ns, default) is expected


# ----- malformed input ----- #

@pytest.mark.parametrize(
    ("svc", "slices"),
    [
        pytest.param({"metadata": {"name": "s"}, "spec": {}}, [], id="no-namespace"),
        pytest.param({"metadata": {"namespace": "n", "annotations": {"service.cilium.io/global": "true"}}}, [],
                     id="no-name"),
        pytest.param({"metadata": {"name": "s", "namespace": "n", "annotations": {"service.cilium.io/global": True}}},
                     [], id="annotation-not-string"),
        pytest.param(_svc({"ports": {"port": 80}}), [], id="ports-not-array"),
        pytest.param(_svc({"ports": [{"port": "80"}]}), [], id="port-not-int"),
        pytest.param(_svc({"ports": [{"port": 1 << 31}]}), [], id="port-over-int32"),
        pytest.param(_svc({"clusterIPs": "10.0.0.1"}), [], id="cluster-ips-not-array"),
        pytest.param(_svc({"selector": ["a"]}), [], id="selector-not-object"),
        pytest.param(_svc(), [_slice([{"addresses": "10.0.0.1"}])], id="addresses-not-array"),
        pytest.param(_svc(), [_slice([{"addresses": ["10.0.0.1"], "conditions": {"ready": "true"}}])],
                     id="condition-not-bool"),
        pytest.param(_svc(), [_slice([{"addresses": ["10.0.0.1"]}], [{"port": 80, "protocol": 6}])],
                     id="protocol-not-string"),
        pytest.param(_svc(), [_slice([{"addresses": ["10.0.0.1"], "hints": {"forZones": "z"}}])],
                     id="hints-not-array"),
    ],
)
def test_malformed(svc: dict[str, Any], slices: list[dict[str, Any]]) -> None:
    with pytest.raises(ConversionError):
        convert_service(svc, slices, CLUSTER3)


def test_a_malformed_slice_is_skipped_alone_when_asked() -> None:
    good = _slice([{"addresses": ["10.0.0.1"]}], name="s-1")
    bad = _slice([{"addresses": ["10.0.0.2"]}, {"addresses": "10.0.0.3"}], name="s-2")
    later = _slice([{"addresses": ["10.0.0.4"]}], name="s-3")
    skipped: list[tuple[Any, str]] = []
    value = convert_service(_svc(), [good, bad, later], CLUSTER3, skipped)
    # The bad slice contributes nothing (not even its valid first address); the others count.
    assert value == convert_service(_svc(), [good, later], CLUSTER3)
    assert [(s["metadata"]["name"], reason) for s, reason in skipped] == [
        ("s-2", "endpoints[1].addresses: expected an array, got str")]
    with pytest.raises(ConversionError):
        convert_service(_svc(), [good, bad, later], CLUSTER3)
