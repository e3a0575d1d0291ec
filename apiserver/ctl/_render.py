"""What ``connect`` writes into a cluster, rendered from its list of peers. Pure.

The layout is the Helm chart's (``templates/clustermesh-config/``, ``clustermesh-apiserver/
users-configmap.yaml``), so agents and KVStoreMesh read it as they read a Helm-made mesh:

- Secret ``cilium-kvstoremesh`` (KVStoreMesh's config directory): one etcd client YAML per peer,
  reaching it as ``https://<peer>.mesh.cilium.io:<port>`` with the ``common-etcd-client.*`` files
  (the remote certificate), and ``cilium-host-aliases`` mapping that name to the peer's IPs;
- Secret ``cilium-clustermesh`` (the agents' directory): with KVStoreMesh, one file per peer pointing
  at the local mesh API server (``https://clustermesh-apiserver.<ns>.svc:2379``, ``local-`` files);
  without, the same file KVStoreMesh would get;
- ConfigMap ``clustermesh-remote-users``: a ``remote-<peer>`` user (role ``remote``) per peer.

The peer list itself (Helm's ``clustermesh.config.clusters``, ``{name: {ips, port}}``) is kept as
JSON in an annotation of ``cilium-clustermesh``, so each run re-renders everything from it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver.ctl._errors import CtlError
from apiserver.ctl._names import (
    APISERVER_PORT,
    CONFIG_DIR,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MESH_DOMAIN,
    SERVICE,
    USERS_KEY,
)

PEERS_ANNOTATION = "clustermeshctl.cilium.io/clusters"


@dataclass(frozen=True, slots=True, order=True)
class Peer:
    name: str
    ips: tuple[str, ...]
    port: int

    @property
    def hostname(self) -> str:
        return f"{self.name}.{MESH_DOMAIN}"


def peers_to_annotation(peers: Mapping[str, Peer]) -> str:
    doc = {name: {"ips": list(p.ips), "port": p.port} for name, p in sorted(peers.items())}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


def peers_from_annotation(text: str | None) -> dict[str, Peer]:
    if not text:
        return {}
    try:
        doc = orjson.loads(text)
        return {str(name): Peer(str(name), tuple(str(ip) for ip in entry["ips"]), int(entry["port"]))
                for name, entry in doc.items()}
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        raise CtlError(f"annotation {PEERS_ANNOTATION} of Secret cilium-clustermesh is not valid",
                       "remove the annotation and connect the clusters again") from None


def remote_config(peer: Peer) -> str:
    """The etcd client YAML reaching ``peer``'s mesh API server (KVStoreMesh, or agents without it)."""
    lines = ["endpoints:", f"- https://{peer.hostname}:{peer.port}",
             f"trusted-ca-file: {CONFIG_DIR}/common-etcd-client-ca.crt",
             f"key-file: {CONFIG_DIR}/common-etcd-client.key",
             f"cert-file: {CONFIG_DIR}/common-etcd-client.crt",
             "cilium-host-aliases:", f"  {peer.hostname}:", "    ips:"]
    lines += [f"    - {ip}" for ip in peer.ips]
    return "\n".join(lines) + "\n"


def local_config(namespace: str) -> str:
    """The agents' file for any peer when KVStoreMesh runs: the local mesh API server, ``local-`` files."""
    return "\n".join([
        "endpoints:", f"- https://{SERVICE}.{namespace}.svc:{APISERVER_PORT}",
        f"trusted-ca-file: {CONFIG_DIR}/local-etcd-client-ca.crt",
        f"key-file: {CONFIG_DIR}/local-etcd-client.key",
        f"cert-file: {CONFIG_DIR}/local-etcd-client.crt"]) + "\n"


def users_yaml(peers: Mapping[str, Peer]) -> str:
    lines = ["users:"] + [f"- name: remote-{name}\n  role: remote" for name in sorted(peers)]
    return "\n".join(lines) + "\n"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _meta(name: str, namespace: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def agents_secret(peers: Mapping[str, Peer], namespace: str, *, kvstoremesh: bool) -> dict[str, Any]:
    data = {name: _b64(local_config(namespace) if kvstoremesh else remote_config(peer))
            for name, peer in sorted(peers.items())}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta("cilium-clustermesh", namespace, {PEERS_ANNOTATION: peers_to_annotation(peers)}),
            "data": data}


def kvstoremesh_secret(peers: Mapping[str, Peer], namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta("cilium-kvstoremesh", namespace),
            "data": {name: _b64(remote_config(peer)) for name, peer in sorted(peers.items())}}


def users_configmap(peers: Mapping[str, Peer], namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("clustermesh-remote-users", namespace),
            "data": {USERS_KEY: users_yaml(peers)}}


def decode_data(secret: Mapping[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items()}
