"""CiliumIdentity -> cilium/state/identities/v1/id/<id>."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _convert_golden import k8s_object, listing

from apiserver.convert import ConversionError, convert_cilium_identity, identity_namespace

PREFIX = "cilium/state/identities/v1/id"
GOLDEN = "ciliumidentities.txtar"


def _converted(*objs: dict[str, Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for obj in objs:
        converted = convert_cilium_identity(obj)
        assert converted is not None
        out[converted[0]] = converted[1]
    return out


def _identity_1_v2() -> dict[str, Any]:
    obj = copy.deepcopy(k8s_object(GOLDEN, "identity-1.yaml"))
    obj["security-labels"]["k8s:app"] = "fred"  # the golden's `replace 'baz' 'fred'`
    return obj


def _identity_3() -> dict[str, Any]:
    obj = copy.deepcopy(k8s_object(GOLDEN, "identity-1.yaml"))
    obj["metadata"]["name"] = "214794"  # the golden's `replace '196915' '214794'`
    return obj


@pytest.mark.parametrize(
    ("objs", "expected"),
    [
        pytest.param([k8s_object(GOLDEN, "identity-1.yaml"), k8s_object(GOLDEN, "identity-2.yaml")],
                     "identities-1+2.expected", id="golden-1+2"),
        pytest.param([_identity_1_v2(), k8s_object(GOLDEN, "identity-2.yaml")],
                     "identities-1+2-v2.expected", id="golden-1+2-v2"),
        pytest.param([_identity_1_v2(), k8s_object(GOLDEN, "identity-2.yaml"), _identity_3()],
                     "identities-1+2+3.expected", id="golden-1+2+3"),
        pytest.param([_identity_1_v2(), _identity_3()], "identities-1+3.expected", id="golden-1+3"),
    ],
)
def test_golden(objs: list[dict[str, Any]], expected: str) -> None:
    assert _converted(*objs) == listing(GOLDEN, expected, prefix=PREFIX, json_values=False)


def test_spec_example() -> None:
    obj = {"metadata": {"name": "199472"}, "security-labels": {
        "k8s:app": "baz", "k8s:io.cilium.k8s.policy.cluster": "cluster3", "k8s:io.kubernetes.pod.namespace": "bar"}}
    assert convert_cilium_identity(obj) == (
        "199472", b"k8s:app=baz;k8s:io.cilium.k8s.policy.cluster=cluster3;k8s:io.kubernetes.pod.namespace=bar;")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"k8s:b": "1", "container:a": "2"}, "container:a=2;k8s:b=1;", id="sorted-by-key-not-source"),
        pytest.param({"app": "x"}, "unspec:app=x;", id="no-colon-is-unspec"),
        pytest.param({"$host": ""}, "reserved:host=;", id="dollar-is-reserved"),
        pytest.param({"reserved.world": ""}, "reserved:world=;", id="reserved-dot-prefix"),
        pytest.param({"reserved:": "health"}, "reserved:health=;", id="reserved-empty-key-takes-value"),
        pytest.param({"$": "kube-apiserver"}, "reserved:kube-apiserver=;", id="bare-dollar-takes-value"),
        pytest.param({"k8s:a:b": "v"}, "k8s:a:b=v;", id="split-at-first-colon"),
        pytest.param({"k8s:a": "x=y;z"}, "k8s:a=x=y;z;", id="value-verbatim"),
        pytest.param({"": "v"}, "unspec:=v;", id="empty-key"),
        pytest.param({"k8s:é": "ü", "k8s:z": "1"}, "k8s:z=1;k8s:é=ü;", id="utf8-byte-order"),
        pytest.param({"k8s:app": "a", "container:app": "b"}, "k8s:app=a;", id="same-key-two-sources-one-kept"),
        pytest.param({"k8s:app": None}, "k8s:app=;", id="null-value-is-empty"),
    ],
)
def test_label_list(labels: dict[str, Any], expected: str) -> None:
    assert convert_cilium_identity({"metadata": {"name": "5"}, "security-labels": labels}) == (
        "5", expected.encode())


@pytest.mark.parametrize("labels", [None, {}], ids=["missing", "empty"])
def test_identity_without_labels_is_ignored(labels: dict[str, str] | None) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "5"}}
    if labels is not None:
        obj["security-labels"] = labels
    assert convert_cilium_identity(obj) is None
    assert identity_namespace(obj) is None


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"k8s:io.kubernetes.pod.namespace": "bar"}, "bar", id="present"),
        pytest.param({"k8s:app": "x"}, None, id="missing"),
        pytest.param({"k8s:io.kubernetes.pod.namespace": ""}, None, id="empty"),
        pytest.param({"io.kubernetes.pod.namespace": "bar"}, None, id="needs-k8s-source"),
    ],
)
def test_identity_namespace(labels: dict[str, str], expected: str | None) -> None:
    assert identity_namespace({"metadata": {"name": "5"}, "security-labels": labels}) == expected


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param("identity", id="not-an-object"),
        pytest.param({"security-labels": {"k8s:a": "b"}}, id="no-metadata"),
        pytest.param({"metadata": {}, "security-labels": {"k8s:a": "b"}}, id="no-name"),
        pytest.param({"metadata": {"name": "1"}, "security-labels": ["k8s:a=b"]}, id="labels-not-object"),
        pytest.param({"metadata": {"name": "1"}, "security-labels": {"k8s:a": 1}}, id="label-not-string"),
    ],
)
def test_malformed(obj: Any) -> None:
    with pytest.raises(ConversionError):
        convert_cilium_identity(obj)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param("identity", id="not-an-object"),
        pytest.param({"metadata": {"name": "1"}, "security-labels": ["k8s:a=b"]}, id="labels-not-object"),
        pytest.param({"metadata": {"name": "1"}, "security-labels": {"k8s:a": 1}}, id="label-not-string"),
    ],
)
def test_namespace_of_malformed(obj: Any) -> None:
    with pytest.raises(ConversionError):
        identity_namespace(obj)
