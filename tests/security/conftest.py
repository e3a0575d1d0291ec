"""Fixtures of the security tests (helpers live in ``meshtest``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
from meshtest import MeshEtcd, dev_pki_under, start_mesh_etcd

from localmesh.memory.auth import MemoryAuthAdmin
from localmesh.testing.polling import eventually as wait_for


@pytest.fixture(scope="module")
def mesh_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshEtcd]:
    base = tmp_path_factory.mktemp("mesh")
    server = start_mesh_etcd(base)
    try:
        yield MeshEtcd(server, dev_pki_under(server, base / "pki"))
    finally:
        server.close_sync()


@pytest.fixture
def fake_admin() -> MemoryAuthAdmin:
    return MemoryAuthAdmin()


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    return wait_for
