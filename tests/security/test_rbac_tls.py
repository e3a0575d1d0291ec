"""Each etcd identity, with its own certificate, against a real etcd set up by our etcdinit.

etcd runs with TLS, ``--client-cert-auth`` and auth on; the certificate CN is the user.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from meshtest import SEED, MeshEtcd, tls_probe

from apiserver.kvstore import Compare, Delete, PermissionDeniedError, Put, UnavailableError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig, EtcdTLSError
from apiserver.security.devpki import load_ca
from apiserver.security.pki import generate_ca, issue_cert


@pytest.fixture
async def admin(mesh_etcd: MeshEtcd) -> AsyncIterator[EtcdClient]:
    async with await mesh_etcd.connect("admin-c1") as client:
        yield client


async def can_read(client: EtcdClient, target: str) -> bool:
    """Read one key, or a whole prefix when ``target`` ends with ``/``."""
    try:
        if target.endswith("/"):
            kvs, _ = await client.list_prefix(target)
            assert kvs == [] or all(kv.key.startswith(target) for kv in kvs)
        else:
            kv = await client.get(target)
            assert kv is None or kv.value == SEED[target].encode()
    except PermissionDeniedError:
        return False
    return True


READS = [
    # What a remote agent / KVStoreMesh of another cluster needs, and nothing more.
    ("remote", "cilium/.heartbeat", True),
    ("remote", "cilium/state/", True),
    ("remote", "cilium/state/nodes/v1/c1/", True),
    ("remote", "cilium/state/identities/v1/", True),
    ("remote", "cilium/state/ip/v1/default/", True),
    ("remote", "cilium/state/services/v1/c1/", True),
    ("remote", "cilium/cluster-config/c1", True),
    ("remote", "cilium/synced/c1/", True),
    ("remote", "cilium/cluster-config/c2", False),
    ("remote", "cilium/cluster-config/", False),
    ("remote", "cilium/synced/", False),
    ("remote", "cilium/synced/c2/", False),
    ("remote", "cilium/cache/", False),
    ("remote", "cilium/cache/nodes/v1/c2/", False),
    ("remote", "unrelated/secret", False),
    # Local agents read the KVStoreMesh cache only.
    ("local-c1", "cilium/.heartbeat", True),
    ("local-c1", "cilium/cache/", True),
    ("local-c1", "cilium/cluster-config/", True),
    ("local-c1", "cilium/cluster-config/c2", True),
    ("local-c1", "cilium/synced/", True),
    ("local-c1", "cilium/state/", False),
    ("local-c1", "cilium/state/nodes/v1/c1/n1", False),
    ("local-c1", "unrelated/secret", False),
    ("admin-c1", "cilium/", True),
    ("admin-c1", "unrelated/secret", True),
]


@pytest.mark.parametrize(("identity", "target", "allowed"),
                         [pytest.param(*r, id=f"{r[0]}-{r[1]}") for r in READS])
async def test_reads(mesh_etcd: MeshEtcd, identity: str, target: str, allowed: bool) -> None:
    async with await mesh_etcd.connect(identity) as client:
        assert await can_read(client, target) is allowed


async def test_remote_sees_the_data_it_needs(mesh_etcd: MeshEtcd) -> None:
    async with await mesh_etcd.connect("remote") as client:
        kvs, _ = await client.list_prefix("cilium/state/")
        assert {kv.key for kv in kvs} == {k for k in SEED if k.startswith("cilium/state/")}


@pytest.mark.parametrize("identity", ["remote", "local-c1"])
async def test_read_only_identities_can_write_nothing(mesh_etcd: MeshEtcd, admin: EtcdClient,
                                                      identity: str) -> None:
    node = "cilium/state/nodes/v1/c1/n1"
    writes = {
        "put": lambda c: c.put(node, b"evil"),
        "put-cache": lambda c: c.put("cilium/cache/nodes/v1/c2/n9", b"evil"),
        "delete": lambda c: c.delete(node),
        "delete-prefix": lambda c: c.delete_prefix("cilium/"),
        "txn": lambda c: c.txn([], [Put(node, b"evil")]),
        "txn-compare": lambda c: c.txn([Compare(node, "mod", ">", 0)], [Delete(node)]),
        "apply": lambda c: c.apply([Put("cilium/.heartbeat", b"evil")]),
        "lease-put": lambda c: c.put("cilium/.heartbeat", b"evil", lease=0),
    }
    async with await mesh_etcd.connect(identity) as client:
        for name, write in writes.items():
            with pytest.raises(PermissionDeniedError):
                await write(client)
                pytest.fail(f"{identity} could {name}")
    kvs, _ = await admin.list_prefix("")
    assert {kv.key: kv.value.decode() for kv in kvs if kv.key in SEED} == SEED


async def test_admin_can_write(admin: EtcdClient) -> None:
    key = "cilium/state/nodes/v1/c1/admin-test"
    assert await admin.txn([Compare(key, "create", "=", 0)], [Put(key, b"x")])
    assert (await admin.get(key)) is not None
    assert await admin.delete(key) == 1


async def test_remote_can_watch_its_prefixes_only(mesh_etcd: MeshEtcd, admin: EtcdClient) -> None:
    async with await mesh_etcd.connect("remote") as client:
        # Replay from the write's revision: deterministic, no race with watch creation.
        revision = await admin.put("cilium/state/nodes/v1/c1/watched", b"w")
        watch = client.watch("cilium/state/nodes/v1/c1/", start_revision=revision, progress_notify=False)
        try:
            batch = await asyncio.wait_for(watch.__anext__(), 10)
            assert [e.key for e in batch.events] == ["cilium/state/nodes/v1/c1/watched"]
        finally:
            await watch.aclose()
            await admin.delete("cilium/state/nodes/v1/c1/watched")
        denied = client.watch("cilium/cache/", progress_notify=False)
        try:
            with pytest.raises(PermissionDeniedError):
                await asyncio.wait_for(denied.__anext__(), 10)
        finally:
            await denied.aclose()


# -- refused certificates ---------------------------------------------------------------------

def _config(mesh: MeshEtcd, cert: Path | None = None, key: Path | None = None) -> EtcdConfig:
    return EtcdConfig(endpoints=(mesh.server.client_url,), trusted_ca_file=str(mesh.pki / "ca.crt"),
                      cert_file=str(cert) if cert else None, key_file=str(key) if key else None,
                      dial_timeout=1.0, request_timeout=3.0)


async def test_no_client_certificate_is_refused(mesh_etcd: MeshEtcd) -> None:
    with pytest.raises(UnavailableError, match="TLS handshake problem"):
        await EtcdClient.connect(_config(mesh_etcd))
    assert tls_probe(mesh_etcd.server.client_url, mesh_etcd.pki / "ca.crt").startswith("refused")


async def test_certificate_from_another_ca_is_refused(mesh_etcd: MeshEtcd, tmp_path: Path) -> None:
    files = issue_cert(generate_ca("impostor-ca"), "admin-c1").write(tmp_path, "impostor")
    with pytest.raises(UnavailableError, match="TLS handshake problem"):
        await EtcdClient.connect(_config(mesh_etcd, files.cert_file, files.key_file))
    assert tls_probe(mesh_etcd.server.client_url, mesh_etcd.pki / "ca.crt", files.cert_file,
                     files.key_file).startswith("refused")


async def test_expired_certificate_is_refused(mesh_etcd: MeshEtcd, tmp_path: Path) -> None:
    ca = load_ca(mesh_etcd.pki / "ca.crt", mesh_etcd.pki / "ca.key")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    files = issue_cert(ca, "admin-c1", not_before=past - dt.timedelta(days=1), not_after=past).write(
        tmp_path, "expired")
    # Our client refuses to present it, naming the file and the expiry...
    with pytest.raises(EtcdTLSError, match=r"expired\.crt expired at"):
        await EtcdClient.connect(_config(mesh_etcd, files.cert_file, files.key_file))
    # ...and etcd refuses it too when it is presented anyway; the same CN with a valid
    # certificate is accepted (the control).
    url, ca_file = mesh_etcd.server.client_url, mesh_etcd.pki / "ca.crt"
    assert tls_probe(url, ca_file, files.cert_file, files.key_file).startswith("refused")
    admin = mesh_etcd.pki / "admin-c1"
    assert tls_probe(url, ca_file, admin / "tls.crt", admin / "tls.key") == "accepted"


async def test_certificate_of_unknown_user_gets_nothing(mesh_etcd: MeshEtcd, tmp_path: Path) -> None:
    # The CA signed it, so the handshake succeeds, but no etcd user has this name.
    ca = load_ca(mesh_etcd.pki / "ca.crt", mesh_etcd.pki / "ca.key")
    files = issue_cert(ca, "nobody").write(tmp_path, "nobody")
    async with await EtcdClient.connect(_config(mesh_etcd, files.cert_file, files.key_file)) as client:
        with pytest.raises(PermissionDeniedError, match="permission denied"):
            await client.get("cilium/.heartbeat")
        with pytest.raises(PermissionDeniedError):
            await client.put("cilium/.heartbeat", b"x")
