"""Per-cluster remote users: keep etcd's ``remote-<peer>`` users equal to the users file.

``UsersManager(client, path)`` reads the file (``--cluster-users-config-path``), creates missing
users without a password (the client certificate CN is the identity) and grants their role,
revokes roles the file no longer gives and deletes managed users that left the file. Refused
entries are logged and skipped; the rest is applied. ``start()`` polls the file's content (see
``apiserver.filewatch``) and reconciles on every change, retrying failures at the next poll, plus a full
resync now and then so hand edits in etcd are undone. Only ``remote-<cluster>`` names are ever
touched (``users_config.is_managed_user_name``), never ``root``/``admin-*``/``local-*``/``remote``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.filewatch import ContentWatcher, FileSnapshot, read_snapshot
from apiserver.security.roles import remote_cluster_user
from apiserver.security.users_config import (
    DEFAULT_ALLOWED_ROLES,
    RejectedEntry,
    UserChanges,
    is_managed_user_name,
    parse_users_config,
    plan_user_changes,
)

log = get_logger(__name__)

DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_RESYNC_INTERVAL = 300.0


class UserAdmin(Protocol):
    """The etcd auth operations the manager needs (``EtcdClient`` provides them)."""

    async def user_add(self, name: str, password: str | None = None) -> None: ...

    async def user_delete(self, name: str) -> None: ...

    async def user_list(self) -> list[str]: ...

    async def user_get(self, name: str) -> list[str]:
        """The user's roles."""
        ...

    async def user_grant_role(self, name: str, role: str) -> None: ...

    async def user_revoke_role(self, name: str, role: str) -> None: ...


class UsersReconcileError(RuntimeError):
    """Some changes could not be applied; the message lists them. The rest was applied."""


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    changes: UserChanges
    rejected: tuple[RejectedEntry, ...]


class UsersManager:
    """See the module docstring. Lifecycle: ``start()`` -> ``stop()``; ``reconcile_once()`` any time."""

    def __init__(self, client: UserAdmin, path: str | Path, *, interval: float = DEFAULT_POLL_INTERVAL,
                 resync_interval: float = DEFAULT_RESYNC_INTERVAL, cluster_name: str | None = None,
                 allowed_roles: Collection[str] = DEFAULT_ALLOWED_ROLES) -> None:
        self.client = client
        self.path = Path(path)
        self.interval = interval
        self.resync_interval = resync_interval
        self.allowed_roles = frozenset(allowed_roles)
        # A peer list usually names every cluster, this one included; it needs no user here.
        self._skip = frozenset({remote_cluster_user(cluster_name)} if cluster_name else ())
        self._watcher = ContentWatcher(self.path)
        self._task: asyncio.Task[None] | None = None
        self._last_error = ""
        self._last_success = 0.0

    # -- one pass ---------------------------------------------------------------------------

    async def reconcile_once(self) -> ReconcileResult:
        """Read the file now and make etcd match it. Raises ``OSError`` if the file cannot be
        read, ``UsersConfigError`` if it is unusable (nothing applied), ``UsersReconcileError``
        or a kvstore error if etcd refused some changes."""
        snapshot = await asyncio.to_thread(read_snapshot, self.path)
        result = await self._reconcile(snapshot)
        self._watcher.accept(snapshot)
        return result

    async def _reconcile(self, snapshot: FileSnapshot) -> ReconcileResult:
        config = parse_users_config(snapshot.data, allowed_roles=self.allowed_roles, skip=self._skip)
        for bad in config.rejected:
            log.error("Refusing invalid entry of the users configuration file", path=str(self.path),
                      index=bad.index, entry=bad.entry, reason=bad.reason)
        current = await self._managed_users()
        changes = plan_user_changes(config.users, current)
        failures = await self._apply(changes)
        if failures:
            raise UsersReconcileError("; ".join(failures))
        self._last_success = time.monotonic()
        return ReconcileResult(changes, config.rejected)

    async def _managed_users(self) -> dict[str, list[str]]:
        names = [n for n in await self.client.user_list() if is_managed_user_name(n)]
        roles = await asyncio.gather(*(self.client.user_get(n) for n in names))
        return dict(zip(names, roles, strict=True))

    async def _apply(self, changes: UserChanges) -> list[str]:
        """Apply every change, one user at a time; a failure does not stop the others."""
        client = self.client
        steps: list[tuple[str, str, Callable[[], Awaitable[None]]]] = []
        for u in changes.create:
            steps.append(("configured", u.name, functools.partial(self._create, u.name, u.role)))
        for u in changes.grant:
            steps.append(("granted its role", u.name, functools.partial(client.user_grant_role, u.name, u.role)))
        for name, role in changes.revoke:
            steps.append((f"revoked role {role}", name, functools.partial(client.user_revoke_role, name, role)))
        for name in changes.delete:
            steps.append(("removed", name, functools.partial(client.user_delete, name)))

        failures: list[str] = []
        for done, user, step in steps:
            try:
                await step()
            except Exception as exc:  # any kvstore/grpc failure: report it, keep going with the others
                log.error("Failed configuring user", user=user, change=done, error=str(exc))
                failures.append(f"{user} ({done}): {exc}")
            else:
                log.info(f"User successfully {done}", user=user)
        return failures

    async def _create(self, name: str, role: str) -> None:
        await self.client.user_add(name)  # no password: the certificate CN authenticates
        await self.client.user_grant_role(name, role)

    # -- the loop ---------------------------------------------------------------------------

    async def _poll(self) -> None:
        if time.monotonic() - self._last_success >= self.resync_interval:
            self._watcher.forget()
        snapshot = await asyncio.to_thread(self._watcher.poll)
        if snapshot is None:
            return
        await self._reconcile(snapshot)
        self._watcher.accept(snapshot)

    async def _run(self) -> None:
        log.info("Starting managing etcd users based on configuration", path=str(self.path))
        while True:
            try:
                await self._poll()
                if self._last_error:
                    log.info("etcd users management recovered", path=str(self.path))
                self._last_error = ""
            except Exception as exc:
                # Log each distinct failure once rather than every poll (missing file, etcd down).
                message = f"{type(exc).__name__}: {exc}"
                if message != self._last_error:
                    log.error("Failed to reconcile etcd users; will retry", path=str(self.path), error=message)
                self._last_error = message
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("UsersManager already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="clustermesh-users-management")
        self._task.add_done_callback(self._on_exit)

    @staticmethod
    def _on_exit(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("etcd users management stopped unexpectedly", error=repr(task.exception()))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        log.info("Stopping managing etcd users based on configuration", path=str(self.path))
        await cancel_and_wait(task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def last_error(self) -> str:
        return self._last_error
