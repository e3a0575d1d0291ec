"""Reflector against the emulator over real HTTP: list, watch, resume, relist, faults, stop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from typing import Any

import pytest

from apiserver.kube import (
    CILIUM_ENDPOINTS,
    CILIUM_NODES,
    ENDPOINT_SLICES,
    SERVICES,
    CountingMetrics,
    KubeAPIError,
    KubeOptions,
    ObjectEvent,
    ObjectHandler,
    Reflector,
    build_client,
    index_by_service,
)
from localmesh.kubesim import KubeSim


def node(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": name}, "spec": spec}


def cn(name: str) -> tuple[str, str, str]:
    return ("cilium.io/v2", "CiliumNode", name)


async def test_initial_list_is_paginated_and_synced_once(kubesim: KubeSim, reflect: Any, recorder: Any,
                                                         metrics: CountingMetrics) -> None:
    kubesim.load(node(f"n-{i:04d}") for i in range(1234))
    rv_before = kubesim.resource_version
    r = reflect(CILIUM_NODES, recorder)
    await asyncio.wait_for(r.synced.wait(), 10)
    assert len(r.cache) == 1234
    assert kubesim.request_counts["list", "ciliumnodes"] == 13  # 12 pages of 100 and one of 34
    assert metrics.requests["ciliumnodes", "list"] == 13
    assert recorder.synced_calls == 1
    assert recorder.events_at_sync == 1234  # everything was delivered before on_synced
    assert recorder.batches == 13
    assert {kind for kind, _, _ in recorder.events} == {"upsert"}
    assert [name for _, name, _ in recorder.events] == [f"n-{i:04d}" for i in range(1234)]
    assert r.resource_version == str(rv_before)
    assert r.get("", "n-0042") == kubesim.get(*cn("n-0042"))


async def test_pages_are_delivered_in_chunks_into_a_compact_cache(kubesim: KubeSim, reflect: Any, recorder: Any,
                                                                   fast_options: Any, eventually: Any) -> None:
    kubesim.load(node(f"n-{i:04d}", podCIDRs=["10.0.0.0/24"]) for i in range(250))

    def without_spec(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k != "spec"}

    options = dataclasses.replace(fast_options, page_size=500, delivery_chunk=100, cache="compact",
                                  transform=without_spec)
    r = reflect(CILIUM_NODES, recorder, options=options)
    await asyncio.wait_for(r.synced.wait(), 10)
    assert kubesim.request_counts["list", "ciliumnodes"] == 1
    assert recorder.batches == 3  # 100 + 100 + 50, in order
    assert [name for _, name, _ in recorder.events] == [f"n-{i:04d}" for i in range(250)]
    assert r.get("", "n-0042") == without_spec(kubesim.get(*cn("n-0042")) or {})
    # Watch events go through the transform too.
    kubesim.apply(node("late", podCIDRs=["10.0.1.0/24"]))
    await eventually(lambda: r.get("", "late") is not None)
    assert "spec" not in (r.get("", "late") or {"spec": 1})


async def test_live_add_update_delete(kubesim: KubeSim, reflect: Any, eventually: Any) -> None:
    seen: list[tuple[str, str, Any, Any]] = []

    class Handler(ObjectHandler):
        def on_upsert(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            seen.append(("upsert", obj["metadata"]["name"], obj["spec"], old and old["spec"]))

        def on_delete(self, obj: dict[str, Any]) -> None:
            seen.append(("delete", obj["metadata"]["name"], obj["spec"], None))

    kubesim.apply(node("a", v=1))
    r = reflect(CILIUM_NODES, Handler())
    await asyncio.wait_for(r.synced.wait(), 5)
    kubesim.apply(node("b", v=1))
    kubesim.apply(node("a", v=2))
    kubesim.delete(*cn("b"))
    await eventually(lambda: len(seen) == 4)
    assert seen == [
        ("upsert", "a", {"v": 1}, None),
        ("upsert", "b", {"v": 1}, None),
        ("upsert", "a", {"v": 2}, {"v": 1}),
        ("delete", "b", {"v": 1}, None),
    ]
    assert r.get("", "a")["spec"] == {"v": 2}  # type: ignore[index]
    assert r.get("", "b") is None
    assert r.resource_version == str(kubesim.resource_version)


async def test_bookmarks_advance_resource_version(tmp_path: Any, recorder: Any, fast_options: Any,
                                                  eventually: Any) -> None:
    async with KubeSim(bookmark_interval=0.05) as sim:
        sim.apply(node("a"))
        kc = sim.write_kubeconfig(tmp_path / "kc")
        async with await build_client(KubeOptions(kubeconfig_path=str(kc)), environ={}) as client:
            r = client.reflector(CILIUM_NODES, recorder, options=fast_options)
            async with r:
                await asyncio.wait_for(r.synced.wait(), 5)
                listed_rv = r.resource_version
                # Writes to another resource move the global resourceVersion; only a bookmark can
                # tell the node watch about it.
                sim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
                target = str(sim.resource_version)
                assert target != listed_rv
                await eventually(lambda: r.resource_version == target, what="bookmark")
                assert recorder.events == [("upsert", "a", listed_rv)]  # bookmarks are not events
                # A re-watch resumes from the bookmark's resourceVersion: nothing is replayed.
                sim.faults.close_watches()
                sim.apply(node("b"))
                await eventually(lambda: len(recorder.events) == 2)
                assert recorder.since(1) == [("upsert", "b")]


async def test_dropped_watch_resumes_without_loss_or_duplicates(
        kubesim: KubeSim, reflect: Any, recorder: Any, eventually: Any, metrics: CountingMetrics) -> None:
    kubesim.load(node(f"n{i}") for i in range(5))
    r = reflect(CILIUM_NODES, recorder)
    await asyncio.wait_for(r.synced.wait(), 5)
    kubesim.apply(node("live", v=1))
    await eventually(lambda: r.get("", "live") is not None)
    start = len(recorder.events)
    # Changes made while no watch is open are replayed by the next watch, from the last RV.
    assert kubesim.faults.close_watches() == 1
    kubesim.apply(node("n1", v=2))
    kubesim.delete(*cn("n2"))
    kubesim.apply(node("late"))
    await eventually(lambda: len(recorder.events) >= start + 3)
    kubesim.faults.close_watches()
    kubesim.apply(node("later"))
    await eventually(lambda: r.get("", "later") is not None)
    assert recorder.since(start) == [("upsert", "n1"), ("delete", "n2"), ("upsert", "late"),
                                     ("upsert", "later")]
    assert metrics.requests["ciliumnodes", "list"] == 1  # resumed, never relisted
    assert metrics.requests["ciliumnodes", "watch"] >= 3
    assert sorted(r.cache) == sorted(("", o["metadata"]["name"]) for o in kubesim.list("cilium.io/v2", "CiliumNode"))


async def test_expired_watch_relists_with_synthetic_deletes(
        kubesim: KubeSim, reflect: Any, recorder: Any, eventually: Any, metrics: CountingMetrics) -> None:
    kubesim.load(node(f"n{i}", v=1) for i in range(10))
    r = reflect(CILIUM_NODES, recorder)
    await asyncio.wait_for(r.synced.wait(), 5)
    start = len(recorder.events)
    kubesim.faults.expire_next_watch()
    kubesim.faults.close_watches()
    # All of this happens while the reflector is disconnected; its next watch gets 410.
    kubesim.delete(*cn("n1"))
    kubesim.delete(*cn("n7"))
    kubesim.apply(node("n3", v=2))
    kubesim.apply(node("new", v=1))
    await eventually(lambda: metrics.requests["ciliumnodes", "list"] == 2, what="relist")
    await eventually(lambda: len(recorder.events) >= start + 4)
    # Changed and new objects in list order, then the deletes; unchanged objects stay silent.
    assert recorder.since(start) == [("upsert", "n3"), ("upsert", "new"), ("delete", "n1"), ("delete", "n7")]
    assert metrics.errors["ciliumnodes", "watch", "expired"] == 1
    assert recorder.synced_calls == 1
    assert r.get("", "n3")["spec"] == {"v": 2}  # type: ignore[index]
    assert sorted(r.cache) == sorted(("", o["metadata"]["name"]) for o in kubesim.list("cilium.io/v2", "CiliumNode"))
    # And the watch carries on after the relist.
    kubesim.apply(node("after"))
    await eventually(lambda: r.get("", "after") is not None)


async def test_expired_continue_token_restarts_the_list(kubesim: KubeSim, reflect: Any, metrics: CountingMetrics,
                                                        fast_options: Any) -> None:
    kubesim.load(node(f"n{i:02d}") for i in range(30))
    events: list[tuple[str, str]] = []
    synced_after: list[int] = []

    class CompactAfterFirstPage:
        def on_events(self, batch: list[ObjectEvent]) -> None:
            events.extend((e.kind.value, e.obj["metadata"]["name"]) for e in batch)
            if len(events) == 10:  # between page 1 and 2: the continue token goes stale
                kubesim.delete(*cn("n05"))
                kubesim.faults.compact()

        def on_synced(self) -> None:
            synced_after.append(len(events))

    from dataclasses import replace
    r = reflect(CILIUM_NODES, CompactAfterFirstPage(), options=replace(fast_options, page_size=10))
    await asyncio.wait_for(r.synced.wait(), 5)
    assert metrics.errors["ciliumnodes", "list", "expired"] == 1
    # Page 1 once; the restarted list re-delivers nothing already seen; n05 is retracted.
    assert events == ([("upsert", f"n{i:02d}") for i in range(30)] + [("delete", "n05")])
    assert synced_after == [31]
    assert len(r.cache) == 29


async def test_server_errors_back_off_then_recover(kubesim: KubeSim, reflect: Any, metrics: CountingMetrics,
                                                  eventually: Any) -> None:
    kubesim.apply(node("a"))
    kubesim.faults.fail("ciliumnodes", 503, count=3, verbs=("list",))
    r = reflect(CILIUM_NODES)
    await asyncio.wait_for(r.synced.wait(), 5)
    assert metrics.errors["ciliumnodes", "list", "http_503"] == 3
    assert metrics.requests["ciliumnodes", "list"] == 4
    kubesim.faults.fail("ciliumnodes", 500, count=2, verbs=("watch",))
    kubesim.faults.close_watches()
    kubesim.apply(node("b"))
    await eventually(lambda: r.get("", "b") is not None)
    assert metrics.errors["ciliumnodes", "watch", "http_500"] == 2


async def test_connection_refused_is_retried_until_stopped(unused_tcp_port: int, fast_options: Any,
                                                           eventually: Any) -> None:
    from kubernetes_asyncio.client import ApiClient, Configuration
    cfg = Configuration()
    cfg.host = f"http://127.0.0.1:{unused_tcp_port}"
    metrics = CountingMetrics()
    async with ApiClient(cfg) as api:
        r = Reflector(api, CILIUM_NODES, options=fast_options, metrics=metrics)
        r.start()
        await eventually(lambda: metrics.errors["ciliumnodes", "list", "connection"] >= 3)
        assert not r.synced.is_set()
        await r.stop()


async def test_stop_while_streaming_closes_the_watch(kubesim: KubeSim, reflect: Any, eventually: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    r = reflect(CILIUM_NODES)
    await asyncio.wait_for(r.synced.wait(), 5)
    await eventually(lambda: kubesim.watch_count("cilium.io/v2", "CiliumNode") == 1)
    # stop() cancels the stream at once: it waits on no timer (idle timeout, back-off, bookmark).
    timers: list[float] = []
    real_sleep = asyncio.sleep

    def recording_sleep(delay: float, *args: Any) -> Any:
        if sys._getframe(1).f_globals.get("__name__", "").startswith("apiserver."):  # ours, not the emulator's
            timers.append(delay)
        return real_sleep(delay, *args)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    await r.stop()
    monkeypatch.undo()
    assert [t for t in timers if t > 0] == []
    await eventually(lambda: kubesim.watch_count("cilium.io/v2", "CiliumNode") == 0, what="server sees close")
    kubesim.apply(node("ignored"))
    await r.stop()  # idempotent
    assert r.get("", "ignored") is None


async def test_handler_exceptions_are_logged_and_survived(kubesim: KubeSim, reflect: Any, eventually: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    good: list[str] = []

    class Picky(ObjectHandler):
        def on_upsert(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            if obj["metadata"]["name"].startswith("bad"):
                raise RuntimeError("boom")
            good.append(obj["metadata"]["name"])

        def on_synced(self) -> None:
            raise RuntimeError("synced boom")

    kubesim.apply(node("bad0"))
    kubesim.apply(node("ok0"))
    with caplog.at_level(logging.ERROR, logger="apiserver.kube.reflector"):
        r = reflect(CILIUM_NODES, Picky())
        await asyncio.wait_for(r.synced.wait(), 5)  # set despite on_synced raising
        kubesim.apply(node("bad1"))
        kubesim.apply(node("ok1"))
        await eventually(lambda: good == ["ok0", "ok1"])
    failed = [getattr(rec, "_fields", {}).get("name") for rec in caplog.records
              if rec.getMessage() == "Event handler failed"]
    assert failed == ["bad0", "bad1"]
    assert r.get("", "bad1") is not None  # the cache still holds what the handler choked on


async def test_batch_handler_exception_and_async_handler(kubesim: KubeSim, reflect: Any, eventually: Any) -> None:
    calls: list[int] = []

    class Flaky:
        async def on_events(self, batch: list[ObjectEvent]) -> None:
            await asyncio.sleep(0)
            calls.append(len(batch))
            if len(calls) == 1:
                raise RuntimeError("first batch fails")

        async def on_synced(self) -> None:
            calls.append(-1)

    kubesim.apply(node("a"))
    r = reflect(CILIUM_NODES, Flaky())
    await asyncio.wait_for(r.synced.wait(), 5)
    kubesim.apply(node("b"))
    await eventually(lambda: len(calls) == 3)
    assert calls == [1, -1, 1]


async def test_indexes_and_namespaces(kubesim: KubeSim, reflect: Any, eventually: Any) -> None:
    def eps(ns: str, name: str, service: str) -> dict[str, Any]:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": service}},
                "endpoints": [], "ports": []}

    kubesim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2"}})
    kubesim.apply(eps("default", "web-1", "web"))
    kubesim.apply(eps("default", "web-2", "web"))
    kubesim.apply(eps("ns2", "web-1", "web"))
    r = reflect(ENDPOINT_SLICES)
    r.add_index("service", index_by_service)  # before the list: built as objects arrive
    await asyncio.wait_for(r.synced.wait(), 5)

    def names(objs: list[dict[str, Any]]) -> list[str]:
        return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs)

    assert names(r.by_index("service", "default/web")) == ["default/web-1", "default/web-2"]
    assert names(r.by_index("service", "ns2/web")) == ["ns2/web-1"]
    assert names(r.list_namespace("ns2")) == ["ns2/web-1"]
    kubesim.apply(eps("default", "web-2", "db"))
    kubesim.delete("discovery.k8s.io/v1", "EndpointSlice", "web-1", "ns2")
    await eventually(lambda: r.by_index("service", "ns2/web") == [])
    await eventually(lambda: names(r.by_index("service", "default/db")) == ["default/web-2"])
    assert names(r.by_index("service", "default/web")) == ["default/web-1"]
    assert r.list_namespace("ns2") == []


async def test_service_proxy_name_selector(kubesim: KubeSim, reflect: Any, eventually: Any) -> None:
    def svc(name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default",
                "labels": labels}, "spec": {"ports": [{"port": 80}]}}

    kubesim.apply(svc("mine", {}))
    kubesim.apply(svc("theirs", {"service.kubernetes.io/service-proxy-name": "other"}))
    r = reflect(SERVICES)  # the default selector: !service.kubernetes.io/service-proxy-name
    await asyncio.wait_for(r.synced.wait(), 5)
    assert sorted(r.cache) == [("default", "mine")]
    # Gaining the label takes it out of the selection: the watch reports a delete.
    kubesim.apply(svc("mine", {"service.kubernetes.io/service-proxy-name": "other"}))
    await eventually(lambda: len(r.cache) == 0)


async def test_silent_watch_trips_the_idle_watchdog(kubesim: KubeSim, reflect: Any, fast_options: Any,
                                                    metrics: CountingMetrics, eventually: Any) -> None:
    from dataclasses import replace
    r = reflect(CILIUM_NODES, options=replace(fast_options, idle_timeout=0.3))
    await asyncio.wait_for(r.synced.wait(), 5)
    kubesim.faults.pause()  # the server goes silent: no events, no bookmarks, no answers
    await eventually(lambda: metrics.errors["ciliumnodes", "watch", "timeout"] >= 2, what="watchdog")
    kubesim.faults.resume()
    kubesim.apply(node("back"))
    await eventually(lambda: r.get("", "back") is not None)


async def test_list_progress_is_logged(kubesim: KubeSim, reflect: Any, fast_options: Any,
                                       caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import replace
    kubesim.load(node(f"n{i}") for i in range(250))
    with caplog.at_level(logging.INFO, logger="apiserver.kube.reflector"):
        r = reflect(CILIUM_NODES, options=replace(fast_options, progress_interval=0.0))
        await asyncio.wait_for(r.synced.wait(), 5)
    progress = [getattr(rec, "_fields", {}) for rec in caplog.records if rec.getMessage() == "Listing"]
    assert [(f["listed"], f["pages"]) for f in progress] == [(100, 1), (200, 2), (250, 3)]
    assert all(f["resource"] == "ciliumnodes" for f in progress)
    (done,) = [getattr(rec, "_fields", {}) for rec in caplog.records
               if rec.getMessage() == "Initial list complete"]
    assert (done["objects"], done["pages"]) == (250, 3)


def cep(namespace: str, name: str, ip: str) -> dict[str, Any]:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint", "metadata": {"name": name, "namespace": namespace},
            "status": {"networking": {"addressing": [{"ipv4": ip}]}}}


class Keeper:
    """Keeps the objects delivered to it."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []

    def on_events(self, events: list[ObjectEvent]) -> None:
        self.objects.extend(e.obj for e in events)

    def on_synced(self) -> None:
        pass


