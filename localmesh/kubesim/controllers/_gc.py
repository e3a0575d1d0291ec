"""Garbage collector, for the owners this emulator's controllers make dependents of: when a Deployment,
DaemonSet or Service is deleted, the Pods and EndpointSlices whose ``ownerReferences`` name it go too
(background propagation). Foreground deletion, orphaning and ``blockOwnerDeletion`` are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import DELETED, Key
from localmesh.kubesim.controllers._base import Change, Cluster, Controller

_DEPENDENTS = (("v1", "Pod"), ("discovery.k8s.io/v1", "EndpointSlice"))


class GarbageCollector(Controller):
    """Keys are (namespace, uid of the deleted owner)."""

    name = "garbagecollector"
    follows = frozenset({("apps", "Deployment"), ("apps", "DaemonSet"), ("", "Service")})

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._dependents = [cluster.type(api_version, kind) for api_version, kind in _DEPENDENTS]

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        uid = change.obj["metadata"].get("uid")
        return ((change.key[0], str(uid)),) if change.type == DELETED and uid else ()

    def reconcile(self, key: Key) -> float | None:
        namespace, uid = key
        for rt in self._dependents:
            for obj in self.cluster.list(rt, namespace):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    self.cluster.delete(rt, namespace, obj["metadata"]["name"], obj["metadata"].get("uid"))
        return None
