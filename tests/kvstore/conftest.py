"""Fixtures of the kvstore tests."""

from __future__ import annotations

import contextlib
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
    async with started(LeaseManager(kv, ttl=60, keepalive_interval=0.01)) as manager:
        yield manager


@contextlib.asynccontextmanager
async def started(manager: LeaseManager, *, revoke: bool = False) -> AsyncIterator[LeaseManager]:
    """``manager`` with its keepalive loop running; stopped (its leases revoked if ``revoke``) after."""
    manager.start()
    try:
        yield manager
    finally:
        await manager.stop(revoke=revoke)