async def test_metadata_cache_keeps_versions_and_a_namespace_can_be_reread(
        kubesim: KubeSim, reflect: Any, fast_options: Any, metrics: CountingMetrics) -> None:
    kubesim.load([cep("ns1", "a", "10.0.0.1"), cep("ns1", "b", "10.0.0.2"), cep("ns1", "c", "10.0.0.3"),
                  cep("ns2", "d", "10.0.0.4")])
    keeper = Keeper()
    r = reflect(CILIUM_ENDPOINTS, keeper, options=dataclasses.replace(fast_options, cache="metadata"))
    await asyncio.wait_for(r.synced.wait(), 10)
    stored = kubesim.get("cilium.io/v2", "CiliumEndpoint", "a", namespace="ns1")
    assert stored is not None
    assert r.get("ns1", "a") == {"metadata": {"namespace": "ns1", "name": "a",
                                              "resourceVersion": stored["metadata"]["resourceVersion"]}}
    assert keeper.objects[0] == stored  # the handler still gets whole objects
    assert sorted(o["metadata"]["name"] for o in await r.reread_namespace("ns1")) == ["a", "b", "c"]
    assert (await r.reread_namespace("ns1"))[0] == stored
    # Changes the handler has not seen yet are left to the watch: re-read only seen versions.
    await r.stop()
    kubesim.apply(cep("ns1", "b", "10.0.0.20"))
    kubesim.delete("cilium.io/v2", "CiliumEndpoint", "c", namespace="ns1")
    kubesim.apply(cep("ns1", "e", "10.0.0.5"))
    assert [o["metadata"]["name"] for o in await r.reread_namespace("ns1")] == ["a"]
    kubesim.faults.fail("ciliumendpoints", 503, verbs=("list",))
    with pytest.raises(KubeAPIError):
        await r.reread_namespace("ns1")
    assert metrics.errors["ciliumendpoints", "list", "http_503"] == 1


