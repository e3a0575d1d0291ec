"""A started emulator with its controllers, a kubeconfig for it, and real kubectl against it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from localmesh.kubesim import KubeSim
from localmesh.kubesim.controllers import ControllerManager
from localmesh.testing.polling import eventually
from tests.localmesh.conftest import Kubectl, Result

__all__ = ["Kubectl", "Result", "eventually"]

POOL = "172.19.255.0/29"  # 6 usable addresses


@pytest_asyncio.fixture
async def manager(kubesim: KubeSim) -> AsyncIterator[ControllerManager]:
    controllers = ControllerManager(kubesim, lb_pool=POOL)
    await controllers.start()
    try:
        yield controllers
    finally:
        await controllers.stop()
