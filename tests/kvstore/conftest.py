"""Fixtures of the kvstore tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from apiserver.kvstore.leases import LeaseManager
from localmesh.memory.kv import MemoryKV
from localmesh.testing.polling import eventually as wait_for


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
