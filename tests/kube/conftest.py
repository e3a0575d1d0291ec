"""Fixtures for the reflector tests: a KubeClient on the emulator, started reflectors, a recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from apiserver.kube import (
    APIResource,
    CountingMetrics,
    KubeClient,
    KubeOptions,
    ObjectEvent,
    Reflector,
    ReflectorOptions,
    build_client,
)
from localmesh.testing.polling import eventually as _eventually

# Short backoff so retry tests finish fast; idle timeout above the emulator's 1 s bookmarks.
FAST = ReflectorOptions(page_size=100, backoff_initial=0.01, backoff_max=0.1, idle_timeout=10.0,
                        connect_timeout=2.0)


def describe(event: ObjectEvent) -> tuple[str, str, str]:
    meta = event.obj["metadata"]
    name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    return event.kind.value, name, meta.get("resourceVersion", "")


class Recorder:
    """Batch handler remembering every event as (kind, name, resourceVersion), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.batches = 0
        self.synced_calls = 0
        self.events_at_sync = -1

    def on_events(self, events: list[ObjectEvent]) -> None:
        self.batches += 1
        self.events.extend(describe(e) for e in events)

    def on_synced(self) -> None:
        self.synced_calls += 1
        self.events_at_sync = len(self.events)

    def since(self, start: int) -> list[tuple[str, str]]:
        return [(kind, name) for kind, name, _ in self.events[start:]]


Eventually = Callable[..., Awaitable[None]]


@pytest.fixture
def eventually() -> Eventually:
    """``await eventually(lambda: ..., timeout=5)``: poll a condition with a deadline."""
    return _eventually


@pytest_asyncio.fixture
async def kube(kubeconfig_path: Path) -> AsyncIterator[KubeClient]:
    client = await build_client(KubeOptions(kubeconfig_path=str(kubeconfig_path), qps=0), environ={})
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def fast_options() -> ReflectorOptions:
    return FAST


@pytest.fixture
def metrics() -> CountingMetrics:
    return CountingMetrics()


@pytest_asyncio.fixture
async def reflect(kube: KubeClient, metrics: CountingMetrics) -> AsyncIterator[Callable[..., Reflector]]:
    """``reflect(resource, handler, **kw)``: a started reflector, stopped after the test."""
    started: list[Reflector] = []

    def make(resource: APIResource, handler: Any = None, **kw: Any) -> Reflector:
        kw.setdefault("options", FAST)
        r = kube.reflector(resource, handler, metrics=metrics, **kw)
        r.start()
        started.append(r)
        return r

    yield make
    for r in started:
        await r.stop()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
