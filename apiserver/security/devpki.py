"""A development PKI for one clustermesh-apiserver, laid out like the Helm Secrets.

``plan_dev_pki`` builds every certificate in memory and returns the files to write (pure apart
from key generation); ``write_dev_pki`` writes them. One directory per identity, each holding
``ca.crt``, ``tls.crt`` and ``tls.key`` exactly as the Secret volume would::

    OUT/ca.crt, OUT/ca.key            the CA (kept so a re-run issues new leaves under the same CA)
    OUT/server/                        etcd server cert  (Pod: /var/lib/etcd-secrets)
    OUT/admin-<C>/ + etcd-config.yaml  apiserver/KVStoreMesh -> local etcd (read-write)
    OUT/local-<C>/ + etcd-config.yaml  local agents -> KVStoreMesh cache (read-only)
    OUT/remote/ + etcd-config.yaml     peers -> this cluster, shared identity (read-only)
    OUT/remote-<peer>/ + ...           peers -> this cluster, per-cluster identity
    OUT/users.yaml                     the remote users file for --cluster-users-config-path

Files are replaced atomically one by one, so a process re-reading them for a new connection
never sees a half-written file. Production certificates are issued by the Cilium operator /
Helm / cert-manager; this is for development and tests only.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from apiserver.clusterinfo import validate_cluster_name
from apiserver.security.pki import CertKey, generate_ca, issue_cert
from apiserver.security.roles import REMOTE_ROLE, REMOTE_USER, admin_user, local_user, remote_cluster_user

SERVER_CN = "clustermesh-apiserver.cilium.io"
DEFAULT_NAMESPACE = "kube-system"
DEFAULT_ENDPOINT = "https://127.0.0.1:2379"
DEFAULT_VALIDITY_DAYS = 1095  # Helm's clustermesh.apiserver.tls.auto.certValidityDuration
CA_CN = "cilium-ca"
SERVER_DIR = "server"
CLIENT_CONFIG = "etcd-config.yaml"
USERS_FILE = "users.yaml"


def server_sans(namespace: str, extra: Sequence[str] = ()) -> list[str]:
    """Upstream's server certificate SANs (certgen/Helm), plus any extras."""
    sans = [SERVER_CN, "*.mesh.cilium.io", f"clustermesh-apiserver.{namespace}.svc", "127.0.0.1", "::1"]
    return sans + [s for s in extra if s not in sans]


@dataclass(frozen=True, slots=True)
class DevPKIRequest:
    cluster_name: str
    peers: tuple[str, ...] = ()
    namespace: str = DEFAULT_NAMESPACE
    endpoints: tuple[str, ...] = (DEFAULT_ENDPOINT,)
    extra_sans: tuple[str, ...] = ()
    validity_days: int = DEFAULT_VALIDITY_DAYS

    def validate(self) -> None:
        validate_cluster_name(self.cluster_name)
        for peer in self.peers:
            validate_cluster_name(peer)
        if self.cluster_name in self.peers:
            raise ValueError(f"--peer {self.cluster_name!r} is the local cluster itself")
        if self.validity_days <= 0:
            raise ValueError("certificate validity must be at least one day")
        if not self.endpoints:
            raise ValueError("at least one endpoint is needed for the client configuration files")

    def client_identities(self) -> list[str]:
        """Every client CN, in the order the files are written."""
        ids = [admin_user(self.cluster_name), local_user(self.cluster_name), REMOTE_USER]
        return ids + [remote_cluster_user(p) for p in dict.fromkeys(self.peers)]


@dataclass(frozen=True, slots=True)
class PlannedFile:
    path: str  # relative to the output directory
    data: bytes
    mode: int = 0o644


def load_ca(cert_file: Path, key_file: Path) -> CertKey:
    """An existing CA (e.g. from an earlier run) so new leaves chain to the same trust anchor."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_file}: only EC CA keys are supported")
    return CertKey(cert, key)


def _identity_files(directory: str, ca: CertKey, leaf: CertKey) -> list[PlannedFile]:
    return [
        PlannedFile(f"{directory}/ca.crt", ca.cert_pem()),
        PlannedFile(f"{directory}/tls.crt", leaf.cert_pem()),
        PlannedFile(f"{directory}/tls.key", leaf.key_pem(), 0o600),
    ]


def client_config_yaml(out: Path, identity: str, endpoints: Sequence[str]) -> bytes:
    """The etcd client YAML (``etcd.config``) that authenticates as ``identity``."""
    base = out / identity
    doc = {
        "endpoints": list(endpoints),
        "trusted-ca-file": str(base / "ca.crt"),
        "cert-file": str(base / "tls.crt"),
        "key-file": str(base / "tls.key"),
    }
    return yaml.safe_dump(doc, sort_keys=False).encode()


def users_yaml(peers: Sequence[str]) -> bytes:
    users = [{"name": remote_cluster_user(p), "role": REMOTE_ROLE} for p in dict.fromkeys(peers)]
    return yaml.safe_dump({"users": users}, sort_keys=False).encode()


def plan_dev_pki(request: DevPKIRequest, out: Path, ca: CertKey | None = None) -> list[PlannedFile]:
    """Every file of the layout above. A new CA is generated unless ``ca`` is given (then
    ``ca.key`` is not rewritten)."""
    request.validate()
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=request.validity_days)
    files: list[PlannedFile] = []
    if ca is None:
        ca = generate_ca(CA_CN, not_after=not_after)
        files.append(PlannedFile("ca.key", ca.key_pem(), 0o600))
    files.append(PlannedFile("ca.crt", ca.cert_pem()))
    server = issue_cert(ca, SERVER_CN, server_sans(request.namespace, request.extra_sans),
                        server=True, client=True, not_after=not_after)
    files += _identity_files(SERVER_DIR, ca, server)
    for identity in request.client_identities():
        leaf = issue_cert(ca, identity, client=True, not_after=not_after)
        files += _identity_files(identity, ca, leaf)
        files.append(PlannedFile(f"{identity}/{CLIENT_CONFIG}",
                                 client_config_yaml(out, identity, request.endpoints)))
    files.append(PlannedFile(USERS_FILE, users_yaml(request.peers)))
    return files


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` in one rename, with ``mode`` set before any byte is visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dev_pki(request: DevPKIRequest, out: str | Path, *, new_ca: bool = False) -> list[Path]:
    """Generate and write the development PKI into ``out``; returns the written paths.

    An existing ``ca.crt``/``ca.key`` pair in ``out`` is reused unless ``new_ca``: re-running
    then rotates every leaf certificate while clients keep trusting the same CA.
    """
    base = Path(out).resolve()
    ca_cert, ca_key = base / "ca.crt", base / "ca.key"
    ca = load_ca(ca_cert, ca_key) if not new_ca and ca_cert.exists() and ca_key.exists() else None
    files = plan_dev_pki(request, base, ca)
    written = []
    for planned in files:
        target = base / planned.path
        atomic_write(target, planned.data, planned.mode)
        written.append(target)
    return written
