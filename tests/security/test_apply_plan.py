"""``apply_auth_plan`` against the in-memory auth store: result, idempotence, convergence."""

from __future__ import annotations

from apiserver.kvstore.etcd.auth import Grant, KeyRange, Permission
from apiserver.security.etcd_setup import apply_auth_plan
from apiserver.security.roles import clustermesh_auth_plan
from localmesh.memory.auth import MemoryAuthAdmin


def _state(admin: MemoryAuthAdmin) -> tuple[dict[str, set[str]], dict[str, dict[KeyRange, Permission]]]:
    return ({u: set(r) for u, r in admin.users.items()}, {r: dict(p) for r, p in admin.roles.items()})


async def test_fresh_etcd_gets_the_plan(fake_admin: MemoryAuthAdmin) -> None:
    plan = clustermesh_auth_plan("c1")
    await apply_auth_plan(fake_admin, plan)
    assert fake_admin.users == {"root": {"root"}, "admin-c1": {"root"}, "local-c1": {"local"},
                                "remote": {"remote"}}
    assert set(fake_admin.roles) == {"local", "remote"}
    for role in ("local", "remote"):
        assert sorted(Grant(p, r) for r, p in fake_admin.roles[role].items()) == sorted(plan.role(role).grants)
    assert fake_admin.auth_enabled
    assert fake_admin.calls[-1] == "auth_enable:"


async def test_applying_twice_changes_nothing(fake_admin: MemoryAuthAdmin) -> None:
    plan = clustermesh_auth_plan("c1")
    await apply_auth_plan(fake_admin, plan)
    first, calls = _state(fake_admin), len(fake_admin.calls)
    await apply_auth_plan(fake_admin, plan)
    assert _state(fake_admin) == first
    assert fake_admin.calls[calls:] == ["auth_enable:"]  # nothing but the final auth enable


async def test_converges_from_a_drifted_state(fake_admin: MemoryAuthAdmin) -> None:
    fake_admin.users = {"root": set(), "remote": set()}
    fake_admin.roles = {"remote": {KeyRange("cilium/", "cilium0"): Permission.READWRITE,
                                   KeyRange("cilium/state/", "cilium/state0"): Permission.READWRITE}}
    plan = clustermesh_auth_plan("c1")
    await apply_auth_plan(fake_admin, plan)
    assert fake_admin.roles["remote"] == {g.range: g.permission for g in plan.role("remote").grants}
    assert fake_admin.users["root"] == {"root"} and fake_admin.users["remote"] == {"remote"}
