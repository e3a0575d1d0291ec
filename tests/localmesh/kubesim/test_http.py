"""Wire-level behaviour over raw HTTP: discovery, parameters, Status codes, watch framing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from localmesh.kubesim import KubeSim

Obj = dict[str, Any]
NODES = "/apis/cilium.io/v2/ciliumnodes"


@pytest.fixture
async def http(kubesim: KubeSim) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=kubesim.url) as session:
        yield session


def _node(name: str, **labels: str) -> Obj:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": name, "labels": labels}}


async def _get(http: aiohttp.ClientSession, path: str, **params: str) -> tuple[int, Any]:
    async with http.get(path, params=params) as resp:
        return resp.status, orjson.loads(await resp.read())


async def _watch_lines(http: aiohttp.ClientSession, path: str, count: int, **params: str) -> list[Obj]:
    out: list[Obj] = []
    async with http.get(path, params=params) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        while len(out) < count:
            line = await asyncio.wait_for(resp.content.readline(), 5)
            if not line:
                break
            out.append(orjson.loads(line))
    return out


async def test_discovery(http: aiohttp.ClientSession) -> None:
    status, version = await _get(http, "/version")
    assert status == 200 and version["major"] == "1"
    _, api = await _get(http, "/api")
    assert api["versions"] == ["v1"]
    _, groups = await _get(http, "/apis")
    names = {g["name"]: g["preferredVersion"]["version"] for g in groups["groups"]}
    assert names["cilium.io"] == "v2" and names["discovery.k8s.io"] == "v1"
    assert {v["version"] for g in groups["groups"] if g["name"] == "cilium.io" for v in g["versions"]} == {
        "v2", "v2alpha1"}
    _, cilium = await _get(http, "/apis/cilium.io/v2")
    cn = next(r for r in cilium["resources"] if r["name"] == "ciliumnodes")
    assert cn["kind"] == "CiliumNode" and cn["namespaced"] is False and "cn" in cn["shortNames"]
    assert "watch" in cn["verbs"]
    _, core = await _get(http, "/api/v1")
    assert {r["name"] for r in core["resources"]} >= {"namespaces", "services", "endpoints", "secrets",
                                                      "configmaps", "nodes", "pods"}
    status, _ = await _get(http, "/apis/nope.io/v1")
    assert status == 404
    status, openapi = await _get(http, "/openapi/v3")
    assert status == 200 and "apis/cilium.io/v2" in openapi["paths"]


@pytest.mark.parametrize(("value", "is_watch"), [
    pytest.param("1", True, id="1"), pytest.param("true", True, id="true"),
    pytest.param("True", True, id="True"), pytest.param("false", False, id="false"),
])
async def test_watch_flag_is_go_parsebool(kubesim: KubeSim, http: aiohttp.ClientSession, value: str,
                                          is_watch: bool) -> None:
    kubesim.apply(_node("a"))
    if is_watch:
        events = await _watch_lines(http, NODES, 1, watch=value, timeoutSeconds="1")
        assert events[0]["type"] == "ADDED"
    else:
        status, body = await _get(http, NODES, watch=value)
        assert status == 200 and body["kind"] == "CiliumNodeList"


async def test_bad_parameters_are_400(http: aiohttp.ClientSession) -> None:
    for params in ({"watch": "yes"}, {"limit": "x"}, {"labelSelector": "a in b"},
                   {"fieldSelector": "spec.x=1"}, {"continue": "garbage"},
                   {"resourceVersionMatch": "Exact"}):
        status, body = await _get(http, NODES, **params)
        assert (status, body["reason"]) == (400, "BadRequest"), params


async def test_status_codes(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    async with http.post(NODES, data=b"{not json") as resp:
        assert resp.status == 400
    async with http.post(NODES, json={"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                                      "metadata": {"name": "Bad_Name"}}) as resp:
        body = await resp.json()
        assert resp.status == 422 and body["reason"] == "Invalid"
        assert body["details"]["causes"][0]["field"] == "metadata.name"
    async with http.post(NODES, json={"kind": "Service", "metadata": {"name": "x"}}) as resp:
        assert resp.status == 400
    async with http.put(NODES, json=_node("x")) as resp:
        assert resp.status == 405
    async with http.put(f"{NODES}/x", json=_node("x")) as resp:
        assert resp.status == 404
    kubesim.apply(_node("x"))
    async with http.put(f"{NODES}/x", json=_node("x")) as resp:  # custom resources need a resourceVersion
        assert resp.status == 422
    async with http.patch(f"{NODES}/x", data=b"{}", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415
    async with http.post("/api/v1/namespaces/other/services",
                         json={"metadata": {"name": "s", "namespace": "default"}}) as resp:
        assert resp.status == 400
    status, body = await _get(http, "/apis/cilium.io/v2/namespaces/default/ciliumnodes")
    assert status == 404, "cluster-scoped resources have no namespaced path"


async def test_create_variants(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    async with http.post(NODES, json={"metadata": {"generateName": "gen-"}}) as resp:
        created = await resp.json()
        assert resp.status == 201 and created["metadata"]["name"].startswith("gen-")
        assert created["kind"] == "CiliumNode", "apiVersion/kind default from the URL"
    async with http.post(NODES, params={"dryRun": "All"}, json=_node("dry")) as resp:
        assert resp.status == 201
    assert kubesim.get("cilium.io/v2", "CiliumNode", "dry") is None
    async with http.patch(f"{NODES}/ssa", params={"fieldManager": "me"},
                          data=b"apiVersion: cilium.io/v2\nkind: CiliumNode\nmetadata: {name: ssa}\n",
                          headers={"Content-Type": "application/apply-patch+yaml"}) as resp:
        assert resp.status == 201
    async with http.patch(f"{NODES}/ssa", data=b"{}",
                          headers={"Content-Type": "application/apply-patch+yaml"}) as resp:
        assert resp.status == 422, "apply needs a fieldManager"


async def test_status_subresource_and_delete_preconditions(kubesim: KubeSim, http: aiohttp.ClientSession
                                                           ) -> None:
    node = kubesim.apply({**_node("n"), "spec": {"a": 1}})
    async with http.patch(f"{NODES}/n/status", json={"status": {"ok": True}, "spec": {"a": 2}},
                          headers={"Content-Type": "application/merge-patch+json"}) as resp:
        patched = await resp.json()
    assert patched["status"] == {"ok": True} and patched["spec"] == {"a": 1}
    async with http.delete(f"{NODES}/n", json={"preconditions": {"uid": "other"}}) as resp:
        assert resp.status == 409
    async with http.delete(f"{NODES}/n", json={"preconditions": {"uid": node["metadata"]["uid"]}}) as resp:
        assert resp.status == 200 and (await resp.json())["metadata"]["name"] == "n"


async def test_delete_collection(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    for name, zone in (("a", "x"), ("b", "y"), ("c", "x")):
        kubesim.apply(_node(name, zone=zone))
    async with http.delete(NODES, params={"labelSelector": "zone=x"}) as resp:
        body = await resp.json()
    assert [i["metadata"]["name"] for i in body["items"]] == ["a", "c"]
    assert [n["metadata"]["name"] for n in kubesim.list("cilium.io/v2", "CiliumNode")] == ["b"]


async def test_watch_framing_and_initial_events(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    kubesim.apply(_node("a", zone="x"))
    kubesim.apply(_node("b", zone="y"))
    events = await _watch_lines(http, NODES, 2, watch="1", sendInitialEvents="true",
                                allowWatchBookmarks="true", resourceVersionMatch="NotOlderThan",
                                labelSelector="zone=x")
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"] == {"resourceVersion": str(kubesim.resource_version),
                                               "annotations": {"k8s.io/initial-events-end": "true"}}
    # The deprecated /watch/ path form, pinned to one name.
    events = await _watch_lines(http, "/apis/cilium.io/v2/watch/ciliumnodes/b", 1, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


async def test_watch_resource_version_ahead_waits(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    ahead = kubesim.resource_version + 1

    async def write_soon() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while kubesim.request_counts["watch", "ciliumnodes"] == 0:  # the watch is waiting now
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        kubesim.apply(_node("late"))
        kubesim.apply(_node("later"))

    task = asyncio.create_task(write_soon())
    events = await _watch_lines(http, NODES, 1, watch="1", resourceVersion=str(ahead))
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "later")]


async def test_table_output(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    kubesim.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
                   "spec": {"clusterIP": "10.1.2.3"}})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with http.get("/api/v1/services", headers={"Accept": accept}) as resp:
        table = await resp.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Type", "Cluster-IP", "External-IP",
                                                                "Port(s)", "Age", "Selector"]
    assert table["rows"][0]["cells"][:5] == ["s", "ClusterIP", "10.1.2.3", "<none>", "<none>"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_new_crd_is_served(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    status, _ = await _get(http, "/apis/example.com/v1/widgets")
    assert status == 404
    async with http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd) as resp:
        assert resp.status == 201
    _, groups = await _get(http, "/apis")
    assert "example.com" in {g["name"] for g in groups["groups"]}
    async with http.post("/apis/example.com/v1/namespaces/default/widgets",
                         json={"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}) as resp:
        assert resp.status == 201
    assert [w["metadata"]["name"] for w in kubesim.list("example.com/v1", "Widget")] == ["w"]
    # Re-applying a CRD of an already served type keeps its objects.
    kubesim.apply({"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": "kept"}})
    cn_crd = kubesim.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "ciliumnodes.cilium.io")
    assert cn_crd is not None
    cn_crd["metadata"]["labels"] = {"touched": "yes"}
    kubesim.apply(cn_crd)
    assert [n["metadata"]["name"] for n in kubesim.list("cilium.io/v2", "CiliumNode")] == ["kept"]
