"""EtcdClient with TLS client certificates (CN = etcd user) and RBAC, and with password auth."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest

from apiserver.kvstore import PermissionDeniedError, UnavailableError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig, EtcdTLSError
from apiserver.kvstore.etcd.auth import Grant, KeyRange, Permission
from apiserver.kvstore.options import KVStoreOptions
from apiserver.security.pki import generate_ca
from localmesh.testing.etcd import EtcdServer, EtcdTLS


async def test_certificate_identity_and_rbac(etcd_tls_shared: EtcdServer, etcd_prefix: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, role = f"reader-{suffix}", f"readonly-{suffix}"
    readable = f"{etcd_prefix}readable/"
    async with await EtcdClient.connect(etcd_tls_shared.etcd_config()) as root:
        await root.put(f"{readable}k", b"v")
        await root.put(f"{etcd_prefix}secret", b"s")
        await root.role_add(role)
        await root.role_grant_permission(role, readable, KeyRange.prefix(readable).end, Permission.READ)
        await root.role_grant_permission(role, f"{etcd_prefix}single", "", Permission.READWRITE)
        await root.user_add(user)  # no password: only the certificate CN authenticates
        await root.user_grant_role(user, role)
        try:
            assert await root.user_get(user) == [role]
            assert user in await root.user_list() and role in await root.role_list()
            assert sorted(await root.role_get(role)) == sorted([
                Grant(Permission.READ, KeyRange.prefix(readable)),
                Grant(Permission.READWRITE, KeyRange.key(f"{etcd_prefix}single"))])

            async with await EtcdClient.connect(etcd_tls_shared.etcd_config(user)) as reader:
                kvs, _ = await reader.list_prefix(readable)
                assert [kv.value for kv in kvs] == [b"v"]
                await reader.put(f"{etcd_prefix}single", b"ok")
                with pytest.raises(PermissionDeniedError):
                    await reader.put(f"{readable}k", b"write")
                with pytest.raises(PermissionDeniedError):
                    await reader.get(f"{etcd_prefix}secret")
                with pytest.raises(PermissionDeniedError):
                    await anext(reader.watch(f"{etcd_prefix}"))
                with pytest.raises(PermissionDeniedError):
                    await reader.user_list()

            await root.role_revoke_permission(role, f"{etcd_prefix}single", "")
            await root.user_revoke_role(user, role)
            assert await root.user_get(user) == []
        finally:
            await root.user_delete(user)
            await root.role_delete(role)
        assert user not in await root.user_list()


async def test_tls_without_client_certificate_is_refused(etcd_tls_shared: EtcdServer) -> None:
    with pytest.raises(UnavailableError, match="TLS handshake"):
        await EtcdClient.connect(etcd_tls_shared.etcd_config(user=None), timeout=0.5)


async def test_untrusted_server_certificate(etcd_tls_shared: EtcdServer, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(generate_ca("someone-else").cert_pem())
    with pytest.raises(UnavailableError, match="TLS handshake"):
        await EtcdClient.connect(etcd_tls_shared.etcd_config(trusted_ca_file=str(other_ca)), timeout=0.5)


async def test_bad_tls_files_are_reported_before_dialing(etcd_tls_shared: EtcdServer, etcd_pki: EtcdTLS) -> None:
    expired = etcd_pki.issue("root", "expired-root", not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    config = etcd_tls_shared.etcd_config(cert_file=str(expired.cert_file), key_file=str(expired.key_file))
    with pytest.raises(EtcdTLSError, match="expired"):
        await EtcdClient.connect(config, timeout=1)
    with pytest.raises(EtcdTLSError, match="does not exist"):
        await EtcdClient.connect(etcd_tls_shared.etcd_config(trusted_ca_file="/nonexistent/ca.crt"), timeout=1)


async def test_connect_from_kvstore_opts(etcd_tls_shared: EtcdServer, etcd_pki: EtcdTLS) -> None:
    path = etcd_pki.client_config("root", [etcd_tls_shared.endpoint])  # the etcd-config.yaml layout
    config = EtcdConfig.from_options(KVStoreOptions.parse({"etcd.config": str(path), "etcd.qps": "100"}))
    async with await EtcdClient.connect(config) as client:
        assert (await client.status()).cluster_id == client.cluster_id


async def test_rotated_client_certificate_applies_on_reconnect(etcd_tls_server: EtcdServer,
                                                               etcd_pki: EtcdTLS) -> None:
    prefix = f"rot-{uuid.uuid4().hex[:8]}"
    files = etcd_pki.issue("nobody", prefix)  # a CN with no user: every request is refused
    config = etcd_tls_server.etcd_config(cert_file=str(files.cert_file), key_file=str(files.key_file))
    async with await EtcdClient.connect(config) as client:
        with pytest.raises(PermissionDeniedError):
            await client.put("k", b"v")
        etcd_pki.issue("root", prefix)  # the Secret is updated in place
        await etcd_tls_server.restart()  # connections drop; the client dials again
        await client.put("k", b"v")  # retried on a fresh channel that read the new files
        kv = await client.get("k")
        assert kv is not None and kv.value == b"v"


# ---- password auth ------------------------------------------------------------------------------

async def test_password_auth_reauthenticates_after_idle_token_expiry() -> None:
    with EtcdServer(auth=True, extra_args=["--auth-token-ttl", "2"], name="token") as srv:
        async with await EtcdClient.connect(srv.etcd_config()) as client:
            await client.put("k", b"v1")
            stale = client.token
            assert stale
            # Idle time is the behaviour under test (any request, even a probe, would reset the
            # token's TTL), so this waits instead of polling: TTL 2 s + etcd's 1 s expiry tick.
            await asyncio.sleep(3.5)
            await client.put("k", b"v2")
            assert client.token and client.token != stale
            kv = await client.get("k")
            assert kv is not None and kv.value == b"v2"


async def test_watch_reauthenticates_after_restart_invalidated_tokens() -> None:
    with EtcdServer(auth=True, name="token-watch") as srv:
        async with await EtcdClient.connect(srv.etcd_config()) as client:
            rev = await client.put("k", b"v1")
            stale = client.token
            await srv.restart()  # simple tokens live in etcd's memory only
            # etcd 3.4 reports an unknown token on watch creation as a cancel ("permission denied").
            watch = client.watch("k", start_revision=rev, progress_notify=False)
            try:
                batch = await anext(watch)
                assert [e.value for e in batch.events] == [b"v1"]
            finally:
                await watch.aclose()
            assert client.token != stale


async def test_password_auth_errors() -> None:
    with EtcdServer(auth=True, name="pw") as srv:
        with pytest.raises(PermissionDeniedError, match="authentication as 'root' failed"):
            await EtcdClient.connect(srv.etcd_config(password="wrong"), timeout=5)
        # No credentials at all against an auth-enabled etcd.
        async with await EtcdClient.connect(EtcdConfig(endpoints=(srv.endpoint,))) as anonymous:
            with pytest.raises(PermissionDeniedError):
                await anonymous.put("k", b"v")
