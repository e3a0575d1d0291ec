"""Label and field selector parsing and matching, as kube-apiserver does it."""

from __future__ import annotations

import pytest

from localmesh.kubesim._selectors import parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "version": "3", "k8s.io/zone": "a"}


@pytest.mark.parametrize(("selector", "expected"), [
    pytest.param("", True, id="empty"),
    pytest.param("app=web", True, id="eq"),
    pytest.param("app==web", True, id="double-eq"),
    pytest.param("app=db", False, id="eq-miss"),
    pytest.param("app!=db", True, id="neq"),
    pytest.param("missing!=x", True, id="neq-absent-key-matches"),
    pytest.param("app in (web,db)", True, id="in"),
    pytest.param("app in (db, cache)", False, id="in-miss"),
    pytest.param("app notin (db)", True, id="notin"),
    pytest.param("missing notin (db)", True, id="notin-absent-key-matches"),
    pytest.param("tier", True, id="exists"),
    pytest.param("missing", False, id="exists-miss"),
    pytest.param("!missing", True, id="not-exists"),
    pytest.param("!app", False, id="not-exists-miss"),
    pytest.param("app=web,tier=front", True, id="and"),
    pytest.param("app=web,tier=back", False, id="and-miss"),
    pytest.param("app in (web),!missing,version>2", True, id="mixed"),
    pytest.param("version<3", False, id="lt"),
    pytest.param("k8s.io/zone=a", True, id="prefixed-key"),
    pytest.param(" app = web ", True, id="spaces"),
])
def test_label_selector_matches(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is expected


def test_label_selector_on_object_without_labels() -> None:
    assert parse_label_selector("!app").matches(None)
    assert not parse_label_selector("app").matches(None)


@pytest.mark.parametrize("selector", [
    pytest.param("app=web,", id="trailing-comma"),
    pytest.param("app in web", id="in-without-parens"),
    pytest.param("Bad Key=x", id="space-in-key"),
    pytest.param("app=a b", id="space-in-value"),
    pytest.param("!app=web", id="negated-equality"),
    pytest.param("version>x", id="gt-not-integer"),
])
def test_label_selector_rejects(selector: str) -> None:
    with pytest.raises(ValueError):
        parse_label_selector(selector)


@pytest.mark.parametrize(("selector", "ns", "name", "expected"), [
    pytest.param("metadata.name=a", "", "a", True, id="name"),
    pytest.param("metadata.name==a", "", "b", False, id="name-miss"),
    pytest.param("metadata.namespace!=kube-system", "default", "a", True, id="ns-neq"),
    pytest.param("metadata.namespace=default,metadata.name!=a", "default", "a", False, id="and"),
])
def test_field_selector(selector: str, ns: str, name: str, expected: bool) -> None:
    assert parse_field_selector(selector).matches(ns, name) is expected


def test_field_selector_rejects_unknown_field() -> None:
    with pytest.raises(ValueError, match=r"field label not supported: spec\.nodeName"):
        parse_field_selector("spec.nodeName=x")


POD = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"nodeName": "n1", "hostNetwork": True},
       "status": {"phase": "Running"}}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("spec.nodeName=n1", True, id="node"),
        pytest.param("spec.nodeName=n2", False, id="other-node"),
        pytest.param("spec.nodeName!=n2,status.phase=Running", True, id="two-terms"),
        pytest.param("status.podIP=", True, id="missing-is-empty"),
        pytest.param("spec.hostNetwork=true", True, id="bool-lower-case"),
        pytest.param("metadata.name=p,spec.nodeName=n1", True, id="with-metadata"),
    ],
)
def test_kind_field_selector(selector: str, expected: bool) -> None:
    parsed = parse_field_selector(selector, ("", "Pod"))
    assert parsed.on_object
    assert (parsed.matches("n", "p") and parsed.matches_object(POD)) is expected


def test_kind_fields_are_per_kind() -> None:
    assert parse_field_selector("involvedObject.name=x,source=kubelet", ("", "Event")).on_object
    with pytest.raises(ValueError, match=r"field label not supported: involvedObject\.name"):
        parse_field_selector("involvedObject.name=x", ("", "Pod"))
    assert not parse_field_selector("metadata.name=x", ("", "Pod")).on_object
