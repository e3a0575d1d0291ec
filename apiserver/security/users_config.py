"""The per-cluster remote users file and the changes it calls for. Pure: no I/O.

The file is the ConfigMap ``clustermesh-remote-users``::

    users:
    - name: remote-cluster2
      role: remote

``parse_users_config`` keeps the good entries and explains each refused one, so one typo does not
stop every other peer from connecting. ``plan_user_changes`` compares the wanted users with the
managed users etcd has and returns what to create, grant, revoke and delete. Only names of the
form ``remote-<valid cluster name>`` are ever managed, which keeps ``root``, ``admin-<C>``,
``local-<C>`` and ``remote`` out of reach by construction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from apiserver.clusterinfo import InvalidClusterInfo, validate_cluster_name
from apiserver.security.roles import REMOTE_ROLE, REMOTE_USER_PREFIX

DEFAULT_USERS_CONFIG_PATH = "/var/lib/cilium/etcd-config/users.yaml"
DEFAULT_ALLOWED_ROLES: frozenset[str] = frozenset({REMOTE_ROLE})


class UsersConfigError(ValueError):
    """The whole file is unusable (bad YAML, wrong shape): nothing may be applied from it."""


@dataclass(frozen=True, slots=True, order=True)
class DesiredUser:
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    index: int  # position in the ``users`` list
    entry: str  # the entry as written, for the log line
    reason: str


@dataclass(frozen=True, slots=True)
class UsersConfig:
    users: tuple[DesiredUser, ...]
    rejected: tuple[RejectedEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class UserChanges:
    create: tuple[DesiredUser, ...] = ()  # add the user (no password), then grant its role
    grant: tuple[DesiredUser, ...] = ()  # existing user lacks its role
    revoke: tuple[tuple[str, str], ...] = ()  # (user, role) the file no longer gives
    delete: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.create or self.grant or self.revoke or self.delete)


def is_managed_user_name(name: str) -> bool:
    """``remote-<cluster>`` with a valid cluster name: the only users this manager creates or deletes."""
    if not name.startswith(REMOTE_USER_PREFIX):
        return False
    try:
        validate_cluster_name(name[len(REMOTE_USER_PREFIX):])
    except InvalidClusterInfo:
        return False
    return True


def _check_entry(raw: Any, allowed_roles: Collection[str]) -> DesiredUser | str:
    """The user an entry asks for, or why it is refused."""
    if not isinstance(raw, dict):
        return "entry is not a mapping with name and role"
    name, role = raw.get("name"), raw.get("role")
    if not isinstance(name, str) or not name:
        return "missing user name"
    if not is_managed_user_name(name):
        return (f"invalid user name {name!r}: must be {REMOTE_USER_PREFIX}<cluster name> "
                "(lower case alphanumerics and '-', at most 32 characters)")
    if not isinstance(role, str) or not role:
        return "missing role"
    if role not in allowed_roles:
        return f"unknown role {role!r} (allowed: {', '.join(sorted(allowed_roles))})"
    return DesiredUser(name, role)


def parse_users_config(text: str | bytes, *, allowed_roles: Collection[str] = DEFAULT_ALLOWED_ROLES,
                       skip: Collection[str] = ()) -> UsersConfig:
    """Parse the users file. An empty file means "no users" (as upstream's YAML decoding does).

    ``skip`` names users to leave out silently (the local cluster's own ``remote-<C>``).
    A user listed twice keeps its first entry; a later entry with another role is refused.
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsersConfigError(f"invalid YAML: {exc}") from exc
    if doc is None:
        return UsersConfig(())
    if not isinstance(doc, dict):
        raise UsersConfigError("the file must be a mapping with a 'users' list")
    entries = doc.get("users") or []
    if not isinstance(entries, list):
        raise UsersConfigError("'users' must be a list")

    users: dict[str, DesiredUser] = {}
    rejected: list[RejectedEntry] = []
    for index, raw in enumerate(entries):
        checked = _check_entry(raw, allowed_roles)
        if isinstance(checked, DesiredUser):
            first = users.get(checked.name)
            if first is not None and first.role != checked.role:
                checked = f"duplicate user {checked.name!r} with a different role ({first.role!r} first)"
            elif checked.name in skip or first is not None:
                continue
            else:
                users[checked.name] = checked
                continue
        rejected.append(RejectedEntry(index, repr(raw), checked))
    return UsersConfig(tuple(users.values()), tuple(rejected))


def plan_user_changes(desired: Collection[DesiredUser],
                      current: Mapping[str, Collection[str]]) -> UserChanges:
    """What to do so that the managed users of etcd are exactly ``desired``.

    ``current`` maps each user etcd has to its roles; users that are not managed names are
    ignored whatever they are, so they can never be revoked or deleted.
    """
    wanted = {u.name: u for u in desired}
    managed = {name: set(roles) for name, roles in current.items() if is_managed_user_name(name)}
    create = tuple(sorted(u for n, u in wanted.items() if n not in managed))
    grant = tuple(sorted(u for n, u in wanted.items() if n in managed and u.role not in managed[n]))
    revoke = tuple(sorted((n, r) for n, roles in managed.items() if n in wanted
                          for r in roles if r != wanted[n].role))
    delete = tuple(sorted(n for n in managed if n not in wanted))
    return UserChanges(create, grant, revoke, delete)
