"""``doctor``: every prerequisite of the Cluster Mesh guide, checked over the clusters given. Pure.

Unique valid names and IDs, one ``max-connected-clusters``, disjoint Pod CIDRs (the cluster-pool
lists of ``cilium-config`` and what CiliumNodes were allocated), one datapath (routing mode and
tunnel protocol), KVStoreMesh on everywhere or nowhere, and -- measured by the caller -- each mesh
API server reachable on its port with a TLS handshake against the mesh CA. Node-to-node
connectivity between clusters cannot be seen from here, and the report says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from apiserver.clusterinfo import ClusterInfo, InvalidClusterInfo
from apiserver.ctl._names import INFO

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
POOL_KEYS = ("cluster-pool-ipv4-cidr", "cluster-pool-ipv6-cidr")


@dataclass(frozen=True)
class ClusterFacts:
    context: str
    name: str
    id: int
    max_connected_clusters: int = 255
    pod_cidrs: tuple[str, ...] = ()
    routing_mode: str = "tunnel"
    tunnel_protocol: str = "vxlan"
    kvstoremesh: bool | None = None  # None: the mesh API server is not enabled
    reachability: str | None = None  # None: reachable; "" not measured; else the failure
    endpoint: str = ""

    @property
    def datapath(self) -> str:
        return f"{self.routing_mode}/{self.tunnel_protocol}" if self.routing_mode == "tunnel" else self.routing_mode


@dataclass(frozen=True)
class Check:
    title: str
    ok: bool | None  # None: not checked
    problems: tuple[str, ...] = ()
    hint: str = ""
    detail: str = ""

    def lines(self) -> list[str]:
        if self.ok is None:
            return [f"{INFO} {self.title}: {self.detail}"]
        if self.ok:
            return [f"✅ {self.title}" + (f": {self.detail}" if self.detail else "")]
        out = [f"❌ {self.title}:"] + [f"   - {p}" for p in self.problems]
        if self.hint:
            out.append(f"   💡 {self.hint}")
        return out


def pod_cidrs(config: Mapping[str, str], nodes: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """cilium-config's cluster-pool CIDRs plus every CIDR allocated to a CiliumNode."""
    cidrs: list[str] = []
    for key in POOL_KEYS:
        cidrs += [c for c in (config.get(key) or "").replace(",", " ").split() if c]
    for node in nodes:
        ipam = (node.get("spec") or {}).get("ipam") or {}
        cidrs += list(ipam.get("podCIDRs") or [])
        for pool in (ipam.get("pools") or {}).get("allocated") or []:
            cidrs += list(pool.get("cidrs") or [])
    return tuple(dict.fromkeys(cidrs))


def facts_from(context: str, config: Mapping[str, str], nodes: Sequence[Mapping[str, Any]], *,
               kvstoremesh: bool | None = None, reachability: str | None = "", endpoint: str = "") -> ClusterFacts:
    def number(key: str, default: int) -> int:
        try:
            return int(config.get(key) or default)
        except ValueError:
            return -1

    return ClusterFacts(context=context, name=config.get("cluster-name", "default") or "default",
                        id=number("cluster-id", 0), max_connected_clusters=number("max-connected-clusters", 255),
                        pod_cidrs=pod_cidrs(config, nodes),
                        routing_mode=config.get("routing-mode", "tunnel") or "tunnel",
                        tunnel_protocol=config.get("tunnel-protocol", "vxlan") or "vxlan",
                        kvstoremesh=kvstoremesh, reachability=reachability, endpoint=endpoint)


def _networks(facts: ClusterFacts, problems: list[str]) -> list[Network]:
    networks: list[Network] = []
    for cidr in facts.pod_cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            problems.append(f"cluster {facts.name!r}: invalid Pod CIDR {cidr!r}")
    return networks


def _identity(clusters: Sequence[ClusterFacts]) -> Check:
    problems = []
    for f in clusters:
        try:
            ClusterInfo(f.name, f.id, f.max_connected_clusters if f.max_connected_clusters in (255, 511)
                        else 255).validate(strict=True)
        except InvalidClusterInfo as exc:
            problems.append(f"context {f.context!r} (cluster {f.name!r}): {exc}")
    for a, b in combinations(clusters, 2):
        if a.name == b.name:
            problems.append(f"contexts {a.context!r} and {b.context!r} both use cluster name {a.name!r}")
        if a.id == b.id:
            problems.append(f"clusters {a.name!r} and {b.name!r} share cluster ID {a.id}")
    return Check("Cluster names and IDs are valid and unique", not problems, tuple(problems),
                 "set cluster-name and cluster-id (1..max-connected-clusters) per cluster in cilium-config",
                 ", ".join(f"{f.name}={f.id}" for f in clusters))


