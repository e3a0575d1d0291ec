"""Fixtures for the KVStoreMesh tests (the harnesses live in ``kvmesh_memmesh`` / ``kvmesh_helpers``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kvmesh_memmesh import FAST, LOCAL, MemMesh


@pytest.fixture
async def make_memmesh(tmp_path: Path) -> AsyncIterator[Callable[..., MemMesh]]:
    """Build a ``MemMesh`` with ``MeshConfig`` overrides (and ``local=``); stopped at teardown."""
    made: list[MemMesh] = []

    def make(**overrides: Any) -> MemMesh:
        local = overrides.pop("local", LOCAL)
        local_kv = overrides.pop("local_kv", None)
        remotes = overrides.pop("remotes", None)
        harness = MemMesh(tmp_path, dataclasses.replace(FAST, **overrides), local, local_kv, remotes)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.stop()


@pytest.fixture
def memmesh(make_memmesh: Callable[..., MemMesh]) -> MemMesh:
    return make_memmesh()
