"""Fixtures of the fault suite; the convergence time of every scenario is printed at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from tests.faults.harness import RESULTS, World


@pytest.fixture
async def world(kubesim: KubeSim, etcd_server: EtcdServer, tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path, kubesim, etcd_server)
    try:
        yield w
    finally:
        await w.close()
        if w.sim is not kubesim:
            await w.sim.stop()


@pytest.fixture(scope="session", autouse=True)
def _report_convergence() -> Iterator[None]:
    yield
    if RESULTS:
        print("\nfault matrix: seconds to converge (verify equal)")
        for scenario, seconds in sorted(RESULTS.items()):
            print(f"  {scenario}: {seconds:.2f}s")
