"""Service address and port allocation, as kube-apiserver's Service registry does it on create and update:
cluster IPs from the service CIDR, ``nodePort`` for every port of a NodePort or LoadBalancer Service and
``healthCheckNodePort`` for a LoadBalancer with ``externalTrafficPolicy: Local``
(``pkg/registry/core/service/storage/alloc.go``, ``pkg/registry/core/service/portallocator``).

What is taken is derived from committed Services only (``observe`` is a store listener), so a dry run or
a refused write never holds an allocation and a delete frees its addresses and ports at once.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from typing import Any

from localmesh.kubesim import _errors as errors
from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import DELETED, Key

Obj = dict[str, Any]

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _wants_node_ports(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)


def _wants_health_check_port(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _ports(spec: Obj) -> list[Obj]:
    ports = spec.get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def node_ports_of(obj: Obj) -> set[int]:
    spec = obj.get("spec") or {}
    found = {p["nodePort"] for p in _ports(spec) if isinstance(p.get("nodePort"), int) and p["nodePort"]}
    health = spec.get("healthCheckNodePort")
    if isinstance(health, int) and health:
        found.add(health)
    return found


def cluster_ips_of(obj: Obj) -> set[str]:
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return {str(ip) for ip in ips if ip and ip != "None"}


class ServiceAllocator:
    """Cluster IPs (handed out in order) and node ports (random, upper band first, as kube-apiserver)."""

    def __init__(self, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE, *,
                 rng: random.Random | None = None) -> None:
        self.network = ipaddress.ip_network(service_cidr)
        self.node_port_range = node_port_range
        self._rng = rng or random.Random()
        self._ip_owner: dict[str, Key] = {}
        self._port_owner: dict[int, Key] = {}
        self._cursor = self._fresh_cursor()

    def _fresh_cursor(self) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        hosts = self.network.hosts()
        next(hosts, None)  # the first address is the kubernetes Service's, by convention
        return hosts

    # -- bookkeeping from committed Services -------------------------------------------------------------

    def observe(self, rt: ResourceType, etype: str, key: Key, obj: Obj | None, prev: Obj | None) -> None:
        """Follow one committed Service change (``obj`` None or ``etype`` DELETED: it is gone)."""
        if prev is not None:
            for ip in cluster_ips_of(prev):
                if self._ip_owner.get(ip) == key:
                    del self._ip_owner[ip]
            for port in node_ports_of(prev):
                if self._port_owner.get(port) == key:
                    del self._port_owner[port]
        if obj is not None and etype != DELETED:
            for ip in cluster_ips_of(obj):
                self._ip_owner[ip] = key
            for port in node_ports_of(obj):
                self._port_owner[port] = key

    # -- allocation on a write ---------------------------------------------------------------------------

    def allocate_cluster_ip(self) -> str:
        for attempt in range(2):
            for host in self._cursor:
                ip = str(host)
                if ip not in self._ip_owner:
                    return ip
            if attempt == 0:
                self._cursor = self._fresh_cursor()  # wrap around: freed addresses come back
        raise errors.KubeError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: "
                                                     "range is full")

    def admit(self, rt: ResourceType, key: Key, obj: Obj, old: Obj | None, *, strict: bool) -> None:
        """Check and fill in ``obj``'s node ports (after defaulting); ``strict`` refuses clashes (HTTP
        writes), else a clash is taken over (seeding)."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        name = key[1]
        old_spec = (old or {}).get("spec") or {}
        if strict:
            self._check_cluster_ips(rt, key, obj, old)
        ports = _ports(spec)
        if not _wants_node_ports(spec):
            if spec.get("type") == "ClusterIP" and old_spec.get("type") in _NODE_PORT_TYPES:
                # dropTypeDependentFields: leaving NodePort/LoadBalancer drops the ports it was given.
                old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in _ports(old_spec)}
                for port in ports:
                    if port.get("nodePort") == old_ports.get((port.get("port"), port.get("protocol"))):
                        port.pop("nodePort", None)
            for i, port in enumerate(ports):
                if port.get("nodePort") and spec.get("type") == "ClusterIP":
                    raise errors.invalid(rt, name, f"spec.ports[{i}].nodePort", "FieldValueForbidden",
                                         "Forbidden: may not be used when `type` is 'ClusterIP'")
        else:
            self._admit_node_ports(rt, key, ports, _ports(old_spec), strict=strict)
        if _wants_health_check_port(spec):
            if not spec.get("healthCheckNodePort"):
                if old_spec.get("healthCheckNodePort"):
                    spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]
                else:
                    spec["healthCheckNodePort"] = self._free_port(key, node_ports_of(obj))
            elif strict:
                self._check_port(rt, key, "spec.healthCheckNodePort", int(spec["healthCheckNodePort"]))
        else:
            spec.pop("healthCheckNodePort", None)

    def _check_cluster_ips(self, rt: ResourceType, key: Key, obj: Obj, old: Obj | None) -> None:
        mine = cluster_ips_of(old) if old is not None else set()
        for ip in sorted(cluster_ips_of(obj) - mine):
            owner = self._ip_owner.get(ip)
            if owner is not None and owner != key:
                listed = ", ".join(f'"{i}"' for i in obj["spec"].get("clusterIPs") or [ip])
                raise errors.invalid(rt, key[1], "spec.clusterIPs", "FieldValueInvalid",
                                     f"Invalid value: []string{{{listed}}}: failed to allocate IP {ip}: "
                                     f"provided IP is already allocated")

    def _admit_node_ports(self, rt: ResourceType, key: Key, ports: list[Obj], old_ports: list[Obj], *,
                          strict: bool) -> None:
        # An update that omits a port's nodePort keeps the one it had (patchAllocatedValues).
        previous = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old_ports if p.get("nodePort")}
        seen: dict[tuple[int, str], int] = {}
        for i, port in enumerate(ports):
            given = port.get("nodePort")
            if not given:
                continue
            if not isinstance(given, int):
                raise errors.invalid(rt, key[1], f"spec.ports[{i}].nodePort", "FieldValueInvalid",
                                     f"Invalid value: {given!r}: must be an integer")
            proto = str(port.get("protocol", "TCP"))
            if (given, proto) in seen:
                raise errors.invalid(rt, key[1], f"spec.ports[{i}].nodePort", "FieldValueDuplicate",
                                     f"Duplicate value: {given}")
            seen[(given, proto)] = i
            if strict:
                self._check_port(rt, key, f"spec.ports[{i}].nodePort", given)
        taken = {n for n, _ in seen}
        for port in ports:
            if port.get("nodePort"):
                continue
            kept = previous.get((port.get("port"), port.get("protocol")))
            if kept and kept not in taken:
                port["nodePort"] = kept
            else:
                port["nodePort"] = self._free_port(key, taken)
            taken.add(port["nodePort"])

    def _check_port(self, rt: ResourceType, key: Key, field: str, port: int) -> None:
        low, high = self.node_port_range
        if not low <= port <= high:
            raise errors.invalid(rt, key[1], field, "FieldValueInvalid",
                                 f"Invalid value: {port}: provided port is not in the valid range. "
                                 f"The range of valid ports is {low}-{high}")
        owner = self._port_owner.get(port)
        if owner is not None and owner != key:
            raise errors.invalid(rt, key[1], field, "FieldValueInvalid",
                                 f"Invalid value: {port}: provided port is already allocated")

    def _free_port(self, key: Key, also_taken: set[int]) -> int:
        low, high = self.node_port_range
        size = high - low + 1
        # The lower band is left for ports asked for by number (KEP-3668); dynamic ones come from above it.
        static = min(max(16, size // 32), 128)
        for band in ((low + static, high), (low, low + static - 1)):
            free = [p for p in range(band[0], band[1] + 1)
                    if p not in also_taken and self._port_owner.get(p, key) == key]
            if free:
                return self._rng.choice(free)
        raise errors.KubeError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: "
                                                     "range is full")
