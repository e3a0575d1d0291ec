"""The benchmark data set: the synthetic cluster at benchmark scale, and the etcd keys it must yield.

Objects come from ``localmesh.testing.synthetic``; only the endpoints' IPv4 addresses are replaced,
because the generator reuses IPv4 addresses after 64,000 endpoints and the benchmark needs one key
per address (100,000 dual-stack endpoints = 200,000 IP keys). Expected values are computed with the
project's pure converters: byte-exactness of those is tested elsewhere; here they tell whether the
pipeline delivered every value completely and nothing else. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert import (
    cilium_endpoint_ip_entries,
    cluster_config_value,
    convert_cilium_identity,
    convert_cilium_node,
    convert_service,
    endpoint_slice_service,
    local_cluster_config,
)
from apiserver.kvstoremesh import RESOURCES
from apiserver.paths import (
    IDENTITIES_ID_PREFIX,
    IP_DEFAULT_PREFIX,
    NODES_PREFIX,
    SERVICES_PREFIX,
    cluster_config_key,
    join_key,
    synced_canary_key,
)
from localmesh.testing.synthetic import ClusterShape, cilium_endpoint, synthetic_cluster

KubeObject = dict[str, Any]
KeyValues = dict[str, bytes]

ENDPOINT_KIND = "CiliumEndpoint"
CHURN_ACCOUNT = "churn-"  # service account of a churned endpoint: "churn-<sequence number>"


@dataclass(frozen=True)
class BenchShape:
    """How big the synthetic cluster is (defaults: the issue's benchmark cluster)."""

    name: str = "cluster1"
    cluster_id: int = 1
    endpoints: int = 100_000
    identities: int = 10_000
    nodes: int = 1_000
    services: int = 2_000
    namespaces: int = 100
    unique_ipv4: bool = True  # False: the generator's own addresses (fine below 64,000 endpoints)

    @property
    def cluster(self) -> ClusterInfo:
        return ClusterInfo(self.name, self.cluster_id)

    def synthetic(self) -> ClusterShape:
        return ClusterShape(name=self.name, cluster_index=self.cluster_id, namespaces=self.namespaces,
                            nodes=self.nodes, identities=self.identities, endpoints=self.endpoints,
                            services=self.services, backends_per_service=3, dual_stack=True)

    def scaled(self, factor: float) -> BenchShape:
        def n(v: int) -> int:
            return max(1, round(v * factor))

        return dataclasses.replace(self, endpoints=n(self.endpoints), identities=n(self.identities),
                                   nodes=n(self.nodes), services=n(self.services))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchShape:
        return cls(**json.loads(text))


def _ipv4(i: int) -> str:
    # 10.128.0.0/9: outside every generator CIDR (10.<cluster>.x.y with cluster <= 16).
    return f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def endpoint(shape: BenchShape, i: int, service_account: str | None = None) -> KubeObject:
    """CiliumEndpoint ``pod-<i>``, optionally with another service account (churn)."""
    obj = cilium_endpoint(shape.synthetic(), i)
    _patch_endpoint(shape, obj, i, service_account)
    return obj


def _patch_endpoint(shape: BenchShape, obj: KubeObject, i: int, service_account: str | None) -> None:
    status = obj["status"]
    if shape.unique_ipv4:
        status["networking"]["addressing"][0]["ipv4"] = _ipv4(i)
    if service_account is not None:
        status["service-account"] = service_account


def cluster_objects(shape: BenchShape) -> Iterator[KubeObject]:
    """Every Kubernetes object of the cluster, namespaces first."""
    for obj in synthetic_cluster(shape.synthetic()):
        if obj["kind"] == ENDPOINT_KIND:
            _patch_endpoint(shape, obj, int(obj["metadata"]["name"].rsplit("-", 1)[1]), None)
        yield obj


def endpoint_entries(shape: BenchShape, i: int, service_account: str | None = None) -> KeyValues:
    """Full etcd keys and values of one endpoint's IP entries."""
    entries = cilium_endpoint_ip_entries(endpoint(shape, i, service_account))
    return {f"{IP_DEFAULT_PREFIX}/{ip}": value for ip, value in entries.items()}


def expected_state(shape: BenchShape, objects: Iterable[KubeObject]) -> KeyValues:
    """What the exporter must write under ``cilium/state/`` for these objects (all namespaces global)."""
    cluster = shape.cluster
    out: KeyValues = {}
    services: list[KubeObject] = []
    slices: dict[str, list[KubeObject]] = {}
    for obj in objects:
        kind = obj["kind"]
        if kind == "CiliumNode":
            key, value = convert_cilium_node(obj, cluster)
            out[join_key(NODES_PREFIX, key)] = value
        elif kind == "CiliumIdentity":
            converted = convert_cilium_identity(obj)
            if converted is not None:
                out[join_key(IDENTITIES_ID_PREFIX, converted[0])] = converted[1]
        elif kind == ENDPOINT_KIND:
            for ip, value in cilium_endpoint_ip_entries(obj).items():
                out[f"{IP_DEFAULT_PREFIX}/{ip}"] = value
        elif kind == "Service":
            services.append(obj)
        elif kind == "EndpointSlice":
            owner = endpoint_slice_service(obj)
            if owner is not None:
                slices.setdefault(owner, []).append(obj)
    for svc in services:
        meta = svc["metadata"]
        service = convert_service(svc, slices.get(f"{meta['namespace']}/{meta['name']}", []), cluster)
        if service is not None:
            out[join_key(SERVICES_PREFIX, cluster.name, meta["namespace"], meta["name"])] = service
    return out


def to_cache(cluster: str, state: KeyValues) -> KeyValues:
    """Where KVStoreMesh mirrors a remote's ``cilium/state`` keys in the local etcd."""
    moves = sorted(((r.state_prefix(cluster) + "/", r.cache_prefix(cluster) + "/") for r in RESOURCES),
                   key=lambda pair: -len(pair[0]))
    out: KeyValues = {}
    for key, value in state.items():
        for state_prefix, cache_prefix in moves:
            if key.startswith(state_prefix):
                out[cache_prefix + key[len(state_prefix):]] = value
                break
        else:
            raise ValueError(f"{key!r} is not under a mirrored prefix")
    return out


def remote_control_keys(shape: BenchShape, now: bytes) -> KeyValues:
    """The keys a clustermesh-apiserver writes besides its data: cluster config and sync canaries."""
    cluster = shape.cluster
    out: KeyValues = {cluster_config_key(cluster.name): cluster_config_value(
        local_cluster_config(cluster, mcs_api_enabled=False))}
    for resource in RESOURCES:
        out[synced_canary_key(cluster.name, resource.remote_synced_key(False))] = now
    return out
