"""A cluster's access information and the checks ``connect`` makes before pairing two clusters. Pure.

As cilium-cli extracts it (``cilium-cli/clustermesh/clustermesh.go``, ``extractAccessInformation``):
name, ID and max-connected-clusters from ``cilium-config``; the addresses from the
``clustermesh-apiserver`` Service by type (ClusterIP: its cluster IP and port; NodePort: the first
node with an address, ExternalIP preferred, and the node port; LoadBalancer: the ingress IPs and the
port), unless explicit ``IP:PORT`` endpoints are given; the CA certificate. Error texts are cilium-cli's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from apiserver.ctl._errors import CtlError
from apiserver.ctl._names import CONFIGMAP, SERVICE

DEFAULT_MAX_CONNECTED_CLUSTERS = 255
NODEPORT_WARNING = "⚠️  Service type NodePort detected! Service may fail when nodes are removed from the cluster!"

KubeObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccessInfo:
    cluster_name: str
    cluster_id: str  # as written in cilium-config (validated when connecting)
    service_type: str
    service_ips: tuple[str, ...]
    service_port: int
    ca: bytes
    tunnel: str = ""
    max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def valid_identity(self) -> bool:
        return self.cluster_name not in ("", "default") and self.cluster_id not in ("", "0")

    def to_json(self) -> dict[str, Any]:
        """cilium-cli's ``access_information`` (``omitempty`` fields; ``ca`` base64 as Go's []byte)."""
        import base64

        doc: dict[str, Any] = {"service_type": self.service_type, "service_ips": list(self.service_ips),
                               "service_port": self.service_port, "cluster_id": self.cluster_id,
                               "cluster_name": self.cluster_name,
                               "ca": base64.b64encode(self.ca).decode() if self.ca else "",
                               "tunnel": self.tunnel, "max_connected_clusters": self.max_connected_clusters}
        return {k: v for k, v in doc.items() if v not in ("", 0, [], None)}


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``IP:PORT`` (``[v6]:PORT`` for IPv6), as Go's ``net.SplitHostPort`` + ``Atoi``."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host:
        raise CtlError(f"invalid endpoint {endpoint!r}, must be IP:PORT: missing port in address",
                       "write endpoints as 192.0.2.1:2379 or [2001:db8::1]:2379")
    if host.startswith("["):
        if not host.endswith("]"):
            raise CtlError(f"invalid endpoint {endpoint!r}, must be IP:PORT", "close the IPv6 bracket")
        host = host[1:-1]
    elif ":" in host:
        raise CtlError(f"invalid endpoint {endpoint!r}, must be IP:PORT: too many colons in address",
                       "put IPv6 addresses in brackets: [2001:db8::1]:2379")
    if not port.isdigit():
        raise CtlError(f"invalid port {port!r}", "the port is a number, e.g. 2379")
    return host, int(port)


def _node_address(node: Mapping[str, Any]) -> str:
    chosen = ""
    for address in (node.get("status") or {}).get("addresses") or []:
        kind, value = address.get("type"), str(address.get("address") or "")
        if kind == "ExternalIP" or (kind == "InternalIP" and not chosen):
            chosen = value
    return chosen


def _service_addresses(service: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]],
                       warnings: list[str]) -> tuple[str, list[str], int]:
    spec = service.get("spec") or {}
    kind = str(spec.get("type") or "ClusterIP")
    ports = spec.get("ports") or []
    if not ports:
        raise CtlError("port of service could not be derived, service has no ports",
                       f"check Service {SERVICE!r}: it must expose port 2379")
    ips: list[str] = []
    if kind == "ClusterIP":
        port = int(ports[0].get("port") or 0)
        if not port:
            raise CtlError("port is not set in service", f"check Service {SERVICE!r}")
        if not spec.get("clusterIP"):
            raise CtlError("IP of service could not be derived, service has no ClusterIP",
                           f"check Service {SERVICE!r}")
        ips.append(str(spec["clusterIP"]))
    elif kind == "NodePort":
        port = int(ports[0].get("nodePort") or 0)
        if not port:
            raise CtlError("nodeport is not set in service", f"check Service {SERVICE!r}")
        for node in nodes:
            address = _node_address(node)
            if address:
                # One node only: every endpoint of a peer must share one port (cilium-cli).
                ips.append(address)
                break
        warnings.append(NODEPORT_WARNING)
    elif kind == "LoadBalancer":
        port = int(ports[0].get("port") or 0)
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ingress.get("ip"):
                ips.append(str(ingress["ip"]))
    else:
        port = 0
    return kind, ips, port


def extract_access_info(config: Mapping[str, str], service: Mapping[str, Any], ca: bytes, *,
                        nodes: Sequence[Mapping[str, Any]] = (), endpoints: Sequence[str] = ()) -> AccessInfo:
    """The access information of one cluster from its objects; ``CtlError`` with cilium-cli's texts."""
    if "cluster-name" not in config:
        raise CtlError(f'cluster-name is not set in ConfigMap "{CONFIGMAP}"',
                       "install Cilium with --set cluster.name=<name> --set cluster.id=<1..255>")
    max_connected = DEFAULT_MAX_CONNECTED_CLUSTERS
    if "max-connected-clusters" in config:
        try:
            max_connected = int(config["max-connected-clusters"])
        except ValueError:
            raise CtlError(f"unable to parse max-connected-clusters: invalid syntax "
                           f"({config['max-connected-clusters']!r})", "set it to 255 or 511") from None
    tunnel = ""
    if config.get("routing-mode") == "tunnel":
        tunnel = config.get("tunnel-protocol", "vxlan") or "vxlan"
    warnings: list[str] = []
    kind, ips, port = _service_addresses(service, nodes, warnings) if not endpoints else (
        str((service.get("spec") or {}).get("type") or "ClusterIP"), [], 0)
    if endpoints:
        port = 0
        for endpoint in endpoints:
            host, endpoint_port = split_endpoint(endpoint)
            if port and endpoint_port != port:
                raise CtlError(f"port mismatch ({port} != {endpoint_port}), all endpoints must use the same "
                               "port number", "give every endpoint the same port")
            port = endpoint_port
            ips.append(host)
    if not ips:
        raise CtlError("unable to derive service IPs automatically",
                       "wait until the Service has an address (LoadBalancer ingress), or pass "
                       "--destination-endpoint/--source-endpoint IP:PORT")
    return AccessInfo(cluster_name=config["cluster-name"], cluster_id=config.get("cluster-id", ""),
                      service_type=kind, service_ips=tuple(ips), service_port=port, ca=ca, tunnel=tunnel,
                      max_connected_clusters=max_connected, warnings=tuple(warnings))


