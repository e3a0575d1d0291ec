"""TLS material for etcd connections: read the CA, client certificate and key files, check them, and
build gRPC channel credentials.

Called for every new channel, never cached, so a rotated Kubernetes Secret (files replaced in
place) takes effect on the next reconnect without a restart. Problems are reported as
``EtcdTLSError`` naming the file and what is wrong with it, instead of an opaque handshake failure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from apiserver.kvstore.etcd.config import EtcdConfig, EtcdConfigError

__all__ = ["EtcdTLSError", "TLSMaterial", "channel_credentials", "load_tls_material"]


class EtcdTLSError(EtcdConfigError):
    """A CA, certificate or key file is missing, unreadable, malformed, expired or mismatched."""


@dataclass(frozen=True, slots=True)
class TLSMaterial:
    root_certificates: bytes | None  # None: the system trust store
    certificate_chain: bytes | None
    private_key: bytes | None
    client_cn: str | None  # the etcd user name when etcd authenticates by certificate

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise EtcdTLSError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise EtcdTLSError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise EtcdTLSError(f"{what} {path} is empty")
    return data


def _certs(data: bytes, path: str, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise EtcdTLSError(f"{what} {path} does not contain a PEM certificate") from None


def _check_validity(cert: x509.Certificate, path: str, now: dt.datetime) -> None:
    if cert.not_valid_after_utc < now:
        raise EtcdTLSError(f"certificate {path} expired at {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > now:
        raise EtcdTLSError(f"certificate {path} is not valid before {cert.not_valid_before_utc.isoformat()}")


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_tls_material(config: EtcdConfig, *, now: dt.datetime | None = None) -> TLSMaterial:
    """Read and check the files named by ``config`` (right now, from disk)."""
    moment = now or dt.datetime.now(dt.UTC)
    roots = None
    if config.trusted_ca_file:
        roots = _read(config.trusted_ca_file, "trusted-ca-file")
        _certs(roots, config.trusted_ca_file, "trusted-ca-file")
    if config.cert_file is None or config.key_file is None:
        return TLSMaterial(roots, None, None, None)
    chain = _read(config.cert_file, "cert-file")
    leaf = _certs(chain, config.cert_file, "cert-file")[0]
    _check_validity(leaf, config.cert_file, moment)
    key_pem = _read(config.key_file, "key-file")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise EtcdTLSError(f"key-file {config.key_file} is not an unencrypted PEM private key: {exc}") from None
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise EtcdTLSError(f"key-file {config.key_file} does not match the certificate in {config.cert_file}")
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return TLSMaterial(roots, chain, key_pem, str(cns[0].value) if cns else None)


def channel_credentials(config: EtcdConfig) -> grpc.ChannelCredentials:
    return load_tls_material(config).credentials()
