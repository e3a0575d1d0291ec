"""Pod networking: one Linux bridge per local cluster with its pod subnet, a veth per pod, and
LoadBalancer addresses routed to the pod that serves them.

Every pod gets its own network namespace (held by its sandbox process), ``lo`` up, ``eth0`` with an
address of the cluster's pod subnet and a default route via the bridge, whose address is the node's
(host's) address in that subnet. The host forwards between bridges (IPv4 forwarding is turned on
while a kubelet runs), so pods of different local clusters reach each other and their LoadBalancer
addresses. A LoadBalancer address is added to the serving pod's ``lo`` and routed by the host to the
pod's address: traffic to ``<ingress ip>:<port>`` reaches the pod's ``<port>`` (no port translation).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from localmesh.kubelet._state import RunState, host_lock
from localmesh.kubelet._sys import run

# Pod subnets are taken from here when none is configured: one free /24 per cluster.
DEFAULT_POOL = ipaddress.IPv4Network("10.201.0.0/16")


async def _used_networks() -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    for route in json.loads(await run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            try:
                used.append(ipaddress.IPv4Network(dst, strict=False))
            except ValueError:
                continue
    return used


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@dataclass
class ClusterNetwork:
    """The bridge and pod subnet of one local cluster (one kubelet)."""

    state: RunState
    bridge: str
    subnet: ipaddress.IPv4Network | None = None
    _next: int = 2
    _free: list[ipaddress.IPv4Address] = field(default_factory=list)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        assert self.subnet is not None
        return self.subnet.network_address + 1

    async def create(self) -> None:
        with host_lock(self.state.root):
            if self.subnet is None:
                used = await _used_networks()
                self.subnet = next((net for net in DEFAULT_POOL.subnets(new_prefix=24)
                                    if not any(net.overlaps(u) for u in used)), None)
                if self.subnet is None:
                    raise RuntimeError(f"no free /24 pod subnet left in {DEFAULT_POOL}")
            self.state.add("links", self.bridge)
            await run(["ip", "link", "add", "name", self.bridge, "type", "bridge"])
            await run(["ip", "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge])
            await run(["ip", "link", "set", self.bridge, "up"])
        self.state.forwarding(True)

    async def close(self) -> None:
        await run(["ip", "link", "del", self.bridge], check=False)
        self.state.remove("links", self.bridge)
        self.state.forwarding(False)

    def allocate(self) -> ipaddress.IPv4Address:
        assert self.subnet is not None
        if self._free:
            return self._free.pop(0)
        if self._next >= self.subnet.num_addresses - 1:
            raise RuntimeError(f"pod subnet {self.subnet} is full")
        ip = self.subnet.network_address + self._next
        self._next += 1
        return ip

    def release(self, ip: ipaddress.IPv4Address) -> None:
        self._free.append(ip)

    async def attach(self, pid: int, veth: str, ip: ipaddress.IPv4Address) -> None:
        """Give the namespace of ``pid`` its ``eth0`` (peer of host link ``veth``) and address."""
        assert self.subnet is not None
        self.state.add("links", veth)
        await run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", str(pid)])
        await run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        await run(["nsenter", "-t", str(pid), "-n", "ip", "-batch", "-"], stdin=(
            "link set lo up\n"
            f"addr add {ip}/{self.subnet.prefixlen} dev eth0\n"
            "link set eth0 up\n"
            f"route add default via {self.gateway}\n").encode())

    async def detach(self, veth: str) -> None:
        await run(["ip", "link", "del", veth], check=False)
        self.state.remove("links", veth)

    async def add_lb(self, pid: int, pod_ip: str, lb_ip: str) -> None:
        route = f"{lb_ip}/32"
        await run(["nsenter", "-t", str(pid), "-n", "ip", "addr", "replace", route, "dev", "lo"])
        self.state.add("routes", route)
        await run(["ip", "route", "replace", route, "via", pod_ip, "dev", self.bridge])

    async def remove_lb(self, pid: int | None, lb_ip: str) -> None:
        route = f"{lb_ip}/32"
        if pid is not None and _alive(pid):
            await run(["nsenter", "-t", str(pid), "-n", "ip", "addr", "del", route, "dev", "lo"], check=False)
        await run(["ip", "route", "del", route, "dev", self.bridge], check=False)
        self.state.remove("routes", route)
