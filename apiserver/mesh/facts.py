"""Reads a cluster's mesh facts from its Kubernetes API: ``cilium-config`` and CiliumNodes."""

from __future__ import annotations

from typing import Any

from apiserver.kube import CILIUM_NODES, KubeClient
from apiserver.kube._http import KubeHTTP
from apiserver.mesh.prerequisites import ClusterFacts

CILIUM_CONFIG_PATH = "/api/v1/namespaces/{namespace}/configmaps/cilium-config"


def pod_cidrs(nodes: list[dict[str, Any]]) -> tuple[str, ...]:
    """Every Pod CIDR allocated to a node (cluster-pool and multi-pool IPAM)."""
    cidrs: list[str] = []
    for node in nodes:
        ipam = (node.get("spec") or {}).get("ipam") or {}
        cidrs.extend(ipam.get("podCIDRs") or [])
        for pool in (ipam.get("pools") or {}).get("allocated") or []:
            cidrs.extend(pool.get("cidrs") or [])
    return tuple(dict.fromkeys(cidrs))


def facts_from(config: dict[str, str], nodes: list[dict[str, Any]]) -> ClusterFacts:
    def number(key: str, default: int) -> int:
        try:
            return int(config.get(key) or default)
        except ValueError:
            return -1

    return ClusterFacts(
        name=config.get("cluster-name", "default"),
        id=number("cluster-id", 0),
        max_connected_clusters=number("max-connected-clusters", 255),
        pod_cidrs=pod_cidrs(nodes),
        routing_mode=config.get("routing-mode", "tunnel") or "tunnel",
        tunnel_protocol=config.get("tunnel-protocol", "vxlan") or "vxlan",
    )


async def read_facts(kube: KubeClient, namespace: str = "kube-system") -> ClusterFacts:
    http = KubeHTTP(kube.api_client)
    configmap = await http.get_json(CILIUM_CONFIG_PATH.format(namespace=namespace))
    node_list = await http.get_json(CILIUM_NODES.list_path())
    return facts_from(dict(configmap.get("data") or {}), list(node_list.get("items") or []))
