"""Certificate rotation without a restart: files replaced on disk (the kubelet's ``..data`` swap)
are used by the next connection; etcd serves a replaced server certificate on the next handshake.

To make "which certificate did the server see" observable, the rotated client certificate
carries another CN (``remote`` -> ``admin-c1``): the same connection code then gains write access.
"""

from __future__ import annotations

from pathlib import Path

from meshtest import MeshEtcd, peer_certificate_serial, publish_projected

from apiserver.kvstore import PermissionDeniedError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.security.devpki import SERVER_CN, atomic_write, load_ca
from apiserver.security.pki import issue_cert
from localmesh.testing.etcd import SERVER_SANS

KEY = "cilium/state/nodes/v1/c1/rotation"


def secret_files(pki: Path, identity: str) -> dict[str, bytes]:
    return {name: (pki / identity / name).read_bytes() for name in ("ca.crt", "tls.crt", "tls.key")}


def mounted_config(mesh: MeshEtcd, volume: Path) -> EtcdConfig:
    """What the image's etcd-config.yaml says: fixed paths inside the mounted Secret volume."""
    return EtcdConfig(endpoints=(mesh.server.client_url,), trusted_ca_file=str(volume / "ca.crt"),
                      cert_file=str(volume / "tls.crt"), key_file=str(volume / "tls.key"),
                      dial_timeout=3.0, request_timeout=5.0)


async def can_write(client: EtcdClient) -> bool:
    try:
        await client.put(KEY, b"x")
    except PermissionDeniedError:
        return False
    await client.delete(KEY)
    return True


async def test_new_connections_use_the_rotated_client_certificate(mesh_etcd: MeshEtcd, tmp_path: Path) -> None:
    volume = tmp_path / "etcd-secrets"
    publish_projected(volume, secret_files(mesh_etcd.pki, "remote"))
    config = mounted_config(mesh_etcd, volume)

    async with await EtcdClient.connect(config) as before:
        assert not await can_write(before)
        publish_projected(volume, secret_files(mesh_etcd.pki, "admin-c1"))  # the Secret is updated

        # Same process, same configuration: a new connection presents the new certificate.
        async with await EtcdClient.connect(config) as after:
            assert await can_write(after)

        # An open connection keeps the certificate it was established with...
        assert not await can_write(before)
        # ...until the client replaces its channel (as it does after any connection failure):
        # the replacement reads the files again.
        before.transport.failed(before.transport.current())
        assert await can_write(before)


async def test_rotation_with_the_same_identity_keeps_working(mesh_etcd: MeshEtcd, tmp_path: Path) -> None:
    """The usual case: a fresh certificate for the same CN, e.g. before the old one expires."""
    volume = tmp_path / "etcd-secrets"
    publish_projected(volume, secret_files(mesh_etcd.pki, "remote"))
    ca = load_ca(mesh_etcd.pki / "ca.crt", mesh_etcd.pki / "ca.key")
    fresh = issue_cert(ca, "remote")
    publish_projected(volume, {"ca.crt": ca.cert_pem(), "tls.crt": fresh.cert_pem(), "tls.key": fresh.key_pem()})
    assert (volume / "tls.crt").read_bytes() == fresh.cert_pem()
    async with await EtcdClient.connect(mounted_config(mesh_etcd, volume)) as client:
        kvs, _ = await client.list_prefix("cilium/state/")
        assert kvs
        assert not await can_write(client)


async def test_etcd_serves_a_replaced_server_certificate(mesh_etcd: MeshEtcd) -> None:
    tls = mesh_etcd.server.tls
    assert tls is not None
    url, ca_file = mesh_etcd.server.client_url, mesh_etcd.pki / "ca.crt"
    before = peer_certificate_serial(url, ca_file)
    renewed = issue_cert(tls.ca, SERVER_CN, SERVER_SANS, server=True, client=True)
    atomic_write(tls.server.key_file, renewed.key_pem(), 0o600)
    atomic_write(tls.server.cert_file, renewed.cert_pem())
    after = peer_certificate_serial(url, ca_file)
    assert before != after == renewed.cert.serial_number
    async with await mesh_etcd.connect("admin-c1") as admin:  # and clients still connect
        assert await can_write(admin)
