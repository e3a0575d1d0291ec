"""The development PKI: CA constraints, SANs, key usages, CN identity, expiry and file output."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from apiserver.security.pki import generate_ca, issue_cert, write_ca_bundle
from localmesh.testing.etcd import SERVER_SANS, EtcdTLS


def test_server_cert_is_signed_by_ca_with_sans_and_usages() -> None:
    ca = generate_ca("cilium-ca")
    server = issue_cert(ca, "clustermesh-apiserver.cilium.io", SERVER_SANS, server=True, client=False)
    server.cert.verify_directly_issued_by(ca.cert)
    san = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("127.0.0.1"),
                                                            ipaddress.ip_address("::1")}
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "clustermesh-apiserver.cilium.io",
                                                          "*.mesh.cilium.io"}
    eku = server.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_client_cert_cn_is_the_user() -> None:
    ca = generate_ca()
    client = issue_cert(ca, "admin-cluster1")
    assert client.common_name == "admin-cluster1"
    eku = client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(client.key, ec.EllipticCurvePrivateKey)


def test_expired_and_invalid_validity() -> None:
    ca = generate_ca()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    expired = issue_cert(ca, "old", not_after=past)
    assert expired.cert.not_valid_after_utc < dt.datetime.now(dt.UTC)
    assert expired.cert.not_valid_before_utc < expired.cert.not_valid_after_utc
    with pytest.raises(ValueError, match="validity is empty"):
        issue_cert(ca, "x", not_before=past, not_after=past)
    with pytest.raises(ValueError, match="at least one"):
        issue_cert(ca, "x", client=False)


def test_write_files_and_bundle(tmp_path: Path) -> None:
    ca, other = generate_ca("a"), generate_ca("b")
    files = issue_cert(ca, "root").write(tmp_path / "out", "tls")
    assert x509.load_pem_x509_certificate(files.cert_file.read_bytes()).subject == issue_cert(ca, "root").cert.subject
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    bundle = write_ca_bundle(tmp_path / "bundle.crt", ca, other)
    assert len(x509.load_pem_x509_certificates(bundle.read_bytes())) == 2


def test_etcd_tls_layout(tmp_path: Path) -> None:
    tls = EtcdTLS(tmp_path)
    assert tls.ca_file.exists() and tls.server.cert_file.exists() and tls.server.key_file.exists()
    remote = tls.client("remote")
    assert tls.client("remote") == remote  # issued once
    assert remote.cert_file.name == "client-remote.crt"
    config = tls.client_config("remote", ["https://127.0.0.1:2379"])
    text = config.read_text()
    assert "trusted-ca-file" in text and str(remote.key_file) in text
    owned = EtcdTLS()
    owned.cleanup()
    assert not owned.directory.exists()
