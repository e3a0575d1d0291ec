"""Fixtures of the kvstore tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from apiserver.kvstore.leases import LeaseManager
from localmesh.memory.kv import MemoryKV


async def wait_for(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0,
                   what: str = "") -> None:
    """Poll ``condition`` (sync or async) until it holds or ``timeout`` passes (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.005)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    return wait_for


@pytest.fixture
def kv() -> MemoryKV:
    return MemoryKV()


@pytest.fixture
async def leases(kv: MemoryKV) -> AsyncIterator[LeaseManager]:
    manager = LeaseManager(kv, ttl=60, keepalive_interval=0.01)
    manager.start()
    yield manager
    await manager.stop()
