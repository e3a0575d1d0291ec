"""pytest plugin: real etcd fixtures (loaded from ``tests/conftest.py``).

- ``etcd_shared``: one plain etcd for the whole session; pair it with ``etcd_prefix`` so tests
  never see each other's keys. Do not stop, kill or wipe it.
- ``etcd_server``: a plain etcd of your own (function scope): kill it, restart it, compact it.
- ``etcd_tls_server``: TLS + client-cert auth + RBAC enabled (user ``root``), function scope.
- ``etcd_tls_shared``: the same, session-scoped; do not change its users/roles/auth state.
- ``etcd_pki``: the session's ``EtcdTLS`` (``etcd_pki.client("remote")`` gives cert files).
- ``etcd_client``: an ``EtcdClient`` connected to ``etcd_shared`` (closed after the test).

``srv.etcd_config(user)`` gives the ``EtcdConfig`` to connect to any of these servers.

Server fixtures are synchronous so they work from sync and async tests and from any event loop;
teardown always kills the process and removes its files.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from apiserver.kvstore.etcd import EtcdClient
from localmesh.testing.etcd import EtcdServer, EtcdTLS


@pytest.fixture(scope="session")
def etcd_pki(tmp_path_factory: pytest.TempPathFactory) -> EtcdTLS:
    return EtcdTLS(Path(tmp_path_factory.mktemp("etcd-pki")))


@pytest.fixture(scope="session")
def etcd_shared() -> Iterator[EtcdServer]:
    with EtcdServer(name="shared") as srv:
        yield srv


@pytest.fixture(scope="session")
def etcd_tls_shared(etcd_pki: EtcdTLS) -> Iterator[EtcdServer]:
    with EtcdServer(tls=etcd_pki, auth=True, name="shared-tls") as srv:
        yield srv


@pytest.fixture
def etcd_prefix() -> str:
    """A key prefix no other test uses, ending in ``/``."""
    return f"test/{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def etcd_server() -> Iterator[EtcdServer]:
    with EtcdServer() as srv:
        yield srv


@pytest.fixture
def etcd_tls_server(etcd_pki: EtcdTLS) -> Iterator[EtcdServer]:
    with EtcdServer(tls=etcd_pki, auth=True, name="tls") as srv:
        yield srv


@pytest.fixture
async def etcd_client(etcd_shared: EtcdServer) -> AsyncIterator[EtcdClient]:
    async with await EtcdClient.connect(etcd_shared.etcd_config()) as client:
        yield client
