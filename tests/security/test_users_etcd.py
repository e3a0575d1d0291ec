"""Per-cluster remote users on a real etcd: each ``remote-<peer>`` certificate works exactly while
its user is in the users file."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from meshtest import MeshEtcd

from apiserver.kvstore import PermissionDeniedError
from apiserver.kvstore.etcd import EtcdClient
from apiserver.security.users import UsersManager

BUILTIN = {"root": ["root"], "admin-c1": ["root"], "local-c1": ["local"], "remote": ["remote"]}


@pytest.fixture
async def admin(mesh_etcd: MeshEtcd) -> AsyncIterator[EtcdClient]:
    async with await mesh_etcd.connect("admin-c1") as client:
        yield client


async def users_of(admin: EtcdClient) -> dict[str, list[str]]:
    return {u: sorted(await admin.user_get(u)) for u in await admin.user_list()}


async def works_as(mesh: MeshEtcd, identity: str) -> bool:
    """Whether ``identity``'s certificate reads remote data (and, always, cannot write)."""
    async with await mesh.connect(identity) as client:
        try:
            kvs, _ = await client.list_prefix("cilium/state/nodes/v1/c1/")
        except PermissionDeniedError:
            return False
        assert kvs
        with pytest.raises(PermissionDeniedError):
            await client.put("cilium/state/nodes/v1/c1/n1", b"evil")
        with pytest.raises(PermissionDeniedError):
            await client.get("cilium/cluster-config/c2")
        return True


async def test_reconcile_adds_removes_and_refuses(mesh_etcd: MeshEtcd, admin: EtcdClient, tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    shutil.copy(mesh_etcd.pki / "users.yaml", path)  # written by `pki --peer c2 --peer c3`
    manager = UsersManager(admin, path, cluster_name="c1")
    assert not await works_as(mesh_etcd, "remote-c2")

    await manager.reconcile_once()
    assert await users_of(admin) == {**BUILTIN, "remote-c2": ["remote"], "remote-c3": ["remote"]}
    assert await works_as(mesh_etcd, "remote-c2")
    assert await works_as(mesh_etcd, "remote-c3")

    path.write_text("users:\n- {name: remote-c3, role: remote}\n- {name: remote-c4, role: root}\n"
                    "- {name: admin-c1, role: remote}\n- {role: remote}\n")
    result = await manager.reconcile_once()
    assert len(result.rejected) == 3
    assert await users_of(admin) == {**BUILTIN, "remote-c3": ["remote"]}
    assert not await works_as(mesh_etcd, "remote-c2")  # its user is gone
    assert await works_as(mesh_etcd, "remote-c3")
    assert await works_as(mesh_etcd, "remote")  # the shared identity is never touched

    path.write_text("users: []\n")
    await manager.reconcile_once()
    assert await users_of(admin) == BUILTIN


async def test_running_manager_follows_the_file(mesh_etcd: MeshEtcd, admin: EtcdClient, tmp_path: Path,
                                                eventually: Callable[..., Awaitable[None]]) -> None:
    path = tmp_path / "users.yaml"
    path.write_text("users: []\n")
    manager = UsersManager(admin, path, interval=0.05, cluster_name="c1")
    manager.start()
    try:
        async def has(user: str, present: bool) -> bool:
            return (user in await admin.user_list()) is present

        await eventually(lambda: has("remote-c2", False), what="initial reconcile")
        path.write_text("users:\n- {name: remote-c2, role: remote}\n")
        await eventually(lambda: has("remote-c2", True), what="user created")
        assert await works_as(mesh_etcd, "remote-c2")
        path.write_text("users: []\n")
        await eventually(lambda: has("remote-c2", False), what="user removed")
    finally:
        await manager.stop()