def ca_from_secret(secret: Mapping[str, Any]) -> bytes:
    """The CA certificate of Secret ``cilium-ca`` (``ca.crt``, else ``tls.crt`` as cert-manager writes)."""
    import base64

    data = secret.get("data") or {}
    for key in ("ca.crt", "tls.crt"):
        if data.get(key):
            return base64.b64decode(data[key])
    raise CtlError('secret "cilium-ca" does not contain the CA certificate',
                   "run 'clustermeshctl enable' to create it")


def _subject_key_id(pem: bytes, which: str) -> bytes:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CtlError(f"failed to parse certificate PEM for {which} CA cert",
                       f"check Secret cilium-ca of the {which} cluster") from None
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return b""


def ca_match(local: AccessInfo, remote: AccessInfo) -> bool:
    """Whether both clusters use the same CA key pair (their Subject Key IDs are equal)."""
    return _subject_key_id(local.ca, "local") == _subject_key_id(remote.ca, "remote")


def validate_for_connect(local: AccessInfo, remote: AccessInfo) -> None:
    """cilium-cli's ``validateInfoForConnect``, in its order and with its messages."""
    hint = "set unique cluster.name and cluster.id (1..255) in each cluster's cilium-config"
    if not remote.valid_identity():
        raise CtlError(f"remote cluster has non-unique name ({remote.cluster_name}) and/or ID "
                       f"({remote.cluster_id})", hint)
    if not local.valid_identity():
        raise CtlError(f"local cluster has the default name (cluster name: {local.cluster_name}) and/or ID 0 "
                       f"(cluster ID: {local.cluster_id})", hint)
    try:
        cid = int(remote.cluster_id)
    except ValueError:
        raise CtlError(f"remote cluster has non-numeric cluster ID {remote.cluster_id}. Only numeric values "
                       "1-255 are allowed", hint) from None
    if not 1 <= cid <= local.max_connected_clusters:
        raise CtlError(f"remote cluster has cluster ID {cid} out of acceptable range "
                       f"(1-{local.max_connected_clusters})", hint)
    if remote.max_connected_clusters != local.max_connected_clusters:
        raise CtlError(f"remote and local clusters have different max connected clusters: "
                       f"{remote.max_connected_clusters} != {local.max_connected_clusters}",
                       "set the same max-connected-clusters (255 or 511) in every cluster")
    if remote.cluster_name == local.cluster_name:
        raise CtlError(f"remote and local cluster have the same, non-unique name: {local.cluster_name}", hint)
    if remote.cluster_id == local.cluster_id:
        raise CtlError(f"remote and local cluster have the same, non-unique ID: {local.cluster_id}", hint)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
