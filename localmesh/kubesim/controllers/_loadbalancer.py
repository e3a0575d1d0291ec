"""LoadBalancer controller: a Service of type LoadBalancer gets ``status.loadBalancer.ingress[0].ip`` from the
cluster's address pool, as MetalLB's controller assigns them (``controller/service.go``): the address asked
for in ``spec.loadBalancerIP`` or the ``metallb.io/loadBalancerIPs`` annotation when it is in the pool and
free, else the first free one; released when the Service goes or stops being a LoadBalancer; an exhausted
pool is a Warning Event ``AllocationFailed`` and no address, retried whenever an address is freed.

Only the assignment lives here; making traffic to the address reach the Service's pods is the node's job.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import Key
from localmesh.kubesim.controllers._base import Change, Cluster, Controller
from localmesh.kubesim.controllers._events import EventRecorder

Obj = dict[str, Any]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_REQUEST_ANNOTATIONS = ("metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs")


class AddressPool:
    """Addresses from CIDRs (network and broadcast addresses left out) and ``first-last`` ranges, in order."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._ranges: list[tuple[IP, IP]] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            try:
                if "-" in part:
                    low, high = part.split("-", 1)
                    first, last = ipaddress.ip_address(low.strip()), ipaddress.ip_address(high.strip())
                    if first.version != last.version or first > last:  # type: ignore[operator]
                        raise ValueError(f"{part!r} is not a first-last range")
                    self._ranges.append((first, last))
                else:
                    net = ipaddress.ip_network(part, strict=False)
                    if net.num_addresses <= 2:  # a /31, /32 (or /127, /128): every address is usable
                        self._ranges.append((net[0], net[-1]))
                    else:
                        self._ranges.append((net[1], net[-2]))
            except ValueError as exc:
                raise ValueError(f"invalid address pool {spec!r}: {exc}") from None
        if not self._ranges:
            raise ValueError(f"invalid address pool {spec!r}: no addresses")

    def __iter__(self) -> Iterator[IP]:
        for first, last in self._ranges:
            current = first
            while current <= last:  # type: ignore[operator]
                yield current
                current = current + 1

    def __contains__(self, ip: object) -> bool:
        try:
            addr = ipaddress.ip_address(str(ip))
        except ValueError:
            return False
        return any(first.version == addr.version and first <= addr <= last  # type: ignore[operator]
                   for first, last in self._ranges)


def _family(svc: Obj) -> int:
    families = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    return 6 if families[0] == "IPv6" else 4


def _requested(svc: Obj) -> str | None:
    annotations = svc["metadata"].get("annotations") or {}
    for name in _REQUEST_ANNOTATIONS:
        if annotations.get(name):
            return str(annotations[name]).split(",")[0].strip()
    asked = (svc.get("spec") or {}).get("loadBalancerIP")
    return str(asked) if asked else None


def _ingress_ip(svc: Obj) -> str | None:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return str(ingress[0]["ip"]) if ingress and isinstance(ingress[0], dict) and ingress[0].get("ip") else None


class LoadBalancerController(Controller):
    name = "loadbalancer"
    follows = frozenset({("", "Service")})

    def __init__(self, cluster: Cluster, pool: AddressPool) -> None:
        super().__init__(cluster)
        self.pool = pool
        self._services = cluster.type("v1", "Service")
        self._events = EventRecorder(cluster, "kubesim-lb-controller")
        self._owner: dict[str, Key] = {}  # address -> Service holding it
        self._waiting: set[Key] = set()  # LoadBalancers without an address (pool exhausted)

    def assigned(self) -> dict[str, Key]:
        """Address -> (namespace, name) of the Service it is assigned to."""
        return dict(self._owner)

    def initial_keys(self) -> Iterable[Key]:
        # Addresses already in Services' status (a restart, or seeded objects) are claimed first.
        services = self.cluster.list(self._services)
        for svc in services:
            ip = _ingress_ip(svc)
            if ip and self._manages(svc) and ip in self.pool:
                self._owner.setdefault(ip, (svc["metadata"]["namespace"], svc["metadata"]["name"]))
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in services]

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        return (change.key,)

    @staticmethod
    def _manages(svc: Obj) -> bool:
        spec = svc.get("spec") or {}
        return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")

    def _release(self, key: Key) -> None:
        freed = [ip for ip, owner in self._owner.items() if owner == key]
        for ip in freed:
            del self._owner[ip]
        if freed:
            for waiting in sorted(self._waiting):
                self.queue.add(waiting)

    def reconcile(self, key: Key) -> float | None:
        svc = self.cluster.get(self._services, key[0], key[1])
        if svc is None or not self._manages(svc):
            self._waiting.discard(key)
            self._release(key)
            if svc is not None and _ingress_ip(svc) is not None and (svc.get("spec") or {}).get("type") != \
                    "LoadBalancer":
                svc["status"]["loadBalancer"] = {}
                self.cluster.update(self._services, svc, status=True)
            return None
        current = _ingress_ip(svc)
        requested = _requested(svc)
        if current is not None and self._owner.get(current) == key and requested in (None, current):
            return None
        self._release(key)
        ip = self._allocate(svc, key, requested)
        if ip is None:
            self._waiting.add(key)
            return None
        self._waiting.discard(key)
        self._owner[ip] = key
        status = svc.setdefault("status", {})
        status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
        self.cluster.update(self._services, svc, status=True)
        self._events.normal(svc, "IPAllocated", f'Assigned IP ["{ip}"]')
        return None

    def _allocate(self, svc: Obj, key: Key, requested: str | None) -> str | None:
        name = f"{key[0]}/{key[1]}"
        if requested is not None:
            problem = None
            if requested not in self.pool:
                problem = f'"{requested}" is not allowed in config'
            elif self._owner.get(requested, key) != key:
                problem = f'"{requested}" is already in use'
            if problem is None:
                return requested
            self._events.warning(svc, "AllocationFailed", f'Failed to allocate IP for "{name}": {problem}')
            return None
        family = _family(svc)
        for ip in self.pool:
            text = str(ip)
            if ip.version == family and text not in self._owner:
                return text
        self._events.warning(svc, "AllocationFailed", f'Failed to allocate IP for "{name}": no available IPs')
        return None
