"""``LocalClusters``: N emulated clusters at once, each its own API server (own port, own serving
certificate when TLS is on), its own controllers and LoadBalancer address pool, and one kubeconfig with a
context ``clusterN`` per cluster.

    async with LocalClusters(3, tls=True, state_dir=tmp) as clusters:
        clusters.write_kubeconfig(tmp / "kubeconfig")
        sim = clusters["cluster2"].sim

Each cluster also holds what a real one has from the start: the ``kubernetes`` Service (cluster IP
10.96.0.1, port 443) with Endpoints and an EndpointSlice pointing at the API server's advertised address,
the ``default`` ServiceAccount and, with TLS, the ``kube-root-ca.crt`` ConfigMap in every namespace,
which is what in-cluster clients (a pod's service account config) need besides a token. The emulator
accepts any bearer token.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from apiserver._lifecycle import StartStop
from apiserver._logging import get_logger
from localmesh.kubesim._sim import KubeSim
from localmesh.kubesim._tls import ServerTLS
from localmesh.kubesim.controllers._manager import ControllerManager

log = get_logger(__name__)

Obj = dict[str, Any]
TOKEN = "kubesim"
KUBERNETES_SERVICE_IP = "10.96.0.1"


def default_lb_pool(index: int) -> str:
    """Cluster ``index`` (1-based)'s default pool: the index-th /28 of 172.19.255.0/24 (16 clusters),
    then of 172.19.254.0/24 and downwards."""
    block = index - 1
    network = ipaddress.ip_network("172.19.255.0/28")
    base = int(network.network_address) - (block // 16) * 256 + (block % 16) * 16
    return f"{ipaddress.ip_address(base)}/28"


def _advertised(host: str) -> str:
    """The IP other parties (pods, the kubernetes Endpoints) reach a server bound to ``host`` at."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1" if host != "::" else "::1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return socket.gethostbyname(host)


@dataclass
class LocalCluster:
    name: str
    sim: KubeSim
    lb_pool: str | None
    controllers: ControllerManager | None = None
    tls: ServerTLS | None = None
    advertise_address: str = "127.0.0.1"
    token: str = TOKEN

    @property
    def url(self) -> str:
        return self.sim.url

    @property
    def port(self) -> int:
        return self.sim.port

    def ca_pem(self) -> bytes | None:
        return self.tls.ca_pem() if self.tls is not None else None

    def kubeconfig_entries(self) -> tuple[Obj, Obj, Obj]:
        cluster: Obj = {"server": self.url}
        ca = self.ca_pem()
        if ca:
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
        return ({"name": self.name, "cluster": cluster}, {"name": self.name, "user": {"token": self.token}},
                {"name": self.name, "context": {"cluster": self.name, "user": self.name, "namespace": "default"}})


def kubeconfig_for(clusters: Sequence[LocalCluster], current: str | None = None) -> Obj:
    entries = [c.kubeconfig_entries() for c in clusters]
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "current-context": current or (clusters[0].name if clusters else ""),
            "clusters": [e[0] for e in entries], "users": [e[1] for e in entries],
            "contexts": [e[2] for e in entries]}


