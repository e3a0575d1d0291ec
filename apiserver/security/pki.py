"""A small X.509 PKI for development and tests: a CA, server certificates and client certificates.

etcd authenticates clustermesh clients by the certificate's common name (the CN is the etcd user),
so everything here is about getting CNs, SANs and key usages right. Keys are EC P-256: generating
them takes well under a millisecond, which keeps per-test PKIs cheap.

This module never touches the network and only writes files when ``CertKey.write`` is called.
It is not meant to guard production secrets (keys are written unencrypted).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_VALIDITY = dt.timedelta(days=365)
# Backdate certificates a little so a client whose clock lags the issuer still accepts them.
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class CertFiles:
    """Where ``CertKey.write`` put the PEM files."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class CertKey:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def common_name(self) -> str:
        attrs = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else ""

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, directory: str | Path, prefix: str) -> CertFiles:
        """Write ``<prefix>.crt`` and ``<prefix>.key`` (mode 0600) into ``directory``."""
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = base / f"{prefix}.crt", base / f"{prefix}.key"
        cert_file.write_bytes(self.cert_pem())
        # Create the key file with restrictive permissions from the start, not chmod after writing.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem())
        return CertFiles(cert_file, key_file)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _validity(not_before: dt.datetime | None, not_after: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    end = not_after if not_after is not None else _now() + DEFAULT_VALIDITY
    start = not_before if not_before is not None else min(_now() - _CLOCK_SKEW, end - dt.timedelta(days=1))
    if start >= end:
        raise ValueError(f"certificate validity is empty: not_before {start} >= not_after {end}")
    return start, end


def _san(entry: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(entry))
    except ValueError:
        return x509.DNSName(entry)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, start: dt.datetime,
             end: dt.datetime, *, ca: bool) -> x509.CertificateBuilder:
    """What CA and leaf certificates share: a fresh serial, the validity, the basic constraints (a CA
    signs leaves only, path length 0) and the key usage (a CA also signs certificates and CRLs)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )


def generate_ca(cn: str = "cilium-ca", *, not_after: dt.datetime | None = None) -> CertKey:
    """A self-signed CA certificate allowed to sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(None, not_after)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        _builder(_name(cn), _name(cn), key, start, end, ca=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert, key)


def issue_cert(
    ca: CertKey,
    cn: str,
    sans: Iterable[str] = (),
    *,
    server: bool = False,
    client: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> CertKey:
    """A leaf certificate signed by ``ca``.

    ``sans`` entries that parse as IP addresses become IP SANs, the rest DNS SANs (wildcards
    allowed). ``server``/``client`` select the extended key usages. Pass a ``not_after`` in the
    past to get an expired certificate (for tests of TLS failures).
    """
    if not (server or client):
        raise ValueError("a certificate needs at least one of server or client usage")
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(not_before, not_after)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        _builder(_name(cn), ca.cert.subject, key, start, end, ca=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    names = [_san(s) for s in sans]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return CertKey(builder.sign(ca.key, hashes.SHA256()), key)


def write_ca_bundle(path: str | Path, *cas: CertKey) -> Path:
    """Write one or more CA certificates into a single PEM bundle (for CA rotation tests)."""
    target = Path(path)
    target.write_bytes(b"".join(ca.cert_pem() for ca in cas))
    return target
