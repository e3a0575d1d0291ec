"""Helpers of the security tests (imported by ``conftest`` and the test modules).

``start_mesh_etcd`` + ``dev_pki_under`` build the etcd the way the Pod does: ``clustermesh-apiserver
etcdinit`` run as a subprocess on the data dir, etcd started on it with TLS and
``--client-cert-auth``, and ``clustermesh-apiserver pki`` output for the identities (chained to the
test server's CA).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.security.devpki import DevPKIRequest, atomic_write, write_dev_pki
from localmesh.testing.etcd import EtcdServer, EtcdTLS
from localmesh.testing.ports import free_ports

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "c1"
PEERS = ("c2", "c3")

# What the exporter of cluster c1 and its KVStoreMesh cache would have written.
SEED = {
    "cilium/.heartbeat": "2026-01-01T00:00:00Z",
    "cilium/state/nodes/v1/c1/n1": "node",
    "cilium/state/identities/v1/id/65536": "k8s:app=a;",
    "cilium/state/ip/v1/default/10.0.0.1": "ip",
    "cilium/state/services/v1/c1/default/svc": "svc",
    "cilium/cluster-config/c1": '{"id":1}',
    "cilium/cluster-config/c2": '{"id":2}',
    "cilium/synced/c1/cilium/state/nodes/v1": "2026-01-01T00:00:00Z",
    "cilium/synced/c2/cilium/cache/nodes/v1": "2026-01-01T00:00:00Z",
    "cilium/cache/nodes/v1/c2/n9": "cached node of c2",
    "unrelated/secret": "x",
}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``clustermesh-apiserver <args>`` in a child process (as the init container runs it)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "apiserver", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False)


def run_etcdinit(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """etcdinit on free ports; retried if another process's etcd grabbed a port between pick and bind."""
    for _ in range(3):
        client_port, peer_port = free_ports(2)
        result = run_cli("etcdinit", f"--etcd-data-dir={data_dir}", f"--etcd-client-port={client_port}",
                         f"--etcd-peer-port={peer_port}", "--timeout=60s", *args, env=env)
        if "address already in use" not in result.stderr:
            break
    return result


@dataclass
class MeshEtcd:
    server: EtcdServer
    pki: Path  # ``clustermesh-apiserver pki`` output

    def config(self, identity: str) -> EtcdConfig:
        """The identity's ``etcd-config.yaml`` exactly as written by ``pki``."""
        return EtcdConfig.from_yaml(self.pki / identity / "etcd-config.yaml", dial_timeout=3.0,
                                    request_timeout=5.0)

    async def connect(self, identity: str) -> EtcdClient:
        return await EtcdClient.connect(self.config(identity))


def dev_pki_under(server: EtcdServer, out: Path, peers: tuple[str, ...] = PEERS) -> Path:
    """Run the ``pki`` command's code with the test server's CA (so its certificates are trusted)
    and the server's endpoint (so its etcd-config.yaml files are ready to use)."""
    assert server.tls is not None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "ca.crt", server.tls.ca.cert_pem())
    atomic_write(out / "ca.key", server.tls.ca.key_pem(), 0o600)
    write_dev_pki(DevPKIRequest(cluster_name=CLUSTER, peers=peers, endpoints=(server.client_url,)), out)
    return out


def start_mesh_etcd(base: Path, *, seed: bool = True) -> EtcdServer:
    """etcdinit on a fresh data dir, then etcd with TLS + client-cert-auth on it; seeded as root."""
    tls = EtcdTLS(base / "server-pki")
    server = EtcdServer(tls=tls, name="clustermesh-apiserver")
    try:
        server.data_dir.mkdir(parents=True)
        init = run_etcdinit(server.data_dir, f"--cluster-name={CLUSTER}")
        assert init.returncode == 0, init.stderr
        server.start_sync()
        for key, value in SEED.items() if seed else ():
            server.etcdctl("put", key, value)
    except BaseException:
        server.close_sync()
        raise
    return server


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def tls_probe(url: str, ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None,
              timeout: float = 5.0) -> str:
    """Shake hands with etcd at ``url`` presenting the given client certificate, without any etcd
    client in between. Returns "accepted" when etcd answers the HTTP/2 preface (its SETTINGS
    frame), else "refused: <TLS error>" (an alert, or EOF when the alert races our write)."""
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.set_alpn_protocols(["h2"])
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            tls.sendall(HTTP2_PREFACE)
            return "accepted" if tls.recv(9) else "refused: closed without an answer"
    except (ssl.SSLError, ConnectionError) as exc:
        return f"refused: {type(exc).__name__}: {exc}"


def publish_projected(volume: Path, files: dict[str, bytes]) -> None:
    """Update ``volume`` the way the kubelet updates a Secret/ConfigMap volume: write a new
    ``..<version>`` dir, swap the ``..data`` symlink to it in one rename, and keep each visible
    name a symlink into ``..data``."""
    volume.mkdir(parents=True, exist_ok=True)
    version = f"..{time.monotonic_ns()}"
    (volume / version).mkdir()
    for name, data in files.items():
        (volume / version / name).write_bytes(data)
    os.symlink(version, volume / "..data_tmp")
    os.replace(volume / "..data_tmp", volume / "..data")
    for name in files:
        if not (volume / name).is_symlink():
            os.symlink(f"..data/{name}", volume / name)


def peer_certificate_serial(url: str, ca_file: Path) -> int:
    """The serial number of the certificate the server at ``url`` presents right now."""
    import ssl
    from urllib.parse import urlsplit

    from cryptography import x509

    parts = urlsplit(url)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number
