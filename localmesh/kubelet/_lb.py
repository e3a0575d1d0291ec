"""The LoadBalancer data path: each ``status.loadBalancer.ingress[].ip`` of a LoadBalancer Service is
served by one ready, not terminating pod of this node that the Service's selector matches (the first
by name); its
address goes to that pod's ``lo`` and a host route sends it there (see ``_net``). Service ports
must equal their target ports: there is no address or port translation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from apiserver._logging import get_logger
from localmesh.kubelet._net import ClusterNetwork

if TYPE_CHECKING:
    from localmesh.kubelet._pod import Pod

log = get_logger(__name__)

Obj = dict[str, Any]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def desired(services: Iterable[Obj], pods: Iterable[Pod]) -> dict[str, Pod]:
    """LoadBalancer address -> the pod that serves it (pure)."""
    ready = sorted((p for p in pods if p.ready and p.sandbox.ip is not None
                    and not p.obj["metadata"].get("deletionTimestamp")), key=lambda p: p.name)
    out: dict[str, Pod] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("type") != "LoadBalancer":
            continue
        ns = svc["metadata"].get("namespace") or "default"
        selector = spec.get("selector") or {}
        pod = next((p for p in ready if p.namespace == ns
                    and _matches(selector, p.obj["metadata"].get("labels") or {})), None)
        if pod is None:
            continue
        for ingress in (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []:
            if ingress.get("ip"):
                out.setdefault(str(ingress["ip"]), pod)
    return out


class LoadBalancers:
    def __init__(self, network: ClusterNetwork, pods: Callable[[], Iterable[Pod]]) -> None:
        self._network = network
        self._pods = pods
        self.services: dict[tuple[str, str], Obj] = {}
        self.current: dict[str, tuple[Pod, int, str]] = {}  # ip -> (pod, sandbox pid, pod ip)
        self._wake = asyncio.Event()

    def trigger(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception as exc:
                log.warning("LoadBalancer routes not updated, retrying", error=str(exc))
                await asyncio.sleep(1.0)
                self._wake.set()

    async def reconcile(self) -> None:
        want = desired(self.services.values(), self._pods())
        for ip, (pod, pid, _) in list(self.current.items()):
            if want.get(ip) is not pod or pod.sandbox.ip is None:
                await self._network.remove_lb(pid, ip)
                del self.current[ip]
        for ip, pod in want.items():
            if ip not in self.current:
                await self._network.add_lb(pod.sandbox.pid, pod.pod_ip, ip)
                self.current[ip] = (pod, pod.sandbox.pid, pod.pod_ip)
                log.info("LoadBalancer address routed to pod", ip=ip, pod=pod.title)

    async def close(self) -> None:
        for ip, (_, pid, _) in list(self.current.items()):
            await self._network.remove_lb(pid, ip)
        self.current.clear()
