"""Per-kind defaulting, as kube-apiserver applies it on every write (pure).

Only the defaults consumers of this project read are filled in: a Service's type, port protocols,
target ports and cluster IP; EndpointSlice/Endpoints port protocols; a Namespace's phase.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._workload_defaults import apply_workload_defaults

Obj = dict[str, Any]


def _default_ports(ports: Any, *, target_port: bool) -> None:
    if not isinstance(ports, list):
        return
    for port in ports:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if target_port and "port" in port:
                port.setdefault("targetPort", port["port"])


def _service(obj: Obj, old: Obj | None, allocate_ip: Callable[[], str]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    _default_ports(spec.get("ports"), target_port=True)
    if spec["type"] == "ExternalName":
        return
    old_spec = (old or {}).get("spec") or {}
    if not spec.get("clusterIP"):
        if spec.get("clusterIPs"):
            spec["clusterIP"] = spec["clusterIPs"][0]
        elif old_spec.get("clusterIP"):  # immutable: an update that omits it keeps it
            spec["clusterIP"] = old_spec["clusterIP"]
            spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_spec["clusterIP"]]
        else:
            spec["clusterIP"] = allocate_ip()
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    if spec["clusterIP"] != "None" and "ipFamilies" not in spec:
        try:
            family = "IPv6" if ipaddress.ip_address(spec["clusterIP"]).version == 6 else "IPv4"
        except ValueError:
            family = "IPv4"
        spec["ipFamilies"] = [family]
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


def apply_defaults(rt: ResourceType, obj: Obj, old: Obj | None, allocate_ip: Callable[[], str]) -> None:
    """Fill in defaults on ``obj`` (``old``: the stored version on updates, else None)."""
    apply_workload_defaults(rt, obj, old)
    if rt.group == "":
        if rt.kind == "Service":
            _service(obj, old, allocate_ip)
        elif rt.kind == "Endpoints":
            for subset in obj.get("subsets") or []:
                if isinstance(subset, dict):
                    _default_ports(subset.get("ports"), target_port=False)
        elif rt.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            status = obj.setdefault("status", {})
            if isinstance(status, dict):
                status.setdefault("phase", "Active")
    elif rt.group == "discovery.k8s.io" and rt.kind == "EndpointSlice":
        _default_ports(obj.get("ports"), target_port=False)
