"""Synthetic Kubernetes objects of a Cilium cluster, for the demo, tests and benchmarks.

Deterministic: the same arguments give the same objects. Sizes and shapes follow what a real
cluster holds (dual-stack endpoints, identities carrying the namespace label, global services
with EndpointSlices).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

KubeObject = dict[str, Any]


@dataclass(frozen=True)
class ClusterShape:
    name: str = "cluster1"
    cluster_index: int = 1  # picks the pod/service CIDRs, so clusters do not overlap
    namespaces: int = 4
    nodes: int = 3
    identities: int = 8
    endpoints: int = 20
    services: int = 4
    backends_per_service: int = 3
    dual_stack: bool = True


def namespace(name: str, global_: bool | None = None) -> KubeObject:
    meta: dict[str, Any] = {"name": name}
    if global_ is not None:
        meta["annotations"] = {"clustermesh.cilium.io/global": "true" if global_ else "false"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def cilium_config(shape: ClusterShape, **overrides: str) -> KubeObject:
    """The ``cilium-config`` ConfigMap: what clustermeshctl doctor and the cilium CLI read of a cluster."""
    data = {"cluster-name": shape.name, "cluster-id": str(shape.cluster_index), "max-connected-clusters": "255",
            "identity-allocation-mode": "crd", "routing-mode": "tunnel", "tunnel-protocol": "vxlan"}
    data.update(overrides)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": "kube-system"}, "data": data}


def cilium_node(shape: ClusterShape, i: int) -> KubeObject:
    c = shape.cluster_index
    return {
        "apiVersion": "cilium.io/v2", "kind": "CiliumNode",
        "metadata": {"name": f"{shape.name}-node-{i}", "labels": {"kubernetes.io/hostname": f"{shape.name}-node-{i}"}},
        "spec": {
            "addresses": [
                {"type": "InternalIP", "ip": f"172.{16 + c}.{i // 250}.{i % 250 + 1}"},
                {"type": "CiliumInternalIP", "ip": f"10.{c}.{i % 256}.1"},
            ],
            "health": {"ipv4": f"10.{c}.{i % 256}.2"},
            "ipam": {"podCIDRs": [f"10.{c}.{i % 256}.0/24", f"fd00:{c}:{i:x}::/64"]},
            "encryption": {"key": 0},
            "bootid": f"00000000-0000-0000-0000-{i:012d}",
        },
    }


def cilium_identity(shape: ClusterShape, i: int) -> KubeObject:
    ns = f"ns-{i % shape.namespaces}"
    identity_id = (shape.cluster_index << 16) + 256 + i
    return {
        "apiVersion": "cilium.io/v2", "kind": "CiliumIdentity",
        "metadata": {"name": str(identity_id), "labels": {"io.kubernetes.pod.namespace": ns}},
        "security-labels": {
            "k8s:app": f"app-{i}",
            "k8s:io.cilium.k8s.policy.cluster": shape.name,
            "k8s:io.kubernetes.pod.namespace": ns,
        },
    }


def endpoint_ipv4(shape: ClusterShape, i: int) -> str:
    return f"10.{shape.cluster_index}.{(i // 250) % 256}.{i % 250 + 3}"


def cilium_endpoint(shape: ClusterShape, i: int) -> KubeObject:
    identity = i % max(shape.identities, 1)
    ns = f"ns-{identity % shape.namespaces}"
    node = i % max(shape.nodes, 1)
    addressing: dict[str, str] = {"ipv4": endpoint_ipv4(shape, i)}
    if shape.dual_stack:
        addressing["ipv6"] = f"fd00:{shape.cluster_index}:{(i // 250) % 65536:x}::{i % 250 + 3:x}"
    return {
        "apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint",
        "metadata": {"name": f"pod-{i}", "namespace": ns},
        "status": {
            "id": i + 1,
            "identity": {"id": (shape.cluster_index << 16) + 256 + identity, "labels": [f"k8s:app=app-{identity}"]},
            "networking": {"addressing": [addressing], "node": f"172.{16 + shape.cluster_index}.0.{node + 1}"},
            "encryption": {},
            "state": "ready",
            "service-account": "default",
        },
    }


def service(shape: ClusterShape, i: int) -> KubeObject:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"svc-{i}", "namespace": f"ns-{i % shape.namespaces}",
                     "annotations": {"service.cilium.io/global": "true"}, "labels": {"app": f"svc-{i}"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
            "clusterIPs": [f"10.96.{i // 250}.{i % 250 + 1}"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": f"svc-{i}"},
            "sessionAffinity": "None",
        },
    }


def endpoint_slice(shape: ClusterShape, i: int) -> KubeObject:
    base = shape.endpoints + i * shape.backends_per_service
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"svc-{i}-abcde", "namespace": f"ns-{i % shape.namespaces}",
                     "labels": {"kubernetes.io/service-name": f"svc-{i}",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [endpoint_ipv4(shape, base + j)], "conditions": {"ready": True},
             "nodeName": f"{shape.name}-node-{j % max(shape.nodes, 1)}"}
            for j in range(shape.backends_per_service)
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def synthetic_cluster(shape: ClusterShape) -> Iterator[KubeObject]:
    """Namespaces first, then everything else, in a stable order."""
    yield namespace("kube-system")
    yield cilium_config(shape)
    for n in range(shape.namespaces):
        yield namespace(f"ns-{n}")
    for i in range(shape.nodes):
        yield cilium_node(shape, i)
    for i in range(shape.identities):
        yield cilium_identity(shape, i)
    for i in range(shape.endpoints):
        yield cilium_endpoint(shape, i)
    for i in range(shape.services):
        yield service(shape, i)
        yield endpoint_slice(shape, i)
