"""Prerequisites of a Cluster Mesh, checked before clusters are connected. Pure: no I/O.

Every cluster must have a valid, unique name and a unique non-zero ID; all must agree on
``max-connected-clusters`` (it sets how identities are split between clusters); their Pod CIDRs
must not overlap (a pod IP must name one pod mesh-wide); and their datapaths must match (routing
mode and tunnel protocol), or cross-cluster traffic cannot be decapsulated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from apiserver.clusterinfo import ClusterInfo, InvalidClusterInfo


@dataclass(frozen=True)
class ClusterFacts:
    name: str
    id: int
    max_connected_clusters: int = 255
    pod_cidrs: tuple[str, ...] = ()
    routing_mode: str = "tunnel"
    tunnel_protocol: str = "vxlan"

    @property
    def datapath(self) -> str:
        return f"{self.routing_mode}/{self.tunnel_protocol}" if self.routing_mode == "tunnel" else self.routing_mode


def _networks(facts: ClusterFacts, problems: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for cidr in facts.pod_cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            problems.append(f"cluster {facts.name!r}: invalid Pod CIDR {cidr!r}")
    return networks


def check_mesh(clusters: Sequence[ClusterFacts]) -> list[str]:
    """Every reason these clusters cannot form a mesh; empty when they can."""
    problems: list[str] = []
    for facts in clusters:
        try:
            ClusterInfo(facts.name, facts.id, facts.max_connected_clusters).validate(strict=True)
        except InvalidClusterInfo as exc:
            problems.append(f"cluster {facts.name!r}: {exc}")
    for a, b in combinations(clusters, 2):
        if a.name == b.name:
            problems.append(f"cluster name {a.name!r} is used twice")
        if a.id == b.id:
            problems.append(f"clusters {a.name!r} and {b.name!r} share cluster ID {a.id}")
        if a.max_connected_clusters != b.max_connected_clusters:
            problems.append(f"clusters {a.name!r} and {b.name!r} disagree on max-connected-clusters "
                            f"({a.max_connected_clusters} vs {b.max_connected_clusters})")
        if a.datapath != b.datapath:
            problems.append(f"clusters {a.name!r} and {b.name!r} have different datapaths "
                            f"({a.datapath} vs {b.datapath})")
    networks = {facts.name: _networks(facts, problems) for facts in clusters}
    for a, b in combinations(clusters, 2):
        for net_a in networks[a.name]:
            for net_b in networks[b.name]:
                if net_a.version == net_b.version and net_a.overlaps(net_b):
                    problems.append(f"Pod CIDRs overlap: {net_a} in {a.name!r} and {net_b} in {b.name!r}")
    return problems