async def test_an_api_server_whose_versions_went_back_is_relisted(
        kubesim: KubeSim, reflect: Any, recorder: Any, eventually: Any, metrics: CountingMetrics) -> None:
    """A restored or replaced API server answers our watch with "Too large resource version":
    relist (client-go does), deliver every object it has, delete every object it lost."""
    kubesim.load(node(f"n{i}", v=1) for i in range(30))
    r = reflect(CILIUM_NODES, recorder)
    await asyncio.wait_for(r.synced.wait(), 5)
    port = int(kubesim.url.rsplit(":", 1)[1])
    await kubesim.stop()
    restored = KubeSim()  # a new store: its resourceVersions start again from the beginning
    restored.load([node("n1", v=1), node("n2", v=9), node("fresh", v=1)])
    await restored.start(host="127.0.0.1", port=port)
    try:
        start = len(recorder.events)
        await eventually(lambda: metrics.requests["ciliumnodes", "list"] == 2, timeout=20, what="relist")
        await eventually(lambda: len(recorder.events) >= start + 31, timeout=20, what="relist delivered")
        since = recorder.since(start)
        # Every object the new server has (n1 too: its resourceVersion proves nothing now), then
        # a delete for every object it lost.
        assert sorted(since[:3]) == [("upsert", "fresh"), ("upsert", "n1"), ("upsert", "n2")]
        assert sorted(since[3:]) == sorted(("delete", f"n{i}") for i in range(30) if i not in (1, 2))
        assert metrics.errors["ciliumnodes", "watch", "too_large_resource_version"] >= 1
        assert r.get("", "n2")["spec"] == {"v": 9}  # type: ignore[index]
        restored.apply(node("after"))
        await eventually(lambda: r.get("", "after") is not None, timeout=20, what="watch after relist")
    finally:
        await restored.stop()
