"""What a Cilium agent accepts of a remote cluster's data (``pkg/clustermesh/``, ``pkg/node/store``,
``pkg/clustermesh/store``, ``pkg/identity``). Pure: each check returns why an entry is refused, or None.

- nodes: valid JSON whose ``cluster`` and ``clusterID`` are the remote's and whose name is the key;
- services: ``cluster`` / ``clusterID`` the remote's, key ``<namespace>/<name>`` with DNS-1123 names;
- identities: a numeric ID inside the remote cluster's range (its cluster ID in the high bits);
- IPs: the key parses as an IP and is the entry's ``IP``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import orjson

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def cluster_id_shift(max_connected_clusters: int) -> int:
    """Bits of an identity below the cluster ID (``pkg/identity``: 16 with 255 clusters, 15 with 511)."""
    return 15 if max_connected_clusters == 511 else 16


def _decode(value: bytes) -> dict[str, Any] | str:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}"
    return doc if isinstance(doc, dict) else "not a JSON object"


def _origin(doc: dict[str, Any], cluster: str, cluster_id: int, name_key: str, id_key: str) -> str | None:
    if doc.get(name_key) != cluster:
        return f"cluster {doc.get(name_key)!r} is not {cluster!r}"
    if doc.get(id_key) != cluster_id:
        return f"cluster ID {doc.get(id_key)!r} is not {cluster_id}"
    return None


def check_node(key: str, value: bytes, cluster: str, cluster_id: int) -> str | None:
    doc = _decode(value)
    if isinstance(doc, str):
        return doc
    if doc.get("Name") != key:
        return f"node name {doc.get('Name')!r} does not match key {key!r}"
    return _origin(doc, cluster, cluster_id, "Cluster", "ClusterID")


def check_service(key: str, value: bytes, cluster: str, cluster_id: int) -> str | None:
    doc = _decode(value)
    if isinstance(doc, str):
        return doc
    namespace, sep, name = key.partition("/")
    if not sep or not _DNS1123_LABEL.match(namespace) or not _DNS1123_LABEL.match(name):
        return f"key {key!r} is not <namespace>/<name>"
    if (doc.get("namespace"), doc.get("name")) != (namespace, name):
        return f"service {doc.get('namespace')}/{doc.get('name')} does not match key {key!r}"
    return _origin(doc, cluster, cluster_id, "cluster", "clusterID")


def check_identity(key: str, value: bytes, cluster_id: int, max_connected_clusters: int) -> str | None:
    if not key.isdigit():
        return f"identity key {key!r} is not a number"
    shift = cluster_id_shift(max_connected_clusters)
    number = int(key)
    if number >> shift != cluster_id or number & ((1 << shift) - 1) == 0:
        return f"identity {number} is outside cluster {cluster_id}'s range"
    return None if value else "empty labels"


def check_ip(key: str, value: bytes) -> str | None:
    try:
        ipaddress.ip_address(key)
    except ValueError:
        return f"key {key!r} is not an IP address"
    doc = _decode(value)
    if isinstance(doc, str):
        return doc
    return None if doc.get("IP") == key else f"entry IP {doc.get('IP')!r} does not match key {key!r}"


def is_valid_subdomain(name: str) -> bool:
    return bool(_DNS1123_SUBDOMAIN.match(name))
