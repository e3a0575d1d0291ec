"""DaemonSet controller: one Pod per Node object whose labels match the template's ``nodeSelector``, with
``spec.nodeName`` set directly (upstream pins it with node affinity and lets the scheduler bind it).
Pods carry ``controller-revision-hash`` (a hash of the template; no ControllerRevision objects) and
``pod-template-generation``. A ``RollingUpdate`` replaces old Pods node by node with at most
``maxUnavailable`` nodes lacking an available Pod (``maxSurge`` is not honoured); ``OnDelete`` replaces a
Pod only once it is deleted. Status as ``pkg/controller/daemon`` computes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import Key
from localmesh.kubesim.controllers._base import Change, Cluster, Controller
from localmesh.kubesim.controllers._deployment import scaled_value
from localmesh.kubesim.controllers._events import EventRecorder
from localmesh.kubesim.controllers._pods import (
    available_in,
    is_active,
    is_available,
    is_ready,
    owned_by,
    owner_keys,
    pod_from_template,
    selector_labels,
    template_hash,
)

Obj = dict[str, Any]

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
# What the DaemonSet controller adds to every Pod it makes (util.AddOrUpdateDaemonPodTolerations).
_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _eligible(ds: Obj, node: Obj) -> bool:
    selector = ((ds["spec"].get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    labels = node["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


class DaemonSetController(Controller):
    name = "daemonset"
    follows = frozenset({("apps", "DaemonSet"), ("", "Pod"), ("", "Node")})

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._daemonsets = cluster.type("apps/v1", "DaemonSet")
        self._pods = cluster.type("v1", "Pod")
        self._nodes = cluster.type("v1", "Node")
        self._events = EventRecorder(cluster, "daemonset-controller")

    def initial_keys(self) -> Iterable[Key]:
        return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in self.cluster.list(self._daemonsets)]

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        if rt.kind == "DaemonSet":
            return (change.key,)
        if rt.kind == "Node":
            return self.initial_keys()
        return owner_keys(change, "DaemonSet")

    def reconcile(self, key: Key) -> float | None:
        ds = self.cluster.get(self._daemonsets, key[0], key[1])
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return None
        spec: Obj = ds["spec"]
        now = self.cluster.clock()
        min_ready = int(spec.get("minReadySeconds") or 0)
        current = template_hash(spec["template"])
        nodes = {str(n["metadata"]["name"]): n for n in self.cluster.list(self._nodes)}
        wanted = sorted(name for name, node in nodes.items() if _eligible(ds, node))
        self._sync_pods(ds, current, wanted, min_ready, now)
        pods = [p for p in self.cluster.list(self._pods, key[0], selector_labels(ds), readonly=True) if owned_by(p, ds)]
        return self._write_status(ds, current, wanted, pods, min_ready, now)

    def _on_nodes(self, ds: Obj) -> dict[str, list[Obj]]:
        by_node: dict[str, list[Obj]] = {}
        for pod in self.cluster.list(self._pods, ds["metadata"]["namespace"], selector_labels(ds),
                                     readonly=True):
            if owned_by(pod, ds) and is_active(pod):
                by_node.setdefault(str(pod["spec"].get("nodeName", "")), []).append(pod)
        return by_node

    def _delete(self, ds: Obj, pods: Iterable[Obj]) -> None:
        for pod in pods:
            meta = pod["metadata"]
            if self.cluster.delete(self._pods, meta["namespace"], meta["name"], meta.get("uid")):
                self._events.normal(ds, "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    def _sync_pods(self, ds: Obj, current: str, wanted: list[str], min_ready: int, now: float) -> None:
        by_node = self._on_nodes(ds)
        # Pods on nodes that are gone or no longer match, and extra pods on a node, go.
        self._delete(ds, (p for node, pods in by_node.items() if node not in wanted for p in pods))
        for node in wanted:
            pods = sorted(by_node.get(node, []), key=lambda p: (
                (p["metadata"].get("labels") or {}).get(HASH_LABEL) != current, not is_ready(p),
                str(p["metadata"].get("creationTimestamp", ""))))
            self._delete(ds, pods[1:])
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            by_node = self._on_nodes(ds)
            budget = scaled_value((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(wanted), True)
            budget = max(budget, 1)
            unavailable = sum(1 for node in wanted
                              if not any(is_available(p, min_ready, now) for p in by_node.get(node, [])))
            old = [(node, p) for node in wanted for p in by_node.get(node, [])
                   if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != current]
            # Old pods that are not available can go at once; available ones within the budget.
            self._delete(ds, (p for _, p in old if not is_available(p, min_ready, now)))
            healthy = [p for _, p in old if is_available(p, min_ready, now)]
            self._delete(ds, healthy[:max(budget - unavailable, 0)])
        by_node = self._on_nodes(ds)
        generation = str(ds["metadata"].get("generation", 1))
        for node in wanted:
            if by_node.get(node):
                continue
            pod = pod_from_template(ds, ds["spec"]["template"], f"{ds['metadata']['name']}-",
                                    {HASH_LABEL: current, GENERATION_LABEL: generation}, node_name=node)
            tolerations = pod["spec"].setdefault("tolerations", [])
            for tol in _TOLERATIONS:
                if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"] for t in tolerations):
                    tolerations.append(dict(tol))
            created = self.cluster.create(self._pods, pod)
            self._events.normal(ds, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    def _write_status(self, ds: Obj, current: str, wanted: list[str], pods: list[Obj], min_ready: int,
                      now: float) -> float | None:
        active = [p for p in pods if is_active(p)]
        on_wanted = [p for p in active if p["spec"].get("nodeName") in wanted]
        status: Obj = {
            "currentNumberScheduled": len({p["spec"].get("nodeName") for p in on_wanted}),
            "numberMisscheduled": sum(1 for p in active if p["spec"].get("nodeName") not in wanted),
            "desiredNumberScheduled": len(wanted),
            "numberReady": sum(1 for p in on_wanted if is_ready(p)),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        optional = {
            "updatedNumberScheduled": sum(1 for p in on_wanted
                                          if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current),
            "numberAvailable": sum(1 for p in on_wanted if is_available(p, min_ready, now)),
        }
        optional["numberUnavailable"] = max(len(wanted) - optional["numberAvailable"], 0)
        status.update({k: v for k, v in optional.items() if v})  # omitempty, as the Go type
        old: Obj = ds.get("status") or {}
        for kept in ("collisionCount", "conditions"):
            if old.get(kept) is not None:
                status[kept] = old[kept]
        if status != old:
            ds["status"] = status
            self.cluster.update(self._daemonsets, ds, status=True)
        waits = [w for w in (available_in(p, min_ready, now) for p in on_wanted) if w is not None]
        return min(waits) if waits else None
