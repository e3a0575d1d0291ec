"""NamespaceRereads: a namespace flip re-reads that namespace's objects, retrying API errors."""

from __future__ import annotations

import asyncio
from typing import Any

from apiserver.clustermesh.rereads import NamespaceRereads
from apiserver.kube import Cache, KubeObject


class FakeReflector:
    name = "ciliumendpoints"

    def __init__(self, failures: int) -> None:
        self.cache = Cache()
        self.cache.put(("ns1", "a"), {"metadata": {"namespace": "ns1", "name": "a"}})
        self.failures = failures
        self.calls: list[str] = []

    async def reread_namespace(self, namespace: str) -> list[KubeObject]:
        self.calls.append(namespace)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("API server unreachable")
        return self.cache.list_namespace(namespace)


class Handler:
    def __init__(self) -> None:
        self.resyncs: list[list[KubeObject]] = []

    def resync(self, objects: list[KubeObject]) -> None:
        self.resyncs.append(objects)


async def _settle(rereads: NamespaceRereads) -> None:
    for _ in range(5000):
        if not rereads.pending:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("re-reads still pending after 5 s")


async def test_a_flip_rereads_the_namespace_and_retries_api_errors() -> None:
    reflector, handler = FakeReflector(failures=2), Handler()
    rereads = NamespaceRereads(reflector, handler, backoff_initial=0.001, backoff_max=0.01)  # type: ignore[arg-type]
    rereads("ns1")
    await _settle(rereads)
    assert reflector.calls == ["ns1"] * 3
    assert handler.resyncs == [[{"metadata": {"namespace": "ns1", "name": "a"}}]]


async def test_a_namespace_nothing_was_handled_in_is_not_reread() -> None:
    reflector, handler = FakeReflector(failures=0), Handler()
    rereads = NamespaceRereads(reflector, handler)  # type: ignore[arg-type]
    rereads("ns2")
    assert rereads.pending == 0 and reflector.calls == [] and handler.resyncs == []


async def test_stop_cancels_rereads_still_retrying() -> None:
    reflector, handler = FakeReflector(failures=10**6), Handler()
    rereads: Any = NamespaceRereads(reflector, handler, backoff_initial=0.001, backoff_max=0.002)  # type: ignore[arg-type]
    rereads("ns1")
    for _ in range(5000):
        if len(reflector.calls) > 1:
            break
        await asyncio.sleep(0.001)
    assert rereads.pending == 1 and len(reflector.calls) > 1  # retrying
    await rereads.stop()
    await asyncio.sleep(0)
    assert rereads.pending == 0 and handler.resyncs == []
