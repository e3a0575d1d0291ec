"""``etcdinit``: turn an empty data dir into a clustermesh etcd with users, roles and auth on.

Steps (upstream ``clustermesh-apiserver/etcdinit``): empty the data dir (its
contents only), start a temporary etcd on localhost, apply ``roles.clustermesh_auth_plan``,
enable auth, stop etcd. The temporary etcd is stopped on every path out, including timeout and
cancellation. ``apply_auth_plan`` converges rather than assumes a blank etcd, so applying it
twice -- or to a half-initialised etcd -- leaves exactly the planned users, roles and ranges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from apiserver._logging import get_logger
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.etcd.auth import Grant, Permission
from apiserver.security.roles import AuthPlan, clustermesh_auth_plan
from apiserver.security.temp_etcd import (
    EtcdInitError,
    EtcdLaunch,
    TemporaryEtcd,
    resolve_etcd_binary,
    wipe_data_dir,
)
from apiserver.security.users import UserAdmin

log = get_logger(__name__)

__all__ = ["AuthAdmin", "EtcdInitConfig", "EtcdInitError", "apply_auth_plan", "connect_plain", "run_etcdinit"]

_READY_ATTEMPT_TIMEOUT = 2.0
_READY_POLL = 0.1


class AuthAdmin(UserAdmin, Protocol):
    """Role and auth administration on top of ``UserAdmin`` (``EtcdClient`` provides it)."""

    async def role_add(self, name: str) -> None: ...

    async def role_list(self) -> list[str]: ...

    async def role_get(self, name: str) -> list[Grant]: ...

    async def role_grant_permission(self, role: str, key: str, range_end: str, perm: Permission) -> None: ...

    async def role_revoke_permission(self, role: str, key: str, range_end: str) -> None: ...

    async def auth_enable(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EtcdInitConfig:
    data_dir: str = "/var/run/etcd"
    initial_cluster_token: str = "clustermesh-apiserver"
    etcd_cluster_name: str = "clustermesh-apiserver"
    cluster_name: str = "default"
    timeout: float = 120.0
    etcd_binary: str = "etcd"
    client_port: int = 2379
    peer_port: int = 2380


Connect = Callable[[str], Awaitable[AuthAdmin]]


async def connect_plain(endpoint: str) -> AuthAdmin:
    """The project's etcd client on the temporary etcd: plaintext, no auth (it is not on yet)."""
    config = EtcdConfig(endpoints=(endpoint,), dial_timeout=_READY_ATTEMPT_TIMEOUT,
                        request_timeout=_READY_ATTEMPT_TIMEOUT * 5)
    return await EtcdClient.connect(config, timeout=_READY_ATTEMPT_TIMEOUT)


async def apply_auth_plan(admin: AuthAdmin, plan: AuthPlan) -> None:
    """Create what is missing, grant what is lacking, revoke ranges the plan does not have."""
    roles = set(await admin.role_list())
    for role in plan.roles:
        if role.builtin:
            continue
        if role.name not in roles:
            log.debug("Adding etcd role", etcdRolename=role.name)
            await admin.role_add(role.name)
        have = set(await admin.role_get(role.name))
        want = set(role.grants)
        for grant in sorted(want - have):
            log.debug("Granting permission on a range of keys to an etcd role", etcdRolename=role.name,
                      etcdPermission=grant.permission.name, etcdRangeStart=grant.range.start,
                      etcdRangeEnd=grant.range.end)
            await admin.role_grant_permission(role.name, grant.range.start, grant.range.end, grant.permission)
        # etcd keys permissions by range: a range granted above replaced any other permission
        # type on it, so only ranges the plan does not name at all are left to revoke.
        wanted_ranges = {g.range for g in want}
        for stale in sorted({g.range for g in have} - wanted_ranges):
            log.info("Revoking unexpected permission from etcd role", etcdRolename=role.name,
                     etcdRangeStart=stale.start, etcdRangeEnd=stale.end)
            await admin.role_revoke_permission(role.name, stale.start, stale.end)

    users = set(await admin.user_list())
    for user in plan.users:
        log.info("Configuring user", etcdUsername=user.name)
        if user.name not in users:
            await admin.user_add(user.name)  # no password: the certificate CN authenticates
        granted = set(await admin.user_get(user.name))
        for role_name in user.roles:
            if role_name not in granted:
                log.debug("Granting role to etcd user", etcdUsername=user.name, etcdRolename=role_name)
                await admin.user_grant_role(user.name, role_name)

    # Last: from here on, this unauthenticated client is locked out.
    log.info("Performing post-init tasks")
    await admin.auth_enable()


async def _wait_ready(etcd: TemporaryEtcd, connect: Connect) -> AuthAdmin:
    """A client on the temporary etcd once it answers an auth call (which needs a raft leader)."""
    last = "no attempt yet"
    while True:
        etcd.check_running()
        admin: AuthAdmin | None = None
        try:
            async with asyncio.timeout(_READY_ATTEMPT_TIMEOUT):
                admin = await connect(etcd.launch.client_url)
            async with asyncio.timeout(_READY_ATTEMPT_TIMEOUT):
                await admin.user_list()
            return admin
        except BaseException as exc:
            if admin is not None:
                await admin.close()
            if not isinstance(exc, Exception):  # cancelled: stop waiting
                raise
            last = f"{type(exc).__name__}: {exc}"  # not up yet: refused, no leader, timed out
        log.debug("Waiting for the temporary etcd", reason=last)
        await asyncio.sleep(_READY_POLL)


async def run_etcdinit(config: EtcdInitConfig, connect: Connect = connect_plain) -> None:
    """The whole ``etcdinit`` run. Raises ``EtcdInitError`` with a clear message on failure."""
    started = time.monotonic()
    binary = resolve_etcd_binary(config.etcd_binary)
    log.info("Deleting contents of data directory", etcdDataDir=config.data_dir)
    wipe_data_dir(config.data_dir)
    launch = EtcdLaunch(binary=binary, data_dir=config.data_dir, name=config.etcd_cluster_name,
                        initial_cluster_token=config.initial_cluster_token,
                        client_port=config.client_port, peer_port=config.peer_port)
    plan = clustermesh_auth_plan(config.cluster_name)
    deadline = asyncio.timeout(config.timeout)
    async with TemporaryEtcd(launch) as etcd:
        try:
            async with deadline:
                admin = await _wait_ready(etcd, connect)
                try:
                    log.info("Starting etcd init", clusterName=config.cluster_name)
                    await apply_auth_plan(admin, plan)
                finally:
                    await admin.close()
        except TimeoutError as exc:
            if not deadline.expired():
                raise EtcdInitError(f"failed to initialise etcd: timed out: {exc}") from exc
            raise EtcdInitError(
                f"etcdinit did not finish within {config.timeout:g}s (raise --timeout / CILIUM_TIMEOUT); "
                f"etcd's last output:\n{etcd.output_tail()}") from exc
        except EtcdInitError:
            raise
        except Exception as exc:
            etcd.check_running()
            raise EtcdInitError(f"failed to initialise etcd: {type(exc).__name__}: {exc}") from exc
    log.info("Etcd init completed", duration=f"{time.monotonic() - started:.2f}s")