def _max_connected(clusters: Sequence[ClusterFacts]) -> Check:
    values = {f.max_connected_clusters for f in clusters}
    problems = [f"cluster {f.name!r}: max-connected-clusters {f.max_connected_clusters} (must be 255 or 511)"
                for f in clusters if f.max_connected_clusters not in (255, 511)]
    if len(values) > 1:
        problems.append("clusters disagree: " + ", ".join(f"{f.name}={f.max_connected_clusters}" for f in clusters))
    return Check("max-connected-clusters is the same everywhere", not problems, tuple(problems),
                 "set the same max-connected-clusters (255 or 511) in every cilium-config",
                 str(next(iter(values))) if len(values) == 1 else "")


def _cidrs(clusters: Sequence[ClusterFacts]) -> Check:
    problems: list[str] = []
    networks = {f.context: _networks(f, problems) for f in clusters}
    for a, b in combinations(clusters, 2):
        for net_a in networks[a.context]:
            for net_b in networks[b.context]:
                if net_a.version == net_b.version and net_a.overlaps(net_b):
                    problems.append(f"{net_a} in {a.name!r} overlaps {net_b} in {b.name!r}")
    missing = [f.name for f in clusters if not f.pod_cidrs]
    detail = "; ".join(f"{f.name}: {' '.join(f.pod_cidrs) or 'none'}" for f in clusters)
    if missing and not problems:
        return Check("Pod CIDRs do not overlap", None, detail=f"no Pod CIDR known for {', '.join(missing)} "
                     "(no cluster-pool lists, no CiliumNodes); cannot check")
    return Check("Pod CIDRs do not overlap", not problems, tuple(problems),
                 "give every cluster its own cluster-pool-ipv4-cidr / cluster-pool-ipv6-cidr", detail)


def _datapath(clusters: Sequence[ClusterFacts]) -> Check:
    paths = {f.datapath for f in clusters}
    problems = [] if len(paths) <= 1 else ["clusters differ: " + ", ".join(f"{f.name}={f.datapath}" for f in clusters)]
    return Check("Same datapath (routing mode, tunnel protocol)", not problems, tuple(problems),
                 "use one routing-mode and one tunnel-protocol in all clusters", ", ".join(sorted(paths)))


def _kvstoremesh(clusters: Sequence[ClusterFacts]) -> Check:
    enabled = [f for f in clusters if f.kvstoremesh is not None]
    if not enabled:
        return Check("KVStoreMesh on or off everywhere", None,
                     detail="no mesh API server enabled yet; run 'clustermeshctl enable' first")
    modes = {f.kvstoremesh for f in enabled}
    problems = [] if len(modes) == 1 else [
        "clusters differ: " + ", ".join(f"{f.name}={'on' if f.kvstoremesh else 'off'}" for f in enabled)]
    return Check("KVStoreMesh on or off everywhere", not problems, tuple(problems),
                 "run 'clustermeshctl enable' with the same --enable-kvstoremesh everywhere",
                 "on" if modes == {True} else "off" if modes == {False} else "")


def _reachability(clusters: Sequence[ClusterFacts]) -> Check:
    measured = [f for f in clusters if f.reachability != ""]
    if not measured:
        return Check("Mesh API servers reachable on their port", None,
                     detail="no mesh API server enabled yet; run 'clustermeshctl enable' first")
    problems = [f"{f.name} ({f.endpoint}): {f.reachability}" for f in measured if f.reachability]
    return Check("Mesh API servers reachable on their port from here (TLS handshake with the mesh CA)", not problems,
                 tuple(problems), "check the Service's addresses, firewalls, and that every cluster uses one CA",
                 ", ".join(f"{f.name} {f.endpoint}" for f in measured if not f.reachability))


def prerequisite_checks(clusters: Sequence[ClusterFacts]) -> list[Check]:
    checks = [_identity(clusters), _max_connected(clusters), _cidrs(clusters), _datapath(clusters),
              _kvstoremesh(clusters), _reachability(clusters)]
    checks.append(Check("Node-to-node connectivity between clusters", None,
                        detail="not checked from here: nodes of every cluster must reach each other's node IPs "
                               "(and the tunnel port in tunnel mode), and every cluster the others' mesh API "
                               "server addresses"))
    return checks


@dataclass
class DoctorReport:
    clusters: int
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def lines(self) -> list[str]:
        out = [line for c in self.checks for line in c.lines()]
        failed = sum(1 for c in self.checks if c.ok is False)
        out.append("")
        out.append(f"❌ {failed} of {len(self.checks)} checks failed" if failed else
                   f"✅ The {self.clusters} clusters can be meshed")
        return out
