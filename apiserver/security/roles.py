"""The etcd users, roles and key-range permissions of a clustermesh etcd, as data.

Pure code: no I/O. ``clustermesh_auth_plan(cluster)`` is what ``etcdinit`` applies; the same table
tells the per-cluster users manager which names it must never touch, and lets tests ask "may
role X read key K?" without an etcd.
"""

from __future__ import annotations

from dataclasses import dataclass

from apiserver import paths
from apiserver.kvstore.etcd.auth import Grant, KeyRange, Permission

ROOT_USER = "root"
ROOT_ROLE = "root"  # built into etcd: it is granted, never created, and carries no key ranges
LOCAL_ROLE = "local"
REMOTE_ROLE = "remote"
REMOTE_USER = "remote"
REMOTE_USER_PREFIX = "remote-"  # per-cluster remote users: remote-<peer cluster>


@dataclass(frozen=True, slots=True)
class RoleSpec:
    name: str
    grants: tuple[Grant, ...] = ()
    builtin: bool = False  # etcd's own ``root``: never created nor given key ranges

    def may(self, permission: Permission, key: str) -> bool:
        """Whether this role alone allows ``permission`` on ``key`` (root allows everything)."""
        return all(self._allows(kind, key) for kind in _kinds(permission))

    def _allows(self, kind: Permission, key: str) -> bool:
        if self.builtin and self.name == ROOT_ROLE:
            return True
        return any(g.range.contains(key) and _covers(g.permission, kind) for g in self.grants)


def _kinds(permission: Permission) -> tuple[Permission, ...]:
    """READWRITE is checked as READ and WRITE, each of which may come from a different grant."""
    if permission is Permission.READWRITE:
        return (Permission.READ, Permission.WRITE)
    return (permission,)


def _covers(granted: Permission, kind: Permission) -> bool:
    return granted.allows_read if kind is Permission.READ else granted.allows_write


@dataclass(frozen=True, slots=True)
class UserSpec:
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthPlan:
    """Everything ``etcdinit`` creates, in creation order; auth is enabled after all of it."""

    roles: tuple[RoleSpec, ...]
    users: tuple[UserSpec, ...]

    def role(self, name: str) -> RoleSpec:
        for role in self.roles:
            if role.name == name:
                return role
        raise KeyError(name)

    def user(self, name: str) -> UserSpec:
        for user in self.users:
            if user.name == name:
                return user
        raise KeyError(name)

    @property
    def user_names(self) -> frozenset[str]:
        return frozenset(u.name for u in self.users)

    def may(self, user: str, permission: Permission, key: str) -> bool:
        """Whether ``user`` may perform ``permission`` on ``key`` through any of its roles."""
        roles = [self.role(r) for r in self.user(user).roles]
        return all(any(r.may(kind, key) for r in roles) for kind in _kinds(permission))


def username_for_cluster(base: str, cluster_name: str) -> str:
    """``admin-<cluster>``; just ``admin`` for an empty cluster name (no trailing hyphen)."""
    return f"{base}-{cluster_name}" if cluster_name else base


def admin_user(cluster_name: str) -> str:
    return username_for_cluster("admin", cluster_name)


def local_user(cluster_name: str) -> str:
    return username_for_cluster("local", cluster_name)


def remote_cluster_user(peer_cluster: str) -> str:
    """The per-cluster identity a peer uses with authMode ``cluster``: ``remote-<peer>``."""
    return REMOTE_USER_PREFIX + peer_cluster


def local_role_ranges() -> tuple[KeyRange, ...]:
    """What local agents read from the KVStoreMesh cache: heartbeat, cache, configs, canaries."""
    return (
        KeyRange.prefix(paths.HEARTBEAT_PATH, trailing_slash=False),
        KeyRange.prefix(paths.CACHE_PREFIX),
        KeyRange.prefix(paths.CLUSTER_CONFIG_PREFIX),
        KeyRange.prefix(paths.SYNCED_PREFIX),
    )


def remote_role_ranges(cluster_name: str) -> tuple[KeyRange, ...]:
    """What a remote agent or KVStoreMesh reads from this cluster: its state, and only this
    cluster's config and canaries (not the cache of *other* clusters)."""
    return (
        KeyRange.prefix(paths.HEARTBEAT_PATH, trailing_slash=False),
        KeyRange.prefix(paths.STATE_PREFIX),
        KeyRange.key(paths.join_key(paths.CLUSTER_CONFIG_PREFIX, cluster_name)),
        KeyRange.prefix(paths.join_key(paths.SYNCED_PREFIX, cluster_name)),
    )


def clustermesh_auth_plan(cluster_name: str) -> AuthPlan:
    """The users and roles of a clustermesh-apiserver etcd for the local cluster ``cluster_name``."""
    root = RoleSpec(ROOT_ROLE, builtin=True)
    local = RoleSpec(LOCAL_ROLE, tuple(Grant(Permission.READ, r) for r in local_role_ranges()))
    remote = RoleSpec(REMOTE_ROLE, tuple(Grant(Permission.READ, r) for r in remote_role_ranges(cluster_name)))
    return AuthPlan(
        roles=(root, local, remote),
        users=(
            UserSpec(ROOT_USER, (ROOT_ROLE,)),
            UserSpec(admin_user(cluster_name), (ROOT_ROLE,)),
            UserSpec(local_user(cluster_name), (LOCAL_ROLE,)),
            UserSpec(REMOTE_USER, (REMOTE_ROLE,)),
        ),
    )
