"""Merge patch, JSON patch and the schema-free strategic merge patch."""

from __future__ import annotations

from typing import Any

import pytest

from localmesh.kubesim._patch import PatchError, PatchTestFailed, json_patch, merge_patch, strategic_merge_patch


@pytest.mark.parametrize(("target", "patch", "expected"), [
    pytest.param({"a": 1}, {"a": None}, {}, id="null-deletes"),
    pytest.param({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}, {"a": {"b": 3, "c": 2}}, id="recursive"),
    pytest.param({"a": [1, 2]}, {"a": [3]}, {"a": [3]}, id="lists-replace"),
    pytest.param({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}, id="new-map"),
])
def test_merge_patch(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_json_patch_operations_and_input_untouched() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "replace", "path": "/c", "value": "y"},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e~1f"},
        {"op": "remove", "path": "/a/b/0"},
        {"op": "test", "path": "/a/b", "value": [2, 3]},
    ]
    assert json_patch(doc, ops) == {"a": {"b": [2, 3]}, "c": "y", "e/f": "y"}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}


@pytest.mark.parametrize(("ops", "error"), [
    pytest.param([{"op": "remove", "path": "/missing"}], PatchError, id="remove-missing"),
    pytest.param([{"op": "replace", "path": "/x/9", "value": 1}], PatchError, id="index-out-of-range"),
    pytest.param([{"op": "test", "path": "/x", "value": [9]}], PatchTestFailed, id="test-fails"),
    pytest.param({"op": "add"}, PatchError, id="not-a-list"),
    pytest.param([{"op": "frobnicate", "path": "/x"}], PatchError, id="unknown-op"),
])
def test_json_patch_errors(ops: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        json_patch({"x": [1]}, ops)


SERVICE = {"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                              {"name": "https", "port": 443, "protocol": "TCP"}],
                    "clusterIP": "10.0.0.1"},
           "metadata": {"finalizers": ["a", "b"]}}


@pytest.mark.parametrize(("patch", "expected_spec_or_meta"), [
    pytest.param(  # kubectl apply changing one port: merge by key, delete the old element, reorder
        {"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 8443}],
                  "ports": [{"name": "https", "port": 8443}, {"$patch": "delete", "port": 443}]}},
        {"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 8443}],
                  "clusterIP": "10.0.0.1"}},
        id="merge-list-by-key"),
    pytest.param(
        {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                  "ports": [{"port": 80, "name": "web"}]}},
        {"spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP"},
                            {"name": "web", "port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"}},
        id="update-element-and-reorder"),
    pytest.param(
        {"metadata": {"$setElementOrder/finalizers": ["a", "c"], "finalizers": ["c"],
                      "$deleteFromPrimitiveList/finalizers": ["b"]}},
        {"metadata": {"finalizers": ["a", "c"]}},
        id="primitive-set"),
    pytest.param({"spec": {"ports": [{"port": 1}]}}, {"spec": {"ports": [{"port": 1}], "clusterIP": "10.0.0.1"}},
                 id="no-hint-replaces"),
    pytest.param({"spec": {"$patch": "replace", "type": "X"}}, {"spec": {"type": "X"}}, id="replace-map"),
    pytest.param({"spec": {"clusterIP": None}}, {"spec": {"ports": SERVICE["spec"]["ports"]}}, id="null"),
])
def test_strategic_merge_patch(patch: Any, expected_spec_or_meta: dict[str, Any]) -> None:
    result = strategic_merge_patch(SERVICE, patch)
    for key, value in expected_spec_or_meta.items():
        assert result[key] == value
    assert "$setElementOrder/ports" not in str(result)
