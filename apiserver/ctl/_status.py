"""``status``: the connectivity figures cilium-cli computes from every pod's view, and their rendering
in the Cluster Mesh guide's layout. Pure.

Per pod (an agent, or a KVStoreMesh replica) the view is the list of remote clusters it knows
(``RemoteCluster`` objects: ``cilium-dbg status -o json``'s ClusterMesh section, or
``kvstoremesh-dbg status -o json``). As ``cilium-cli/clustermesh/clustermesh.go`` does: every
cluster a pod knows counts as configured for it, and as connected when ``ready``; a pod is not ready
when any of its clusters is not ready or an expected cluster (a key of the config Secret) is missing;
min/avg/max are over the per-pod ready counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apiserver.ctl._access import AccessInfo
from apiserver.ctl._names import (
    AGENT_CONTAINER,
    AGENT_TROUBLESHOOT,
    DEPLOYMENT,
    INFO,
    KVSTOREMESH_CONTAINER,
    KVSTOREMESH_TROUBLESHOOT,
    SERVICE,
)
from apiserver.kvstoremesh import RemoteClusterStatus

NOT_CONNECTED = "not-connected"
CONFIG_NOT_RETRIEVED = "config-not-retrieved"
OTHER = "other"
CONFIG_REQUIRED_NOT_FOUND = "remote cluster configuration required but not found"


@dataclass(frozen=True, slots=True)
class StatusError:
    text: str
    kind: str = OTHER


@dataclass(slots=True)
class PodView:
    """What one pod reports: its remote clusters by name, and (agents) its global services."""

    clusters: dict[str, RemoteClusterStatus]
    global_services: int = 0


@dataclass(slots=True)
class Stat:
    min: int = -1
    avg: float = 0.0
    max: int = 0

    def add(self, value: int) -> None:
        if self.min < 0 or self.min > value:
            self.min = value
        self.max = max(self.max, value)
        self.avg += value

    def text(self) -> str:
        return f"[min:{self.min} / avg:{self.avg:.1f} / max:{self.max}]"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"min": self.min, "avg": self.avg, "max": self.max}
        return {k: v for k, v in doc.items() if v}


@dataclass(slots=True)
class ClusterStats:
    configured: int = 0
    connected: int = 0


@dataclass(slots=True)
class Connectivity:
    total: int = 0
    not_ready: int = 0
    connected: Stat = field(default_factory=Stat)
    global_services: Stat = field(default_factory=Stat)
    clusters: dict[str, ClusterStats] = field(default_factory=dict)
    errors: dict[str, dict[str, list[StatusError]]] = field(default_factory=dict)

    def error_count(self) -> int:
        return len(self.errors)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"connected": self.connected.to_json(),
                               "clusters": {n: {k: v for k, v in (("configured", s.configured),
                                                                  ("connected", s.connected)) if v}
                                            for n, s in sorted(self.clusters.items())},
                               "total": self.total, "not_ready": self.not_ready,
                               "errors": {pod: {c: {"errors": [e.text for e in errs]} for c, errs in by.items()}
                                          for pod, by in sorted(self.errors.items())}}
        return {k: v for k, v in doc.items() if v not in (0, {}, None)}


def remote_error(status: RemoteClusterStatus | None) -> StatusError:
    """Why a remote cluster is not ready, as cilium-cli words it."""
    if status is None:
        return StatusError("unknown status")
    if not status.connected:
        return StatusError(status.status, NOT_CONNECTED)
    if status.config is None:
        return StatusError("remote cluster configuration retrieval status unknown")
    if status.config.required and not status.config.retrieved:
        return StatusError(CONFIG_REQUIRED_NOT_FOUND, CONFIG_NOT_RETRIEVED)
    synced = status.synced
    if synced is None:
        return StatusError("synchronization status unknown")
    pending = [name for name, done in (("endpoints", synced.endpoints), ("identities", synced.identities),
                                       ("nodes", synced.nodes), ("services", synced.services)) if not done]
    if pending:
        return StatusError(f"synchronization in progress for {', '.join(pending)}")
    return StatusError("not ready")


def connectivity(expected: Sequence[str], pods: Mapping[str, PodView]) -> Connectivity:
    result = Connectivity(clusters={name: ClusterStats() for name in expected})
    for pod, view in sorted(pods.items()):
        result.total += 1
        ready = 0
        for name, cluster in sorted(view.clusters.items()):
            stats = result.clusters.setdefault(name, ClusterStats())
            stats.configured += 1
            if cluster.ready:
                ready += 1
                stats.connected += 1
            else:
                result.errors.setdefault(pod, {}).setdefault(name, []).append(remote_error(cluster))
        missing = [name for name in expected if name not in view.clusters]
        for name in missing:
            result.errors.setdefault(pod, {}).setdefault(name, []).append(StatusError("unknown status"))
        if missing or ready != len(view.clusters):
            result.not_ready += 1
        result.connected.add(ready)
        result.global_services.add(view.global_services)
    if pods:
        result.connected.avg /= len(pods)
        result.global_services.avg /= len(pods)
    return result


# --------------------------------------------------------------------------------------- rendering

def header_lines(info: AccessInfo) -> list[str]:
    lines = list(info.warnings)
    lines.append(f'✅ Service "{SERVICE}" of type "{info.service_type}" found')
    lines.append("✅ Cluster access information is available:")
    lines += [f" - {ip}:{info.service_port}" for ip in info.service_ips]
    return lines


def deployment_line() -> str:
    return f"✅ Deployment {DEPLOYMENT} is ready"


def kvstoremesh_line(enabled: bool) -> str:
    return f"{INFO} KVStoreMesh is {'enabled' if enabled else 'disabled'}"


def _ready_line(status: Connectivity, component: str) -> str | None:
    if status.not_ready > 0:
        return (f"⚠️ {status.not_ready}/{status.total} {component} are not connected to all clusters "
                f"{status.connected.text()}")
    if status.clusters:
        return f"✅ All {status.total} {component} are connected to all clusters {status.connected.text()}"
    return None


def _error_lines(errors: Mapping[str, Mapping[str, Sequence[StatusError]]], namespace: str, container: str,
                 command: str, kvstoremesh_hint: bool) -> list[str]:
    lines = []
    for pod in sorted(errors):
        for cluster in sorted(errors[pod]):
            for err in errors[pod][cluster]:
                lines.append(f"  ❌ {pod} is not connected to cluster {cluster}: {err.text}")
                if err.kind == NOT_CONNECTED:
                    lines.append(f"     💡 Run 'kubectl exec -it -n {namespace} {pod} -c {container} -- "
                                 f"{command} {cluster}' to investigate the cause")
                elif err.kind == CONFIG_NOT_RETRIEVED:
                    lines.append("     💡 This is likely caused by KVStoreMesh not being connected to the given "
                                 "cluster" if kvstoremesh_hint else
                                 "     💡 Double check if the cluster name matches the one configured in the "
                                 "remote cluster")
    return lines


def connectivity_lines(agents: Connectivity, kvstoremesh: Connectivity | None, namespace: str) -> list[str]:
    """The guide's block after the header: readiness, connections, global services, errors."""
    lines = [""]
    for status, component in ((agents, "nodes"), (kvstoremesh, "KVStoreMesh replicas")):
        if status is not None:
            line = _ready_line(status, component)
            if line is not None:
                lines.append(line)
    lines.append("")
    if agents.clusters:
        lines.append("🔌 Cluster Connections:")
        for name in sorted(agents.clusters):
            stats = agents.clusters[name]
            lines.append(f" - {name}: {stats.configured} configured, {stats.connected}/{agents.total} connected")
            if kvstoremesh is not None:
                kv = kvstoremesh.clusters.get(name)
                lines.append("   KVStoreMesh: status not available" if kv is None else
                             f"   KVStoreMesh: {kv.configured}/{kvstoremesh.total} configured, "
                             f"{kv.connected}/{kvstoremesh.total} connected")
    else:
        lines.append("🔌 No cluster connected")
    lines.append("")
    gs = agents.global_services
    lines.append(f"🔀 Global services: [ min:{gs.min} / avg:{gs.avg:.1f} / max:{gs.max} ]")
    errors = agents.error_count() + (kvstoremesh.error_count() if kvstoremesh is not None else 0)
    if errors:
        lines.append("")
        lines.append(f"❌ {errors} Errors:")
        lines += _error_lines(agents.errors, namespace, AGENT_CONTAINER, AGENT_TROUBLESHOOT,
                              kvstoremesh is not None)
        if kvstoremesh is not None:
            lines += _error_lines(kvstoremesh.errors, namespace, KVSTOREMESH_CONTAINER, KVSTOREMESH_TROUBLESHOOT,
                                  False)
    return lines


def status_json(info: AccessInfo | None, agents: Connectivity | None, kvstoremesh_enabled: bool,
                kvstoremesh: Connectivity | None) -> dict[str, Any]:
    """cilium-cli's ``Status`` document."""
    doc: dict[str, Any] = {}
    if info is not None:
        doc["access_information"] = info.to_json()
    if agents is not None:
        doc["connectivity"] = agents.to_json()
    kv: dict[str, Any] = {"enabled": kvstoremesh_enabled}
    if kvstoremesh is not None:
        kv["status"] = kvstoremesh.to_json()
    doc["kvstoremesh"] = kv
    return doc
