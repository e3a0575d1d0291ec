"""The store and verb semantics without HTTP: snapshots across pages, history window, watch filtering."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localmesh.kubesim import KubeError, Registry
from localmesh.kubesim._api import Api
from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._selectors import parse_label_selector
from localmesh.kubesim._store import Store
from localmesh.kubesim._watch import Watcher

Obj = dict[str, Any]


@pytest.fixture
def api() -> Api:
    return Api(Store(history=50), Registry())


def _cilium_nodes(api: Api) -> ResourceType:
    rt = api.registry.by_kind("cilium.io/v2", "CiliumNode")
    assert rt is not None
    return rt


def _node(name: str, **labels: str) -> Obj:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": name, "labels": labels}}


def _names(items: list[Any]) -> list[str]:
    return [orjson.loads(s.raw)["metadata"]["name"] for s in items]


def _events(w: Watcher) -> list[tuple[str, str, str]]:
    out = []
    for line in w.take().splitlines():
        ev = orjson.loads(line)
        meta = ev["object"]["metadata"]
        out.append((ev["type"], meta.get("name", ""), meta["resourceVersion"]))
    return out


def test_paged_list_serves_the_first_pages_snapshot(api: Api) -> None:
    rt = _cilium_nodes(api)
    for i in range(10):
        api.put(rt, _node(f"n{i}"))
    first = api.list(rt, limit=4)
    assert _names(first.items) == ["n0", "n1", "n2", "n3"]
    assert first.continue_token and first.remaining == 6
    # Changes after the snapshot: a delete ahead of the cursor, an insert, a modification.
    api.delete(rt, None, "n5")
    api.put(rt, _node("n45"))
    api.put(rt, _node("n6", changed="yes"))
    second = api.list(rt, limit=4, continue_token=first.continue_token)
    third = api.list(rt, limit=4, continue_token=second.continue_token)
    assert _names(second.items) == ["n4", "n5", "n6", "n7"]
    assert _names(third.items) == ["n8", "n9"] and third.continue_token is None
    n6 = orjson.loads(second.items[2].raw)
    assert n6["metadata"].get("labels") == {}, "page must show n6 as of the snapshot"
    assert second.resource_version == third.resource_version == first.resource_version
    # A fresh list sees the new state.
    assert _names(api.list(rt).items) == ["n0", "n1", "n2", "n3", "n4", "n45", "n6", "n7", "n8", "n9"]


def test_continue_token_expires_when_history_is_gone(api: Api) -> None:
    rt = _cilium_nodes(api)
    for i in range(3):
        api.put(rt, _node(f"n{i}"))
    first = api.list(rt, limit=1)
    api.put(rt, _node("n9"))
    api.store.compact()
    with pytest.raises(KubeError) as info:
        api.list(rt, limit=1, continue_token=first.continue_token)
    assert info.value.code == 410 and info.value.reason == "Expired"


def test_exact_list_at_an_old_version(api: Api) -> None:
    rt = _cilium_nodes(api)
    api.put(rt, _node("a"))
    rv = api.store.resource_version
    api.put(rt, _node("b"))
    api.delete(rt, None, "a")
    old = api.list(rt, rv=str(rv), match="Exact")
    assert _names(old.items) == ["a"] and old.resource_version == rv
    with pytest.raises(KubeError) as info:
        api.list(rt, rv=str(api.store.resource_version + 5), match="NotOlderThan")
    assert info.value.code == 504


def test_history_window_is_per_resource_type() -> None:
    api = Api(Store(history=3), Registry())
    nodes = api.registry.by_kind("cilium.io/v2", "CiliumNode")
    ids = api.registry.by_kind("cilium.io/v2", "CiliumIdentity")
    assert nodes is not None and ids is not None
    api.put(nodes, _node("n0"))
    start = api.store.resource_version
    for i in range(10):  # busy other type: must not push CiliumNode history out
        api.put(ids, {"apiVersion": "cilium.io/v2", "kind": "CiliumIdentity", "metadata": {"name": str(i)}})
    api.watch(nodes, Watcher(), str(start))
    for i in range(4):
        api.put(nodes, _node(f"x{i}"))
    with pytest.raises(KubeError) as info:
        api.watch(nodes, Watcher(), str(start))
    assert info.value.code == 410
    assert info.value.message.startswith(f"too old resource version: {start} (")


def test_watch_replays_then_streams_and_selectors_translate_transitions(api: Api) -> None:
    rt = _cilium_nodes(api)
    api.put(rt, _node("a", role="x"))
    since = api.store.resource_version
    api.put(rt, _node("b", role="x"))
    all_events, selected = Watcher(), Watcher(labels=parse_label_selector("role=x"))
    api.watch(rt, all_events, str(since))
    api.watch(rt, selected, None)  # current state as ADDED
    api.put(rt, _node("a", role="y"))  # leaves the selection -> DELETED for the selector watch
    api.put(rt, _node("c", role="y"))  # never selected -> nothing
    api.put(rt, _node("c", role="x"))  # enters -> ADDED
    api.delete(rt, None, "c")
    rv = api.store.resource_version
    assert [e[:2] for e in _events(all_events)] == [
        ("ADDED", "b"), ("MODIFIED", "a"), ("ADDED", "c"), ("MODIFIED", "c"), ("DELETED", "c")]
    assert _events(selected) == [
        ("ADDED", "a", str(since)), ("ADDED", "b", str(since + 1)), ("DELETED", "a", str(since + 2)),
        ("ADDED", "c", str(rv - 1)), ("DELETED", "c", str(rv))]


def test_no_op_update_keeps_version_and_emits_nothing(api: Api) -> None:
    rt = _cilium_nodes(api)
    first = api.put(rt, {**_node("a"), "spec": {"x": 1}})
    w = Watcher()
    api.watch(rt, w, str(first.rv))
    again = api.put(rt, {**_node("a"), "spec": {"x": 1}})
    assert again.rv == first.rv and not w.pending
    changed = orjson.loads(api.put(rt, {**_node("a"), "spec": {"x": 2}}).raw)
    assert changed["metadata"]["generation"] == 2
    relabeled = orjson.loads(api.put(rt, {**_node("a", k="v"), "spec": {"x": 2}}).raw)
    assert relabeled["metadata"]["generation"] == 2, "metadata changes do not bump the generation"


def test_finalizers_hold_deletion_until_removed(api: Api) -> None:
    rt = api.registry.by_kind("v1", "ConfigMap")
    assert rt is not None
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "namespace": "default", "finalizers": ["x/y"]}}
    api.create(rt, "default", cm, require_namespace=False)
    deletion = api.delete(rt, "default", "c")
    assert not deletion.finished
    marked = orjson.loads(deletion.obj.raw)
    assert marked["metadata"]["deletionTimestamp"]
    marked["metadata"]["finalizers"] = []
    api.update(rt, "default", "c", marked)
    assert api.store.get(rt, ("default", "c")) is None


def test_namespace_deletion_removes_its_contents(api: Api) -> None:
    ns = api.registry.by_kind("v1", "Namespace")
    cm = api.registry.by_kind("v1", "ConfigMap")
    assert ns is not None and cm is not None
    api.put(ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    with pytest.raises(KubeError) as info:
        api.create(cm, "nowhere", {"metadata": {"name": "c"}})
    assert info.value.code == 404 and info.value.message == 'namespaces "nowhere" not found'
    api.create(cm, "team", {"metadata": {"name": "c"}})
    api.delete(ns, None, "team")
    assert api.store.get(cm, ("team", "c")) is None


_OPS = st.lists(st.tuples(st.sampled_from(("put", "delete")), st.integers(0, 29), st.sampled_from("ab")),
                max_size=8)


@settings(max_examples=150, deadline=None)
@given(initial=st.sets(st.integers(0, 29)), page_size=st.integers(1, 7),
       label_filter=st.sampled_from((None, "v=a", "v!=a")), churn=st.lists(_OPS, min_size=1, max_size=12))
def test_pages_always_equal_the_first_pages_snapshot(initial: set[int], page_size: int, label_filter: str | None,
                                                     churn: list[list[tuple[str, int, str]]]) -> None:
    api = Api(Store(history=1000), Registry())
    rt = _cilium_nodes(api)
    for i in initial:
        api.put(rt, _node(f"n{i:02}", v="a" if i % 2 else "b"))
    labels = parse_label_selector(label_filter)
    expected = [s.raw for s in api.list(rt, labels=labels).items]
    page = api.list(rt, limit=page_size, labels=labels)
    got = [s.raw for s in page.items]
    for ops in churn:
        if page.continue_token is None:
            break
        for op, i, value in ops:
            if op == "put":
                api.put(rt, _node(f"n{i:02}", v=value))
            elif api.store.get(rt, ("", f"n{i:02}")) is not None:
                api.delete(rt, None, f"n{i:02}")
        page = api.list(rt, limit=page_size, labels=labels, continue_token=page.continue_token)
        got += [s.raw for s in page.items]
    while page.continue_token is not None:
        page = api.list(rt, limit=page_size, labels=labels, continue_token=page.continue_token)
        got += [s.raw for s in page.items]
    assert got == expected
