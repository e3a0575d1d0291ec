"""The role/permission table, checked as data (no etcd)."""

from __future__ import annotations

import pytest

from apiserver.security.roles import (
    KeyRange,
    Permission,
    clustermesh_auth_plan,
    local_role_ranges,
    remote_role_ranges,
    username_for_cluster,
)

READ, WRITE = Permission.READ, Permission.WRITE


def test_remote_ranges_are_the_upstream_ones() -> None:
    assert remote_role_ranges("c1") == (
        KeyRange("cilium/.heartbeat", "cilium/.heartbeau"),
        KeyRange("cilium/state/", "cilium/state0"),
        KeyRange("cilium/cluster-config/c1", ""),
        KeyRange("cilium/synced/c1/", "cilium/synced/c10"),
    )


def test_local_ranges_are_the_upstream_ones() -> None:
    assert local_role_ranges() == (
        KeyRange("cilium/.heartbeat", "cilium/.heartbeau"),
        KeyRange("cilium/cache/", "cilium/cache0"),
        KeyRange("cilium/cluster-config/", "cilium/cluster-config0"),
        KeyRange("cilium/synced/", "cilium/synced0"),
    )


def test_plan_users_and_roles() -> None:
    plan = clustermesh_auth_plan("c1")
    assert [(u.name, u.roles) for u in plan.users] == [
        ("root", ("root",)),
        ("admin-c1", ("root",)),
        ("local-c1", ("local",)),
        ("remote", ("remote",)),
    ]
    assert [r.name for r in plan.roles] == ["root", "local", "remote"]
    assert plan.role("root").builtin and not plan.role("root").grants
    for role in ("local", "remote"):
        assert {g.permission for g in plan.role(role).grants} == {READ}


@pytest.mark.parametrize(("base", "cluster", "expected"), [
    pytest.param("admin", "c1", "admin-c1", id="named"),
    pytest.param("admin", "", "admin", id="empty-name-no-trailing-hyphen"),
    pytest.param("local", "default", "local-default", id="default"),
])
def test_username_for_cluster(base: str, cluster: str, expected: str) -> None:
    assert username_for_cluster(base, cluster) == expected


@pytest.mark.parametrize(("user", "perm", "key", "allowed"), [
    pytest.param("remote", READ, "cilium/.heartbeat", True, id="remote-heartbeat"),
    pytest.param("remote", READ, "cilium/state/nodes/v1/c1/n1", True, id="remote-state"),
    pytest.param("remote", READ, "cilium/cluster-config/c1", True, id="remote-own-config"),
    pytest.param("remote", READ, "cilium/cluster-config/c2", False, id="remote-other-config"),
    pytest.param("remote", READ, "cilium/cluster-config/c10", False, id="remote-config-is-one-key"),
    pytest.param("remote", READ, "cilium/synced/c1/cilium/state/nodes/v1", True, id="remote-own-canary"),
    pytest.param("remote", READ, "cilium/synced/c10/x", False, id="remote-canary-prefix-is-path-aware"),
    pytest.param("remote", READ, "cilium/cache/nodes/v1/c2/n", False, id="remote-no-cache"),
    pytest.param("remote", WRITE, "cilium/state/nodes/v1/c1/n1", False, id="remote-no-write"),
    pytest.param("local-c1", READ, "cilium/cache/nodes/v1/c2/n", True, id="local-cache"),
    pytest.param("local-c1", READ, "cilium/cluster-config/c2", True, id="local-any-config"),
    pytest.param("local-c1", READ, "cilium/synced/c2/x", True, id="local-any-canary"),
    pytest.param("local-c1", READ, "cilium/state/nodes/v1/c1/n1", False, id="local-no-state"),
    pytest.param("local-c1", WRITE, "cilium/cache/x", False, id="local-no-write"),
    pytest.param("local-c1", READ, "cilium/.heartbeat2", True, id="heartbeat-range-is-a-prefix-as-upstream"),
    pytest.param("admin-c1", Permission.READWRITE, "anything", True, id="admin-is-root"),
    pytest.param("root", WRITE, "cilium/state/x", True, id="root"),
])
def test_who_may_do_what(user: str, perm: Permission, key: str, allowed: bool) -> None:
    assert clustermesh_auth_plan("c1").may(user, perm, key) is allowed


def test_key_range_contains() -> None:
    assert KeyRange.key("a/b").contains("a/b")
    assert not KeyRange.key("a/b").contains("a/bc")
    assert KeyRange.prefix("a").contains("a/x")
    assert not KeyRange.prefix("a").contains("ab")
    assert KeyRange.prefix("a", trailing_slash=False).contains("ab")
