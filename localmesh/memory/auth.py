"""An in-memory etcd auth store behind the ``AuthAdmin`` protocol, for fast tests of etcdinit and
the users manager. It follows the etcd rules those depend on; it is not an etcd (no RBAC checks
on keys: the real-etcd tests cover those).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apiserver.kvstore.etcd.auth import Grant, KeyRange, Permission


class AuthStoreError(Exception):
    """What etcd would refuse (duplicate or unknown names, auth without root)."""


@dataclass
class MemoryAuthAdmin:
    """etcd's auth rules that matter here: duplicate adds and unknown names fail, ``root`` is a
    built-in role, a grant on an existing range replaces its permission, auth needs root."""

    users: dict[str, set[str]] = field(default_factory=dict)
    roles: dict[str, dict[KeyRange, Permission]] = field(default_factory=dict)
    auth_enabled: bool = False
    calls: list[str] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)  # "method:name" entries that raise

    def _call(self, method: str, name: str) -> None:
        self.calls.append(f"{method}:{name}")
        if f"{method}:{name}" in self.fail_on:
            raise AuthStoreError(f"injected failure in {method}({name})")

    async def user_add(self, name: str, password: str | None = None) -> None:
        self._call("user_add", name)
        if name in self.users:
            raise AuthStoreError("etcdserver: user name already exists")
        self.users[name] = set()

    async def user_delete(self, name: str) -> None:
        self._call("user_delete", name)
        if self.users.pop(name, None) is None:
            raise AuthStoreError("etcdserver: user name not found")

    async def user_list(self) -> list[str]:
        return sorted(self.users)

    async def user_get(self, name: str) -> list[str]:
        if name not in self.users:
            raise AuthStoreError("etcdserver: user name not found")
        return sorted(self.users[name])

    async def user_grant_role(self, name: str, role: str) -> None:
        self._call("user_grant_role", name)
        if name not in self.users:
            raise AuthStoreError("etcdserver: user name not found")
        if role != "root" and role not in self.roles:
            raise AuthStoreError("etcdserver: role name not found")
        self.users[name].add(role)

    async def user_revoke_role(self, name: str, role: str) -> None:
        self._call("user_revoke_role", name)
        self.users[name].discard(role)

    async def role_add(self, name: str) -> None:
        self._call("role_add", name)
        if name in self.roles:
            raise AuthStoreError("etcdserver: role name already exists")
        self.roles[name] = {}

    async def role_list(self) -> list[str]:
        return sorted(self.roles)

    async def role_get(self, name: str) -> list[Grant]:
        return sorted(Grant(p, r) for r, p in self.roles[name].items())

    async def role_grant_permission(self, role: str, key: str, range_end: str, perm: Permission) -> None:
        self._call("role_grant_permission", role)
        self.roles[role][KeyRange(key, range_end)] = perm

    async def role_revoke_permission(self, role: str, key: str, range_end: str) -> None:
        self._call("role_revoke_permission", role)
        del self.roles[role][KeyRange(key, range_end)]

    async def auth_enable(self) -> None:
        self._call("auth_enable", "")
        if "root" not in self.users.get("root", set()):
            raise AuthStoreError("etcdserver: root user does not have root role")
        self.auth_enabled = True

    async def close(self) -> None:
        pass
