"""Service + ServiceExport -> cilium/state/serviceexports/v1/<cluster>/<ns>/<name>."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from _convert_golden import k8s_object, listing

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert import ConversionError, convert_service_export, service_key

CLUSTER1 = ClusterInfo("cluster1", 1)
PREFIX = "cilium/state/serviceexports/v1"
GOLDEN = "serviceexports.txtar"

# Spec section 1.7 example, verbatim.
SPEC_EXAMPLE = (
    b'{"cluster":"cluster1","name":"basic","namespace":"default","annotations":{"my-annotation":"foo"},'
    b'"labels":{"my-label":"test"},"exportCreationTimestamp":"2026-01-01T00:00:00Z","ports":[{"name":"my-port-1",'
    b'"protocol":"TCP","port":80}],"type":"ClusterSetIP","sessionAffinity":"ClientIP","sessionAffinityConfig":'
    b'{"clientIP":{"timeoutSeconds":42}}}'
)


def _export_all(pairs: list[tuple[str, str]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for svc_file, export_file in pairs:
        svc, export = k8s_object(GOLDEN, svc_file), k8s_object(GOLDEN, export_file)
        value = convert_service_export(svc, export, CLUSTER1)
        if value is not None:
            out[service_key(CLUSTER1, svc)] = value
    return out


_ALL = [("service-basic.yaml", "serviceexport-basic.yaml"), ("service-headless.yaml", "serviceexport-headless.yaml"),
        ("service-externalname.yaml", "serviceexport-externalname.yaml")]


def test_golden_step_1() -> None:
    assert _export_all(_ALL) == listing(GOLDEN, "serviceexports-1.expected", prefix=PREFIX)


def test_golden_step_2_annotation_update() -> None:
    export = copy.deepcopy(k8s_object(GOLDEN, "serviceexport-basic.yaml"))
    export["spec"]["exportedAnnotations"]["my-annotation"] = "bar"  # the golden's `replace 'foo' 'bar'`
    value = convert_service_export(k8s_object(GOLDEN, "service-basic.yaml"), export, CLUSTER1)
    expected = listing(GOLDEN, "serviceexports-1.expected", prefix=PREFIX)["cluster1/default/basic"]
    assert value == expected.replace(b'"foo"', b'"bar"')


def test_spec_example() -> None:
    value = convert_service_export(k8s_object(GOLDEN, "service-basic.yaml"),
                                   k8s_object(GOLDEN, "serviceexport-basic.yaml"), CLUSTER1)
    assert value == SPEC_EXAMPLE


def _pair(spec: dict[str, Any], export_meta: dict[str, Any] | None = None,
          export_spec: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    svc = {"metadata": {"name": "s", "namespace": "n"}, "spec": spec}
    export: dict[str, Any] = {"metadata": {"name": "s", "namespace": "n",
                                           "creationTimestamp": "2026-01-01T00:00:00Z", **(export_meta or {})}}
    if export_spec is not None:
        export["spec"] = export_spec
    return svc, export


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        pytest.param(_pair({}), b'{"cluster":"cluster1","name":"s","namespace":"n","exportCreationTimestamp":'
                                b'"2026-01-01T00:00:00Z","ports":[],"type":"ClusterSetIP","sessionAffinity":""}',
                     id="minimal-ports-always-an-array"),
        pytest.param(_pair({"ports": [{"port": 53}, {"name": "h", "protocol": "TCP", "appProtocol": "", "port": 80,
                                                     "targetPort": 8080, "nodePort": 30000}]}),
                     b'"ports":[{"port":53},{"name":"h","protocol":"TCP","appProtocol":"","port":80}]',
                     id="ports-omitempty-but-set-app-protocol-kept"),
        pytest.param(_pair({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}),
                     b'"sessionAffinity":"None","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":0}}}',
                     id="affinity-config-present-when-set"),
        pytest.param(_pair({"sessionAffinityConfig": {"clientIP": {}}}), b'"sessionAffinity":""}',
                     id="affinity-config-without-timeout-omitted"),
        pytest.param(_pair({"ipFamilies": ["IPv4", "IPv6"], "internalTrafficPolicy": "Local",
                            "trafficDistribution": "PreferClose"}),
                     b'"sessionAffinity":"","ipFamilies":["IPv4","IPv6"],"internalTrafficPolicy":"Local",'
                     b'"trafficDistribution":"PreferClose"}', id="optional-tail-fields-in-order"),
        pytest.param(_pair({"ipFamilies": []}), b'"sessionAffinity":""}', id="empty-ip-families-omitted"),
        pytest.param(_pair({"clusterIP": "None"}), b'"type":"Headless"', id="headless"),
        pytest.param(_pair({"clusterIP": "none"}), b'"type":"ClusterSetIP"', id="headless-is-case-sensitive"),
        pytest.param(_pair({}, {"creationTimestamp": None}), b'"exportCreationTimestamp":null', id="no-timestamp"),
        pytest.param(_pair({}, {"creationTimestamp": "2026-01-01T02:30:00.123456+02:30"}),
                     b'"exportCreationTimestamp":"2026-01-01T00:00:00Z"', id="timestamp-to-utc-seconds"),
        pytest.param(_pair({}, {"creationTimestamp": "2025-12-31T23:59:59-01:00"}),
                     b'"exportCreationTimestamp":"2026-01-01T00:59:59Z"', id="negative-offset"),
        pytest.param(_pair({}, export_spec={"exportedAnnotations": {}, "exportedLabels": {"b": "1", "a": "<"}}),
                     b'"namespace":"n","labels":{"a":"\\u003c","b":"1"},"exportCreationTimestamp"',
                     id="empty-maps-omitted-labels-sorted"),
    ],
)
def test_fields(pair: tuple[dict[str, Any], dict[str, Any]], expected: bytes) -> None:
    value = convert_service_export(*pair, CLUSTER1)
    assert value is not None
    assert expected in value
    orjson.loads(value)


def test_external_name_is_not_exported() -> None:
    assert convert_service_export(*_pair({"type": "ExternalName"}), CLUSTER1) is None


@pytest.mark.parametrize(
    "pair",
    [
        pytest.param(_pair({}, {"name": "other"}), id="export-of-another-service"),
        pytest.param(_pair({}, {"creationTimestamp": ""}), id="empty-timestamp"),
        pytest.param(_pair({}, {"creationTimestamp": "2026-01-01 00:00:00Z"}), id="timestamp-space"),
        pytest.param(_pair({}, {"creationTimestamp": "2026-01-01t00:00:00z"}), id="timestamp-lower-case"),
        pytest.param(_pair({}, {"creationTimestamp": "2026-02-30T00:00:00Z"}), id="timestamp-bad-date"),
        pytest.param(_pair({}, {"creationTimestamp": "2026-01-01T00:00:00+24:00"}), id="timestamp-bad-offset"),
        pytest.param(_pair({}, {"creationTimestamp": 1767225600}), id="timestamp-number"),
        pytest.param(_pair({"ports": [{"port": "80"}]}), id="port-not-int"),
        pytest.param(_pair({"ports": [{"port": 80, "appProtocol": 1}]}), id="app-protocol-not-string"),
        pytest.param(_pair({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 1 << 31}}}), id="timeout-int32"),
        pytest.param(_pair({"ipFamilies": "IPv4"}), id="ip-families-not-array"),
        pytest.param(_pair({}, export_spec={"exportedLabels": {"a": 1}}), id="label-not-string"),
        pytest.param(({"metadata": {"name": "s"}, "spec": {}}, {"metadata": {"name": "s"}}), id="no-namespace"),
    ],
)
def test_malformed(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    with pytest.raises(ConversionError):
        convert_service_export(*pair, CLUSTER1)
