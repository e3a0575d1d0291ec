"""Deployment controller without ReplicaSets: the Deployment owns its Pods directly.

Each Pod is made from the template, labelled with ``pod-template-hash`` and named
``<deployment>-<hash>-<5 random>``, as a ReplicaSet's Pods are. The Pods of one hash play the part of one
ReplicaSet (``pkg/controller/deployment``): ``RollingUpdate`` creates new Pods up to ``replicas + maxSurge``
and deletes old ones while ``replicas - maxUnavailable`` stay available (unhealthy old Pods first);
``Recreate`` deletes all old Pods and creates new ones once they are gone. Deleted Pods are replaced and
scaling creates or deletes Pods (least valuable first). Status and conditions are computed as upstream
(``sync.go`` ``calculateStatus``, ``progress.go``), from the Pods' Ready condition written by the kubelet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import Key
from localmesh.kubesim.controllers._base import Change, Cluster, Controller, parse_rfc3339
from localmesh.kubesim.controllers._events import EventRecorder
from localmesh.kubesim.controllers._pods import (
    available_in,
    deletion_rank,
    is_active,
    is_available,
    is_ready,
    is_terminating,
    owned_by,
    owner_keys,
    pod_from_template,
    selector_labels,
    template_hash,
)

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        fraction = int(value[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value or 0)


def surge_and_unavailable(spec: Obj) -> tuple[int, int]:
    """deploymentutil.ResolveFenceposts; Recreate: no surge, no unavailability allowance."""
    strategy = spec.get("strategy") or {}
    replicas = int(spec.get("replicas", 1))
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _set_condition(conditions: list[Obj], new: Obj, now: str, *, move_last: bool = False) -> list[Obj]:
    """SetDeploymentCondition (``move_last``: the remove-then-set of a progress update)."""
    old = next((c for c in conditions if c.get("type") == new["type"]), None)
    if old is not None and not move_last and old.get("status") == new["status"] and \
            old.get("reason") == new["reason"]:
        return conditions
    new = {"type": new["type"], "status": new["status"], "lastUpdateTime": now,
           "lastTransitionTime": old["lastTransitionTime"] if old is not None and old.get("status") ==
           new["status"] and old.get("lastTransitionTime") else now,
           "reason": new["reason"], "message": new["message"]}
    rest = [c for c in conditions if c.get("type") != new["type"]]
    if old is not None and not move_last:
        return [new if c.get("type") == new["type"] else c for c in conditions]
    return [*rest, new]


class DeploymentController(Controller):
    name = "deployment"
    follows = frozenset({("apps", "Deployment"), ("", "Pod")})

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._deployments = cluster.type("apps/v1", "Deployment")
        self._pods = cluster.type("v1", "Pod")
        self._events = EventRecorder(cluster, "deployment-controller")
        self._revisions: dict[str, dict[str, int]] = {}  # Deployment uid -> template hash -> revision

    def initial_keys(self) -> Iterable[Key]:
        return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in self.cluster.list(self._deployments)]

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        if rt.kind == "Deployment":
            return (change.key,)
        return owner_keys(change, "Deployment", "apps/")

    def reconcile(self, key: Key) -> float | None:
        d = self.cluster.get(self._deployments, key[0], key[1])
        if d is None or d["metadata"].get("deletionTimestamp"):
            return None
        spec: Obj = d["spec"]
        now = self.cluster.clock()
        min_ready = int(spec.get("minReadySeconds") or 0)
        current = template_hash(spec["template"])
        d = self._record_revision(d, current)
        pods = self._owned(d)
        if not spec.get("paused"):
            self._roll(d, current, pods, min_ready, now)
            pods = self._owned(d)
        return self._write_status(d, current, pods, min_ready, now)

    def _owned(self, d: Obj) -> list[Obj]:
        return [p for p in self.cluster.list(self._pods, d["metadata"]["namespace"], selector_labels(d),
                                                readonly=True)
                if owned_by(p, d)]

    # -- revisions --------------------------------------------------------------------------------------

    def _record_revision(self, d: Obj, current: str) -> Obj:
        """The revision annotation counts template changes, as the Deployment's ReplicaSets would: a new
        template gets the next number, going back to an earlier one renumbers it (a rollback)."""
        annotations = d["metadata"].setdefault("annotations", {})
        seen = self._revisions.setdefault(str(d["metadata"]["uid"]), {})
        shown = str(annotations.get(REVISION, ""))
        if not seen and shown.isdigit():
            seen[current] = int(shown)  # a restarted controller continues the count
        top = max(seen.values(), default=0)
        if seen.get(current) != top or current not in seen:
            seen[current] = top + 1
        if shown == str(seen[current]):
            return d
        annotations[REVISION] = str(seen[current])
        return self.cluster.update(self._deployments, d)

    # -- pods ------------------------------------------------------------------------------------------

    def _create(self, d: Obj, current: str, count: int) -> None:
        prefix = f"{d['metadata']['name']}-{current}-"
        for _ in range(count):
            pod = self.cluster.create(self._pods, pod_from_template(d, d["spec"]["template"], prefix,
                                                                    {HASH_LABEL: current}))
            self._events.normal(d, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

    def _delete(self, d: Obj, pods: list[Obj]) -> None:
        for pod in pods:
            meta = pod["metadata"]
            if self.cluster.delete(self._pods, meta["namespace"], meta["name"], meta.get("uid")):
                self._events.normal(d, "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    def _roll(self, d: Obj, current: str, pods: list[Obj], min_ready: int, now: float) -> None:
        spec: Obj = d["spec"]
        replicas = int(spec.get("replicas", 1))
        active = [p for p in pods if is_active(p)]
        new = [p for p in active if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current]
        old = [p for p in active if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != current]
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            if old:
                self._delete(d, old)
                return
            if any(p for p in pods if is_terminating(p)
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                   and (p["metadata"].get("labels") or {}).get(HASH_LABEL) != current):
                return  # old pods still shutting down: new ones wait (Recreate's guarantee)
            self._scale(d, current, new, replicas)
            return
        if not old:
            self._scale(d, current, new, replicas)
            return
        surge, unavailable = surge_and_unavailable(spec)
        if len(new) < replicas:
            room = replicas + surge - len(active)
            if room > 0:
                self._create(d, current, min(room, replicas - len(new)))
        elif len(new) > replicas:
            self._delete(d, sorted(new, key=deletion_rank)[:len(new) - replicas])
        active = [p for p in self._owned(d) if is_active(p)]
        new = [p for p in active if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current]
        old = [p for p in active if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != current]
        min_available = replicas - unavailable
        new_unavailable = sum(1 for p in new if not is_available(p, min_ready, now))
        budget = len(active) - min_available - new_unavailable
        if budget <= 0:
            return
        unhealthy = sorted((p for p in old if not is_available(p, min_ready, now)), key=deletion_rank)[:budget]
        self._delete(d, unhealthy)
        budget -= len(unhealthy)
        available = sum(1 for p in active if is_available(p, min_ready, now))
        healthy = [p for p in old if is_available(p, min_ready, now)]
        can = min(budget, available - min_available, len(healthy))
        if can > 0:
            self._delete(d, sorted(healthy, key=deletion_rank)[:can])

    def _scale(self, d: Obj, current: str, new: list[Obj], replicas: int) -> None:
        if len(new) < replicas:
            self._create(d, current, replicas - len(new))
        elif len(new) > replicas:
            self._delete(d, sorted(new, key=deletion_rank)[:len(new) - replicas])

    # -- status ----------------------------------------------------------------------------------------

    def _write_status(self, d: Obj, current: str, pods: list[Obj], min_ready: int, now: float) -> float | None:
        spec: Obj = d["spec"]
        replicas = int(spec.get("replicas", 1))
        active = [p for p in pods if is_active(p)]
        new = [p for p in active if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current]
        old_status: Obj = d.get("status") or {}
        counts = {
            "replicas": len(active),
            "updatedReplicas": len(new),
            "readyReplicas": sum(1 for p in active if is_ready(p)),
            "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        }
        counts["unavailableReplicas"] = max(replicas - counts["availableReplicas"], 0)
        stamp = self.cluster.now()
        status: Obj = {"observedGeneration": d["metadata"].get("generation", 1)}
        status.update({k: v for k, v in counts.items() if v})  # omitempty, as the Go type
        conditions = list(old_status.get("conditions") or [])
        _, unavailable = surge_and_unavailable(spec)
        if counts["availableReplicas"] >= replicas - unavailable:
            available = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                         "message": "Deployment has minimum availability."}
        else:
            available = {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                         "message": "Deployment does not have minimum availability."}
        conditions = _set_condition(conditions, available, stamp)
        conditions = self._progress(d, current, counts, old_status, conditions, stamp, now)
        status["conditions"] = conditions
        if old_status.get("collisionCount") is not None:
            status["collisionCount"] = old_status["collisionCount"]
        if status != old_status:
            d["status"] = status
            self.cluster.update(self._deployments, d, status=True)
        return self._next_check(d, active, min_ready, now, conditions)

    def _progress(self, d: Obj, current: str, counts: dict[str, int], old_status: Obj, conditions: list[Obj],
                  stamp: str, now: float) -> list[Obj]:
        """syncRolloutStatus: NewReplicaSetCreated / ReplicaSetUpdated / NewReplicaSetAvailable /
        ProgressDeadlineExceeded. The ReplicaSet these messages name is the group of Pods of one hash."""
        spec: Obj = d["spec"]
        replicas = int(spec.get("replicas", 1))
        rs_name = f"{d['metadata']['name']}-{current}"
        progressing = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if spec.get("paused"):
            return _set_condition(conditions, {"type": "Progressing", "status": "Unknown", "reason":
                                               "DeploymentPaused", "message": "Deployment is paused"}, stamp)
        if progressing is not None and progressing.get("reason") == "DeploymentPaused":
            return _set_condition(conditions, {"type": "Progressing", "status": "Unknown", "reason":
                                               "DeploymentResumed", "message": "Deployment is resumed"}, stamp)
        complete = (counts["updatedReplicas"] == replicas and counts["replicas"] == replicas
                    and counts["availableReplicas"] == replicas)
        if complete:
            return _set_condition(conditions, {"type": "Progressing", "status": "True",
                                               "reason": "NewReplicaSetAvailable",
                                               "message": f'ReplicaSet "{rs_name}" has successfully progressed.'},
                                  stamp)
        moved = (counts["updatedReplicas"] > int(old_status.get("updatedReplicas", 0))
                 or counts["readyReplicas"] > int(old_status.get("readyReplicas", 0))
                 or counts["availableReplicas"] > int(old_status.get("availableReplicas", 0))
                 or counts["replicas"] - counts["updatedReplicas"]
                 < int(old_status.get("replicas", 0)) - int(old_status.get("updatedReplicas", 0)))
        new_template = progressing is None or rs_name not in str(progressing.get("message", ""))
        if new_template:
            return _set_condition(conditions, {"type": "Progressing", "status": "True",
                                               "reason": "NewReplicaSetCreated",
                                               "message": f'Created new replica set "{rs_name}"'}, stamp,
                                  move_last=True)
        if moved:
            return _set_condition(conditions, {"type": "Progressing", "status": "True",
                                               "reason": "ReplicaSetUpdated",
                                               "message": f'ReplicaSet "{rs_name}" is progressing.'}, stamp,
                                  move_last=True)
        if self._timed_out(d, progressing, now):
            return _set_condition(conditions, {"type": "Progressing", "status": "False",
                                               "reason": "ProgressDeadlineExceeded",
                                               "message": f'ReplicaSet "{rs_name}" has timed out progressing.'},
                                  stamp)
        return conditions

    @staticmethod
    def _timed_out(d: Obj, progressing: Obj | None, now: float) -> bool:
        deadline = d["spec"].get("progressDeadlineSeconds")
        if progressing is None or deadline is None or progressing.get("reason") == "NewReplicaSetAvailable":
            return False
        since = parse_rfc3339(progressing.get("lastUpdateTime"))
        return since is not None and since + int(deadline) < now

    def _next_check(self, d: Obj, active: list[Obj], min_ready: int, now: float,
                    conditions: list[Obj]) -> float | None:
        """When to look again without any event: a Pod reaching minReadySeconds, or the progress deadline."""
        waits = [w for w in (available_in(p, min_ready, now) for p in active) if w is not None]
        progressing = next((c for c in conditions if c.get("type") == "Progressing"), None)
        deadline = d["spec"].get("progressDeadlineSeconds")
        if progressing is not None and progressing.get("status") == "True" and deadline is not None and \
                progressing.get("reason") != "NewReplicaSetAvailable":
            since = parse_rfc3339(progressing.get("lastUpdateTime"))
            if since is not None:
                waits.append(max(since + int(deadline) - now, 0.0) + 1.0)
        return min(waits) if waits else None
