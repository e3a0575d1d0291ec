"""The emulator driven by the real kubernetes-asyncio client over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from localmesh.kubesim import KubeSim, ServerTLS
from localmesh.testing.polling import eventually as _until

Obj = dict[str, Any]
CN = ("cilium.io", "v2", "ciliumnodes")


def _node(name: str, **labels: str) -> Obj:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": name, "labels": labels},
            "spec": {"addresses": [{"type": "InternalIP", "ip": "10.0.0.1"}]}}


def _service(name: str, ns: str = "default", **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"ports": [{"port": 80}]}}


@pytest.fixture
async def api(kubeconfig_path: Path) -> AsyncIterator[client.ApiClient]:
    api_client = await config.new_client_from_config(config_file=str(kubeconfig_path))
    async with api_client:
        yield api_client


async def test_typed_core_lists_with_selectors(kubesim: KubeSim, api: client.ApiClient) -> None:
    kubesim.apply(_service("a", app="web"))
    kubesim.apply(_service("b", app="db"))
    kubesim.apply(_service("c", ns="kube-system", app="web"))
    core = client.CoreV1Api(api)
    everything = await core.list_service_for_all_namespaces()
    assert [(s.metadata.namespace, s.metadata.name) for s in everything.items] == [
        ("default", "a"), ("default", "b"), ("kube-system", "c")]
    assert everything.metadata.resource_version == str(kubesim.resource_version)
    assert everything.items[0].spec.ports[0].protocol == "TCP", "defaults are applied"
    assert everything.items[0].spec.cluster_ip
    web = await core.list_service_for_all_namespaces(label_selector="app in (web)")
    assert [s.metadata.name for s in web.items] == ["a", "c"]
    default_web = await core.list_namespaced_service("default", label_selector="app=web")
    assert [s.metadata.name for s in default_web.items] == ["a"]
    not_a = await core.list_service_for_all_namespaces(field_selector="metadata.name!=a")
    assert [s.metadata.name for s in not_a.items] == ["b", "c"]
    namespaces = await core.list_namespace()
    assert {"default", "kube-system"} <= {n.metadata.name for n in namespaces.items}


async def test_custom_objects_pagination(kubesim: KubeSim, api: client.ApiClient) -> None:
    kubesim.load(_node(f"node-{i:02}") for i in range(25))
    co = client.CustomObjectsApi(api)
    names: list[str] = []
    token = None
    pages = 0
    rvs = set()
    while True:
        page = await co.list_cluster_custom_object(*CN, limit=10, _continue=token)
        pages += 1
        assert page["kind"] == "CiliumNodeList" and page["apiVersion"] == "cilium.io/v2"
        names += [o["metadata"]["name"] for o in page["items"]]
        rvs.add(page["metadata"]["resourceVersion"])
        if pages == 1:
            kubesim.apply(_node("node-00a"))  # created after the snapshot: must not show up
            assert page["metadata"]["remainingItemCount"] == 15
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == 3 and names == [f"node-{i:02}" for i in range(25)] and len(rvs) == 1


async def test_expired_continue_is_410(kubesim: KubeSim, api: client.ApiClient) -> None:
    kubesim.load(_node(f"n{i}") for i in range(3))
    co = client.CustomObjectsApi(api)
    page = await co.list_cluster_custom_object(*CN, limit=1)
    kubesim.apply(_node("n9"))
    kubesim.faults.compact()
    with pytest.raises(ApiException) as info:
        await co.list_cluster_custom_object(*CN, limit=1, _continue=page["metadata"]["continue"])
    assert info.value.status == 410 and "Expired" in str(info.value.body)


async def test_crud_status_errors(kubesim: KubeSim, api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    created = await co.create_cluster_custom_object(*CN, _node("n1"))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    with pytest.raises(ApiException) as info:
        await co.create_cluster_custom_object(*CN, _node("n1"))
    assert info.value.status == 409 and '"reason":"AlreadyExists"' in info.value.body
    stale = {**created, "spec": {"x": 1}}
    await co.replace_cluster_custom_object(*CN, "n1", {**created, "spec": {"x": 2}})
    with pytest.raises(ApiException) as info:
        await co.replace_cluster_custom_object(*CN, "n1", stale)
    assert info.value.status == 409 and '"reason":"Conflict"' in info.value.body
    with pytest.raises(ApiException) as info:
        await co.create_cluster_custom_object(*CN, {"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                                                    "metadata": {}})
    assert info.value.status == 422 and "metadata.name: Required value" in info.value.body
    patched = await co.patch_cluster_custom_object(*CN, "n1", {"spec": {"y": 3}},
                                                   _content_type="application/merge-patch+json")
    assert patched["spec"] == {"x": 2, "y": 3} and patched["metadata"]["generation"] == 3
    await co.delete_cluster_custom_object(*CN, "n1")
    with pytest.raises(ApiException) as info:
        await co.get_cluster_custom_object(*CN, "n1")
    assert info.value.status == 404 and 'ciliumnodes.cilium.io \\"n1\\" not found' in info.value.body
    assert kubesim.get("cilium.io/v2", "CiliumNode", "n1") is None


async def test_core_patch_flavours(kubesim: KubeSim, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    cm = await core.patch_namespaced_config_map("cm", "default", {"data": {"b": "2"}})  # strategic
    assert cm.data == {"a": "1", "b": "2"}
    cm = await core.patch_namespaced_config_map("cm", "default", [{"op": "remove", "path": "/data/a"}])
    assert cm.data == {"b": "2"}
    cm = await core.patch_namespaced_config_map("cm", "default", {"data": {"b": None, "c": "3"}},
                                                _content_type="application/merge-patch+json")
    assert cm.data == {"c": "3"}
    status = await core.delete_namespaced_config_map("cm", "default")
    assert status.status == "Success"
    with pytest.raises(ApiException) as info:
        await core.delete_namespaced_config_map("cm", "default")
    assert info.value.status == 404


async def test_watch_stream_with_bookmarks(api: client.ApiClient) -> None:
    async with KubeSim(bookmark_interval=0.1) as sim:
        sim.apply(_node("n0"))
        kc = await config.new_client_from_config_dict(sim.kubeconfig())
        async with kc:
            co = client.CustomObjectsApi(kc)
            listed = await co.list_cluster_custom_object(*CN)
            rv = listed["metadata"]["resourceVersion"]
            seen: list[tuple[str, Any]] = []
            bookmarks: list[Obj] = []

            async def mutate() -> None:
                await sim.wait_for_watch("cilium.io/v2", "CiliumNode")
                sim.apply(_node("n1"))
                sim.apply({**_node("n1"), "spec": {"changed": True}})
                sim.delete("cilium.io/v2", "CiliumNode", "n0")

            task = asyncio.create_task(mutate())
            async with watch.Watch() as w:
                async for ev in w.stream(co.list_cluster_custom_object, *CN, resource_version=rv,
                                         allow_watch_bookmarks=True, _request_timeout=(5, 30)):
                    if ev["type"] == "BOOKMARK":
                        bookmarks.append(ev["raw_object"])
                        if seen and seen[-1][0] == "DELETED":
                            break
                        continue
                    seen.append((ev["type"], ev["raw_object"]["metadata"]["name"]))
            await task
    assert seen == [("ADDED", "n1"), ("MODIFIED", "n1"), ("DELETED", "n0")]
    assert bookmarks[-1] == {"kind": "CiliumNode", "apiVersion": "cilium.io/v2",
                             "metadata": {"resourceVersion": str(sim.resource_version)}}


async def test_watch_too_old_raises_410(kubesim: KubeSim, api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    kubesim.apply(_node("n0"))
    old_rv = str(kubesim.resource_version)
    kubesim.apply(_node("n1"))
    kubesim.faults.compact()
    with pytest.raises(ApiException) as info:
        async with watch.Watch() as w:
            async for _ in w.stream(co.list_cluster_custom_object, *CN, resource_version=old_rv,
                                    _request_timeout=(5, 10)):
                pass
    assert info.value.status == 410
    assert kubesim.request_counts["watch", "ciliumnodes"] == 2, "the client retries once, then raises"


async def test_faults(kubesim: KubeSim, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    kubesim.faults.fail("services", status=503, count=2, verbs=("list",))
    for _ in range(2):
        with pytest.raises(ApiException) as info:
            await core.list_service_for_all_namespaces()
        assert info.value.status == 503
    await core.list_service_for_all_namespaces()  # healed after count requests
    kubesim.faults.expire_next_watch()
    co = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as info:
        async with watch.Watch() as w:
            async for _ in w.stream(co.list_cluster_custom_object, *CN, resource_version="1",
                                    timeout_seconds=5):
                pass
    assert info.value.status == 410
    kubesim.faults.delay("namespaces", 0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await core.list_namespace()
    assert loop.time() - started >= 0.3
    kubesim.faults.delay("namespaces", 0)
    kubesim.faults.pause()
    request = asyncio.create_task(core.list_namespace())
    await _until(lambda: kubesim.request_counts["list", "namespaces"] == 2)  # arrived, held by the pause
    assert not request.done()
    kubesim.faults.resume()
    assert len((await request).items) >= 4


async def test_close_watches_and_timeout(kubesim: KubeSim, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    kubesim.apply(_service("a"))

    async def drain(**kw: Any) -> list[str]:
        async with watch.Watch() as w:
            return [e["type"] async for e in w.stream(core.list_service_for_all_namespaces, **kw)]

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await drain(timeout_seconds=1) == ["ADDED"]  # the server ends the watch after its timeout
    assert loop.time() - started >= 0.9  # a lower bound only: a slow machine cannot make it fail
    task = asyncio.create_task(drain(timeout_seconds=30))
    await kubesim.wait_for_watch("v1", "Service")
    assert kubesim.faults.close_watches() == 1
    assert await asyncio.wait_for(task, 5) == ["ADDED"]


async def test_tls(tmp_path: Path) -> None:
    tls = ServerTLS.self_signed(tmp_path / "pki")
    sim = KubeSim()
    await sim.start(tls=tls)
    try:
        assert sim.url.startswith("https://127.0.0.1:")
        kc = await config.new_client_from_config(config_file=str(sim.write_kubeconfig(tmp_path / "kc")))
        async with kc:
            namespaces = await client.CoreV1Api(kc).list_namespace()
        assert "default" in {n.metadata.name for n in namespaces.items}
    finally:
        await sim.stop()
