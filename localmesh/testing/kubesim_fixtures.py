"""pytest plugin: a started Kubernetes API emulator per test, and a kubeconfig pointing at it.

    async def test_x(kubesim, kubeconfig_path):
        kubesim.apply({...})
        await config.load_kube_config(config_file=str(kubeconfig_path))

Loaded from ``tests/conftest.py``; depends only on ``localmesh.kubesim``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from localmesh.kubesim import KubeSim


@pytest_asyncio.fixture
async def kubesim() -> AsyncIterator[KubeSim]:
    """A ``KubeSim`` listening on a free loopback port; stopped (watches closed) after the test."""
    sim = KubeSim()
    await sim.start(host="127.0.0.1", port=0)
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def kubeconfig_path(kubesim: KubeSim, tmp_path: Path) -> Path:
    """A kubeconfig file (in ``tmp_path``) for the ``kubesim`` fixture."""
    return kubesim.write_kubeconfig(tmp_path / "kubesim.kubeconfig")
