"""Endpoints and EndpointSlice controllers for Services with a selector (``pkg/controller/endpoint``,
``pkg/controller/endpointslice``): the selected Pods that have an IP, their ports resolved from each
Service port's ``targetPort`` (a number, or a container port's name), ready or not by their Ready condition.

Endpoints: one subset per distinct resolved port list, ready addresses in ``addresses``, the others in
``notReadyAddresses``, terminating Pods left out. EndpointSlices: one per address family and resolved port
list (no 100-endpoint split), terminating Pods included with ``ready: false, terminating: true``, owned by
the Service and labelled ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``;
a Service without endpoints keeps one empty slice. Services without a selector are left alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import Key
from localmesh.kubesim.controllers._base import Change, Cluster, Controller
from localmesh.kubesim.controllers._pods import is_ready, is_terminating, owner_reference

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
Ports = tuple[tuple[str, int, str], ...]  # (name, port, protocol)


def _selects(svc: Obj, labels: dict[str, str] | None) -> bool:
    selector = (svc.get("spec") or {}).get("selector") or {}
    labels = labels or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _resolve_ports(svc: Obj, pod: Obj) -> Ports:
    found: list[tuple[str, int, str]] = []
    containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]
    for port in (svc.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        proto = str(port.get("protocol", "TCP"))
        number: int | None = None
        if isinstance(target, int):
            number = target
        elif isinstance(target, str) and target.isdigit():
            number = int(target)
        else:
            for container in containers:
                for cport in container.get("ports") or []:
                    if cport.get("name") == target and cport.get("protocol", "TCP") == proto:
                        number = int(cport["containerPort"])
        if number is not None:
            found.append((str(port.get("name", "")), number, proto))
    return tuple(found)


def _pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(p["ip"]) for p in status.get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta.get("uid")}


def _port_docs(ports: Ports) -> list[Obj]:
    docs = []
    for name, number, proto in ports:
        doc: Obj = {"port": number, "protocol": proto}
        if name:
            doc = {"name": name, **doc}
        docs.append(doc)
    return docs


class _ServiceEndpoints(Controller):
    """What both controllers share: which Services a Pod change concerns, and the selected Pods."""

    follows = frozenset({("", "Service"), ("", "Pod")})

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._services = cluster.type("v1", "Service")
        self._pods = cluster.type("v1", "Pod")

    def initial_keys(self) -> Iterable[Key]:
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.cluster.list(self._services)]

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        if rt.kind == "Service":
            return (change.key,)
        labels = [change.obj["metadata"].get("labels")]
        if change.prev is not None:
            labels.append(change.prev["metadata"].get("labels"))
        return [(s["metadata"]["namespace"], s["metadata"]["name"])
                for s in self.cluster.list(self._services, change.key[0]) if any(_selects(s, lb) for lb in labels)]

    def _selected(self, svc: Obj) -> list[Obj]:
        selector = (svc.get("spec") or {}).get("selector") or {}
        pods = [p for p in self.cluster.list(self._pods, svc["metadata"]["namespace"], selector, readonly=True)
                if _selects(svc, p["metadata"].get("labels"))
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and _pod_ips(p)]
        return sorted(pods, key=lambda p: str(p["metadata"]["name"]))

    @staticmethod
    def _ready(svc: Obj, pod: Obj) -> bool:
        return bool((svc.get("spec") or {}).get("publishNotReadyAddresses")) or is_ready(pod)


class EndpointsController(_ServiceEndpoints):
    name = "endpoints"

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._endpoints = cluster.type("v1", "Endpoints")

    def reconcile(self, key: Key) -> float | None:
        svc = self.cluster.get(self._services, key[0], key[1])
        existing = self.cluster.get(self._endpoints, key[0], key[1])
        if svc is None:
            if existing is not None:
                self.cluster.delete(self._endpoints, key[0], key[1])
            return None
        if not (svc.get("spec") or {}).get("selector"):
            return None
        groups: dict[Ports, tuple[list[Obj], list[Obj]]] = {}
        for pod in self._selected(svc):
            if is_terminating(pod) and not (svc.get("spec") or {}).get("publishNotReadyAddresses"):
                continue
            ports = _resolve_ports(svc, pod)
            if not ports and (svc.get("spec") or {}).get("ports"):
                continue
            ready, not_ready = groups.setdefault(ports, ([], []))
            address: Obj = {"ip": _pod_ips(pod)[0]}
            if pod["spec"].get("nodeName"):
                address["nodeName"] = pod["spec"]["nodeName"]
            address["targetRef"] = _target_ref(pod)
            (ready if self._ready(svc, pod) else not_ready).append(address)
        subsets = []
        for ports, (ready, not_ready) in sorted(groups.items()):
            subset: Obj = {}
            if ready:
                subset["addresses"] = sorted(ready, key=lambda a: str(a["ip"]))
            if not_ready:
                subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: str(a["ip"]))
            if ports:
                subset["ports"] = _port_docs(ports)
            subsets.append(subset)
        labels = dict(svc["metadata"].get("labels") or {})
        if existing is None:
            doc: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": key[1], "namespace": key[0], "labels": labels}}
            if subsets:
                doc["subsets"] = subsets
            self.cluster.create(self._endpoints, doc)
            return None
        if (existing.get("subsets") or None) == (subsets or None) and \
                (existing["metadata"].get("labels") or {}) == labels:
            return None
        existing["metadata"]["labels"] = labels
        if subsets:
            existing["subsets"] = subsets
        else:
            existing.pop("subsets", None)
        self.cluster.update(self._endpoints, existing)
        return None


class EndpointSliceController(_ServiceEndpoints):
    name = "endpointslice"
    follows = frozenset({("", "Service"), ("", "Pod"), ("discovery.k8s.io", "EndpointSlice")})

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._slices = cluster.type("discovery.k8s.io/v1", "EndpointSlice")

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        if rt.kind == "EndpointSlice":
            labels = change.obj["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) == MANAGED_BY and labels.get(SERVICE_NAME_LABEL):
                return ((change.key[0], str(labels[SERVICE_NAME_LABEL])),)  # someone changed ours
            return ()
        return super().keys_for(rt, change)

    def _desired(self, svc: Obj) -> dict[tuple[str, Ports], list[Obj]]:
        spec: Obj = svc.get("spec") or {}
        families = [f for f in spec.get("ipFamilies") or ["IPv4"] if f in ("IPv4", "IPv6")]
        slices: dict[tuple[str, Ports], list[Obj]] = {}
        for pod in self._selected(svc):
            ports = _resolve_ports(svc, pod)
            if not ports and spec.get("ports"):
                continue
            terminating = is_terminating(pod)
            for ip in _pod_ips(pod):
                family = "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
                if family not in families:
                    continue
                serving = self._ready(svc, pod)
                endpoint: Obj = {"addresses": [ip],
                                 "conditions": {"ready": serving and not terminating, "serving": serving,
                                                "terminating": terminating},
                                 "targetRef": _target_ref(pod)}
                if pod["spec"].get("nodeName"):
                    endpoint["nodeName"] = pod["spec"]["nodeName"]
                slices.setdefault((family, ports), []).append(endpoint)
        if not slices:
            slices[(families[0] if families else "IPv4", ())] = []
        return slices

    def reconcile(self, key: Key) -> float | None:
        svc = self.cluster.get(self._services, key[0], key[1])
        mine = [s for s in self.cluster.list(self._slices, key[0])
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == key[1]
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY]
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            for s in mine:  # the garbage collector would; done here at once
                self.cluster.delete(self._slices, key[0], s["metadata"]["name"], s["metadata"].get("uid"))
            return None
        labels = {k: v for k, v in (svc["metadata"].get("labels") or {}).items()
                  if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
        labels.update({SERVICE_NAME_LABEL: key[1], MANAGED_BY_LABEL: MANAGED_BY})
        if (svc.get("spec") or {}).get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        existing = {(s.get("addressType"), tuple((p.get("name", ""), p.get("port"), p.get("protocol"))
                                                 for p in s.get("ports") or [])): s for s in mine}
        for (family, ports), endpoints in self._desired(svc).items():
            current = existing.pop((family, ports), None)
            body: Obj = {"addressType": family, "endpoints": endpoints, "ports": _port_docs(ports)}
            if current is None:
                self.cluster.create(self._slices, {
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": f"{key[1][:57]}-", "namespace": key[0], "labels": labels,
                                 "ownerReferences": [owner_reference(svc)]}, **body})
                continue
            if all(current.get(k) == v for k, v in body.items()) and current["metadata"].get("labels") == labels:
                continue
            current.update(body)
            current["metadata"]["labels"] = labels
            self.cluster.update(self._slices, current)
        for stale in existing.values():
            self.cluster.delete(self._slices, key[0], stale["metadata"]["name"], stale["metadata"].get("uid"))
        return None
