"""Fixtures of the security tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from apiserver.security.memory_auth import MemoryAuthAdmin


@pytest.fixture
def fake_admin() -> MemoryAuthAdmin:
    return MemoryAuthAdmin()


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it holds or ``timeout`` passes (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    return wait_for
