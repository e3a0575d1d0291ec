"""CiliumNode -> ``Node`` JSON under ``cilium/state/nodes/v1``. Pure.

The value is Go's ``nodeTypes.Node`` as the 1.19 clustermesh-apiserver marshals it: no JSON
tags (Go field names), no ``omitempty`` (``null`` for absent CIDRs, lists and maps), cluster
name and ID always overwritten with the local ones, ``Source`` always ``custom-resource``.
Invalid IPs and CIDRs are silently left out, as upstream ``ParseCiliumNode`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiserver.clusterinfo import ClusterInfo
from apiserver.paths import join_key

from . import _access as a
from ._ip import b64, canonical_net_ip, is_ipv4, net_ip_text, parse_cidr
from .gojson import go_json, go_map

__all__ = ["WIREGUARD_PUBKEY_ANNOTATIONS", "convert_cilium_node", "node_key"]

SOURCE_CUSTOM_RESOURCE = "custom-resource"
# Main annotation first, then its legacy alias (upstream ``annotation.Get`` order).
WIREGUARD_PUBKEY_ANNOTATIONS = ("network.cilium.io/wg-pub-key", "io.cilium.network.wg-pub-key")

_UINT8, _UINT32 = 0xFF, 0xFFFFFFFF


def node_key(cluster: ClusterInfo, name: str) -> str:
    """Key relative to ``cilium/state/nodes/v1``: ``<cluster>/<node>``."""
    return join_key(cluster.name, name)


def convert_cilium_node(obj: Mapping[str, Any], cluster: ClusterInfo) -> tuple[str, bytes]:
    """Return ``(relative key, value)`` for a CiliumNode; :class:`ConversionError` if malformed."""
    meta = a.metadata(obj)
    name = a.name_of(meta)
    spec = a.mapping(obj.get("spec"), "spec")

    addresses: list[dict[str, str]] = []
    for what, entry in a.objects(spec.get("addresses"), "spec.addresses"):
        ip = canonical_net_ip(a.string(entry.get("ip"), f"{what}.ip"))
        if ip is not None:
            addresses.append({"Type": a.string(entry.get("type"), f"{what}.type"), "IP": ip})

    v4_cidrs, v6_cidrs = _alloc_cidrs(a.mapping(spec.get("ipam"), "spec.ipam"))
    health = a.mapping(spec.get("health"), "spec.health")
    ingress = a.mapping(spec.get("ingress"), "spec.ingress")
    encryption = a.mapping(spec.get("encryption"), "spec.encryption")
    labels = a.str_map(meta.get("labels"), "metadata.labels")
    annotations = a.str_map(meta.get("annotations"), "metadata.annotations")

    node = {
        "Name": name,
        "Cluster": cluster.name,
        "IPAddresses": addresses or None,
        "IPv4AllocCIDR": v4_cidrs[0] if v4_cidrs else None,
        "IPv4SecondaryAllocCIDRs": v4_cidrs[1:] or None,
        "IPv6AllocCIDR": v6_cidrs[0] if v6_cidrs else None,
        "IPv6SecondaryAllocCIDRs": v6_cidrs[1:] or None,
        "IPv4HealthIP": _ip_field(health.get("ipv4"), "spec.health.ipv4"),
        "IPv6HealthIP": _ip_field(health.get("ipv6"), "spec.health.ipv6"),
        "IPv4IngressIP": _ip_field(ingress.get("ipv4"), "spec.ingress.ipv4"),
        "IPv6IngressIP": _ip_field(ingress.get("ipv6"), "spec.ingress.ipv6"),
        "ClusterID": cluster.id,
        "Source": SOURCE_CUSTOM_RESOURCE,
        # Go converts with uint8()/uint32(): out-of-range values wrap instead of failing.
        "EncryptionKey": a.integer(encryption.get("key"), "spec.encryption.key") & _UINT8,
        "Labels": None if labels is None else go_map(labels),
        "Annotations": None if annotations is None else go_map(annotations),
        "NodeIdentity": a.integer(spec.get("nodeidentity"), "spec.nodeidentity", a.UINT64) & _UINT32,
        "WireguardPubKey": a.annotation(meta, *WIREGUARD_PUBKEY_ANNOTATIONS) or "",
        "BootID": a.string(spec.get("bootid"), "spec.bootid"),
    }
    return node_key(cluster, name), go_json(node)


def _ip_field(value: Any, what: str) -> str:
    # net.ParseIP of the field; a nil IP marshals as "".
    return canonical_net_ip(a.string(value, what)) or ""


def _alloc_cidrs(ipam: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Pod CIDRs then pool CIDRs, split by family; the first of each family is the primary."""
    texts: list[str] = [
        a.string(c, "spec.ipam.podCIDRs[]") for c in a.array(ipam.get("podCIDRs"), "spec.ipam.podCIDRs")
    ]
    pools = a.mapping(ipam.get("pools"), "spec.ipam.pools")
    for pool in a.array(pools.get("allocated"), "spec.ipam.pools.allocated"):
        cidrs = a.mapping(pool, "spec.ipam.pools.allocated[]").get("cidrs")
        texts.extend(
            a.string(c, "spec.ipam.pools.allocated[].cidrs[]")
            for c in a.array(cidrs, "spec.ipam.pools.allocated[].cidrs")
        )
    v4: list[dict[str, str]] = []
    v6: list[dict[str, str]] = []
    for text in texts:
        parsed = parse_cidr(text)
        if parsed is None:
            continue
        network, mask = parsed
        # The family follows the masked address, as Go's ``podCIDR.IP.To4() != nil`` does.
        (v4 if is_ipv4(network) else v6).append({"IP": net_ip_text(network), "Mask": b64(mask)})
    return v4, v6