class LocalClusters(StartStop):
    """``count`` clusters named ``cluster1``..; ``ports`` per cluster (default: free ports); ``tls``: a
    self-signed serving certificate per cluster (written under ``state_dir``), or one ``ServerTLS`` for all;
    ``lb_pools`` per cluster (default ``default_lb_pool(i)``); ``controllers`` False serves the API only."""

    def __init__(self, count: int = 1, *, host: str = "127.0.0.1", ports: Sequence[int] | None = None,
                 tls: bool | ServerTLS = False, state_dir: Path | None = None,
                 lb_pools: Sequence[str] | None = None, controllers: bool = True,
                 advertise_address: str | None = None, names: Sequence[str] | None = None,
                 history: int = 10000, bookmark_interval: float = 1.0) -> None:
        if count < 1:
            raise ValueError(f"the number of clusters must be at least 1, got {count}")
        for label, seq in (("ports", ports), ("lb_pools", lb_pools), ("names", names)):
            if seq is not None and len(seq) != count:
                raise ValueError(f"{len(seq)} {label} given for {count} clusters")
        if tls is True and state_dir is None:
            raise ValueError("tls=True needs a state_dir for the certificates")
        self.host = host
        self.advertise_address = advertise_address or _advertised(host)
        self._ports = list(ports) if ports is not None else [0] * count
        self._tls = tls
        self.state_dir = state_dir
        self._with_controllers = controllers
        self.clusters: list[LocalCluster] = []
        for i in range(count):
            pool = lb_pools[i] if lb_pools is not None else default_lb_pool(i + 1)
            name = names[i] if names is not None else f"cluster{i + 1}"
            sim = KubeSim(history=history, bookmark_interval=bookmark_interval)
            self.clusters.append(LocalCluster(name, sim, pool, advertise_address=self.advertise_address))
        self._stack: contextlib.AsyncExitStack | None = None

    def __getitem__(self, key: int | str) -> LocalCluster:
        if isinstance(key, int):
            return self.clusters[key]
        for cluster in self.clusters:
            if cluster.name == key:
                return cluster
        raise KeyError(f"no cluster named {key!r}")

    def __iter__(self) -> Any:
        return iter(self.clusters)

    def __len__(self) -> int:
        return len(self.clusters)

    # -- lifecycle -----------------------------------------------------------------------------------

    def _serving(self, cluster: LocalCluster) -> ServerTLS | None:
        if isinstance(self._tls, ServerTLS):
            return self._tls
        if not self._tls:
            return None
        assert self.state_dir is not None
        hosts = tuple(dict.fromkeys((self.advertise_address, self.host, "127.0.0.1", "localhost",
                                     KUBERNETES_SERVICE_IP, "kubernetes", "kubernetes.default",
                                     "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")))
        return ServerTLS.self_signed(self.state_dir / cluster.name / "pki", hosts=tuple(h for h in hosts if h))

    async def start(self) -> None:
        if self._stack is not None:
            raise RuntimeError("LocalClusters already started")
        stack = contextlib.AsyncExitStack()
        try:
            for cluster, port in zip(self.clusters, self._ports, strict=True):
                cluster.tls = self._serving(cluster)
                await cluster.sim.start(host=self.host, port=port, tls=cluster.tls)
                stack.push_async_callback(cluster.sim.stop)
                self._seed_kubernetes_service(cluster)
                if self._with_controllers:
                    manager = ControllerManager(cluster.sim, lb_pool=cluster.lb_pool, root_ca=cluster.ca_pem())
                    await manager.start()
                    stack.push_async_callback(manager.stop)
                    cluster.controllers = manager
                log.info("Local cluster started", cluster=cluster.name, url=cluster.url,
                         lb_pool=cluster.lb_pool if self._with_controllers else "")
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def stop(self) -> None:
        """Stop every cluster (controllers first, then its API server), in reverse order."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
            for cluster in self.clusters:
                cluster.controllers = None
            log.info("Local clusters stopped", count=len(self.clusters))

    def _seed_kubernetes_service(self, cluster: LocalCluster) -> None:
        port = cluster.port
        address = cluster.advertise_address
        family = "IPv6" if ":" in address else "IPv4"
        sim = cluster.sim
        sim.apply({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "kubernetes", "namespace": "default",
                                "labels": {"component": "apiserver", "provider": "kubernetes"}},
                   "spec": {"clusterIP": KUBERNETES_SERVICE_IP, "clusterIPs": [KUBERNETES_SERVICE_IP],
                            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}})
        sim.apply({"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": "kubernetes", "namespace": "default",
                                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                   "subsets": [{"addresses": [{"ip": address}],
                                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]})
        sim.apply({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": "kubernetes", "namespace": "default",
                                "labels": {"kubernetes.io/service-name": "kubernetes"}},
                   "addressType": family,
                   "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
                   "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})

    # -- kubeconfig ----------------------------------------------------------------------------------

    def kubeconfig(self, current: str | None = None) -> Obj:
        return kubeconfig_for(self.clusters, current)

    def write_kubeconfig(self, path: str | Path, current: str | None = None) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(yaml.safe_dump(self.kubeconfig(current), sort_keys=False))
        partial.chmod(0o600)
        os.replace(partial, target)  # whoever polls for the file never reads half of it
        return target
