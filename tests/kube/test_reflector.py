"""Reflector against the emulator over real HTTP: list, watch, resume, relist, faults, stop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from apiserver.kube import (
    CILIUM_NODES,
    ENDPOINT_SLICES,
    SERVICES,
    CountingMetrics,
    Event,
    ObjectHandler,
    Reflector,
    index_by_service,
)
from apiserver.kubesim import KubeSim


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


async def test_bookmarks_advance_resource_version(kubeconfig_path: Any, recorder: Any, eventually: Any) -> None:
    from apiserver.kube import KubeOptions, build_client
    from tests_kube_conftest_options import FAST  # type: ignore[import-not-found]  # noqa: F401
