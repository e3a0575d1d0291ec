"""``UsersManager`` against the in-memory auth store: reconcile, refusals, watching, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from meshtest import publish_projected

from apiserver.security.users import UsersManager, UsersReconcileError
from apiserver.security.users_config import UsersConfigError
from localmesh.memory.auth import MemoryAuthAdmin

Eventually = Callable[..., Awaitable[None]]
BUILTIN = {"root": {"root"}, "admin-c1": {"root"}, "local-c1": {"local"}, "remote": {"remote"}}


def users_yaml(*names: str, extra: str = "") -> str:
    return "users:\n" + "".join(f"- name: {n}\n  role: remote\n" for n in names) + extra


@pytest.fixture
def admin() -> MemoryAuthAdmin:
    store = MemoryAuthAdmin(roles={"local": {}, "remote": {}})
    store.users = {u: set(r) for u, r in BUILTIN.items()}
    return store


@pytest.fixture
async def manager(admin: MemoryAuthAdmin, tmp_path: Path) -> AsyncIterator[UsersManager]:
    mgr = UsersManager(admin, tmp_path / "users.yaml", interval=0.02, cluster_name="c1")
    yield mgr
    await mgr.stop()


def managed(admin: MemoryAuthAdmin) -> dict[str, set[str]]:
    return {u: r for u, r in admin.users.items() if u not in BUILTIN}


async def test_creates_users_and_refuses_bad_entries(admin: MemoryAuthAdmin, manager: UsersManager,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    manager.path.write_text(users_yaml("remote-c2", "remote-c3", "root", "remote-c1",
                                       extra="- {name: remote-c4, role: admin}\n- {role: remote}\n"))
    result = await manager.reconcile_once()
    assert managed(admin) == {"remote-c2": {"remote"}, "remote-c3": {"remote"}}
    assert {u: admin.users[u] for u in BUILTIN} == BUILTIN  # untouched
    assert [r.reason.split(" ")[0] for r in result.rejected] == ["invalid", "unknown", "missing"]
    refused = [r for r in caplog.records if r.getMessage().startswith("Refusing invalid entry")]
    assert [r._fields["index"] for r in refused] == [2, 4, 5]  # type: ignore[attr-defined]
    assert "remote-c4" in refused[1]._fields["entry"]  # type: ignore[attr-defined]


async def test_removes_users_that_left_the_file(admin: MemoryAuthAdmin, manager: UsersManager) -> None:
    manager.path.write_text(users_yaml("remote-c2", "remote-c3"))
    await manager.reconcile_once()
    manager.path.write_text(users_yaml("remote-c3"))
    result = await manager.reconcile_once()
    assert result.changes.delete == ("remote-c2",)
    assert managed(admin) == {"remote-c3": {"remote"}}
    manager.path.write_text("users: []\n")
    await manager.reconcile_once()
    assert managed(admin) == {}
    assert set(admin.users) == set(BUILTIN)


async def test_users_left_over_by_a_previous_process_are_removed(admin: MemoryAuthAdmin,
                                                                 manager: UsersManager) -> None:
    admin.users["remote-old"] = {"remote"}  # created before this process started
    manager.path.write_text(users_yaml("remote-c2"))
    await manager.reconcile_once()
    assert managed(admin) == {"remote-c2": {"remote"}}


async def test_partial_failure_applies_the_rest_and_raises(admin: MemoryAuthAdmin,
                                                           manager: UsersManager) -> None:
    admin.fail_on = {"user_add:remote-c3"}
    manager.path.write_text(users_yaml("remote-c2", "remote-c3", "remote-c4"))
    with pytest.raises(UsersReconcileError, match="remote-c3"):
        await manager.reconcile_once()
    assert managed(admin) == {"remote-c2": {"remote"}, "remote-c4": {"remote"}}
    admin.fail_on = set()
    await manager.reconcile_once()
    assert set(managed(admin)) == {"remote-c2", "remote-c3", "remote-c4"}


async def test_unusable_file_applies_nothing(admin: MemoryAuthAdmin, manager: UsersManager) -> None:
    admin.users["remote-c2"] = {"remote"}
    manager.path.write_text("users: [")
    with pytest.raises(UsersConfigError):
        await manager.reconcile_once()
    assert managed(admin) == {"remote-c2": {"remote"}}


async def test_watch_follows_configmap_symlink_swaps(admin: MemoryAuthAdmin, tmp_path: Path,
                                                     eventually: Eventually) -> None:
    vol = tmp_path / "vol"  # users.yaml -> ..data/users.yaml, ..data -> ..<version>
    publish_projected(vol, {"users.yaml": users_yaml("remote-c2").encode()})
    mgr = UsersManager(admin, vol / "users.yaml", interval=0.02)
    mgr.start()
    try:
        async def users_are(expected: set[str]) -> bool:
            return set(managed(admin)) == expected

        await eventually(lambda: users_are({"remote-c2"}), what="first reconcile")
        publish_projected(vol, {"users.yaml": users_yaml("remote-c3", "remote-c5").encode()})
        await eventually(lambda: users_are({"remote-c3", "remote-c5"}), what="reconcile after swap")
    finally:
        await mgr.stop()
    assert not mgr.running


async def test_loop_survives_missing_file_and_etcd_errors(admin: MemoryAuthAdmin, manager: UsersManager,
                                                          eventually: Eventually) -> None:
    admin.users["remote-c2"] = {"remote"}
    manager.start()

    async def failed_on(text: str) -> bool:
        return text in manager.last_error

    await eventually(lambda: failed_on("FileNotFoundError"), what="missing file reported")
    assert managed(admin) == {"remote-c2": {"remote"}}  # a missing file deletes nothing
    admin.fail_on = {"user_add:remote-c9"}
    manager.path.write_text(users_yaml("remote-c2", "remote-c9"))
    await eventually(lambda: failed_on("remote-c9"), what="etcd failure reported")
    admin.fail_on = set()

    async def healed() -> bool:
        return set(managed(admin)) == {"remote-c2", "remote-c9"} and not manager.last_error

    await eventually(healed, what="retry after failure")
    assert manager.running


async def test_periodic_resync_undoes_hand_edits(admin: MemoryAuthAdmin, tmp_path: Path,
                                                 eventually: Eventually) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(users_yaml("remote-c2"))
    mgr = UsersManager(admin, path, interval=0.02, resync_interval=0.1)
    mgr.start()
    try:
        async def present() -> bool:
            return "remote-c2" in admin.users

        await eventually(present, what="first reconcile")
        del admin.users["remote-c2"]  # someone deleted it in etcd by hand
        await eventually(present, what="resync")
    finally:
        await mgr.stop()


async def test_start_twice_is_an_error(manager: UsersManager) -> None:
    manager.path.write_text("")
    manager.start()
    with pytest.raises(RuntimeError, match="already started"):
        manager.start()
