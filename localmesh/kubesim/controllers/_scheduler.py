"""A small scheduler: a Pod of ``schedulerName: default-scheduler`` without ``spec.nodeName`` goes to the
feasible Node with the fewest active Pods (ties: by name). Feasible: not ``spec.unschedulable``, Ready
unless its Ready condition says otherwise, labels matching the Pod's ``nodeSelector``, and no NoSchedule /
NoExecute taint the Pod does not tolerate. Binding sets ``spec.nodeName`` and the ``PodScheduled``
condition, as the ``pods/binding`` subresource does; no feasible Node leaves the Pod Pending with
``PodScheduled=False`` (reason ``Unschedulable``) and a ``FailedScheduling`` Event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import DELETED, Key
from localmesh.kubesim.controllers._base import Change, Cluster, Controller
from localmesh.kubesim.controllers._events import EventRecorder
from localmesh.kubesim.controllers._pods import condition, is_active

Obj = dict[str, Any]


def _wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") in (None, "Pending"))


def _tolerates(pod: Obj, taint: Obj) -> bool:
    for tol in (pod.get("spec") or {}).get("tolerations") or []:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and (not tol.get("key") or tol.get("key") == taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def feasible(pod: Obj, node: Obj) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    ready = condition(node, "Ready")
    if ready is not None and ready.get("status") != "True":
        return False
    labels = node["metadata"].get("labels") or {}
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    return all(_tolerates(pod, t) for t in spec.get("taints") or []
               if t.get("effect") in ("NoSchedule", "NoExecute"))


class Scheduler(Controller):
    name = "scheduler"
    follows = frozenset({("", "Pod"), ("", "Node")})

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._pods = cluster.type("v1", "Pod")
        self._nodes = cluster.type("v1", "Node")
        self._events = EventRecorder(cluster, "default-scheduler")
        self._load: Counter[str] = Counter()  # node -> active pods bound to it, kept by keys_for

    @staticmethod
    def _bound(pod: Obj | None) -> str | None:
        if pod is None or not is_active(pod):
            return None
        node = (pod.get("spec") or {}).get("nodeName")
        return str(node) if node else None

    def _pending(self) -> list[Key]:
        pods = self.cluster.list(self._pods, readonly=True)
        return [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods if _wants_scheduling(p)]

    def initial_keys(self) -> Iterable[Key]:
        self._load = Counter(node for node in map(self._bound, self.cluster.list(self._pods)) if node)
        return self._pending()

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        if rt.kind == "Node":
            return self._pending() if change.type != DELETED else ()
        # Called synchronously with every committed pod change, our own bindings included.
        before, now = self._bound(change.prev), self._bound(None if change.type == DELETED else change.obj)
        if before != now:
            if before:
                self._load[before] -= 1
            if now:
                self._load[now] += 1
        if change.type == DELETED:
            # A pod gone frees room: pods left unschedulable get another try.
            return self._pending()
        return (change.key,) if _wants_scheduling(change.obj) else ()

    def reconcile(self, key: Key) -> float | None:
        pod = self.cluster.get(self._pods, key[0], key[1])
        if pod is None or not _wants_scheduling(pod):
            return None
        nodes = sorted(self.cluster.list(self._nodes), key=lambda n: str(n["metadata"]["name"]))
        candidates = [n for n in nodes if feasible(pod, n)]
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        if not candidates:
            message = (f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) were unschedulable or did "
                       f"not match the Pod's node selector or taints." if nodes
                       else "no nodes available to schedule pods")
            old = condition(pod, "PodScheduled")
            if old is not None and old.get("status") == "False" and old.get("message") == message:
                return None
            conditions.append({"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                               "lastTransitionTime": self.cluster.now(), "reason": "Unschedulable",
                               "message": message})
            status["conditions"] = conditions
            self.cluster.update(self._pods, pod, status=True)
            self._events.warning(pod, "FailedScheduling", message)
            return None
        load = self._load
        node = min(candidates, key=lambda n: (load[str(n["metadata"]["name"])], str(n["metadata"]["name"])))
        node_name = str(node["metadata"]["name"])
        pod["spec"]["nodeName"] = node_name
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": self.cluster.now()})
        status["conditions"] = conditions
        self.cluster.update(self._pods, pod)
        self._events.normal(pod, "Scheduled", f"Successfully assigned {key[0]}/{key[1]} to {node_name}")
        return None
