"""The Cluster Mesh guide on local clusters: ``cluster1``..``clusterN``, each an emulated Kubernetes API
with its controllers and a local kubelet running the project's image, meshed with ``clustermeshctl``.

Per cluster: the guide's ``cilium-config`` (unique name and ID, Pod CIDRs ``1<i>.0.0.0/8`` +
``fd0<i-1>::/104``), a synthetic workload whose global Services have backends in every cluster, and the
agent DaemonSet ``cilium`` (``clustermesh-apiserver agent``, one per node, reading the Secret
``cilium-clustermesh`` as Cilium's agent does). One kubeconfig holds the contexts ``cluster1``..``N``.
Then the guide's steps run as an operator would type them: ``doctor``, ``enable
--service-type=LoadBalancer``, ``connect`` (full mesh), ``status --wait``; one agent's merged view of a
global Service shows its backends from every cluster; endpoints then move until stopped.

Needs root (the kubelet makes network and mount namespaces). ``stop()`` removes everything it made.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apiserver._logging import get_logger
from localmesh.kubesim import KubeSim, LocalClusters
from localmesh.kubesim._node import ContainerNotFoundError, NodeRuntime
from localmesh.testing.synthetic import ClusterShape, synthetic_cluster

log = get_logger("demo")

NS = "kube-system"
IMAGE = "ghcr.io/clustermesh-python/clustermesh-apiserver:v0.1.0"
SERVICE_DNS = "clustermesh-apiserver.kube-system.svc"
Obj = dict[str, Any]
Out = Callable[[str], None]


def guide_config(name: str, index: int) -> dict[str, str]:
    """``cilium-config`` as the guide installs each cluster."""
    return {"cluster-name": name, "cluster-id": str(index), "max-connected-clusters": "255",
            "identity-allocation-mode": "crd", "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
            "cluster-pool-ipv4-cidr": f"{10 + index}.0.0.0/8", "cluster-pool-ipv6-cidr": f"fd{index - 1:02x}::/104"}


def workload(name: str, index: int, *, services: int, endpoints: int) -> Iterator[Obj]:
    """The synthetic cluster, adapted to a cluster with controllers: Services without selectors (their
    EndpointSlices are this workload's, not the EndpointSlice controller's) and no synthetic CiliumNodes
    (the nodes are the kubelets')."""
    shape = ClusterShape(name=name, cluster_index=index, services=services, endpoints=endpoints, nodes=0)
    for obj in synthetic_cluster(shape):
        kind = obj["kind"]
        if kind == "ConfigMap" and obj["metadata"]["name"] == "cilium-config":
            obj["data"] = guide_config(name, index)
        elif kind == "Service":
            obj["spec"].pop("selector", None)
        elif kind == "EndpointSlice":
            obj["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] = "localmesh-demo"
        yield obj


def cilium_node(cluster: str, index: int, node: str, n: int) -> Obj:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": node},
            "spec": {"ipam": {"podCIDRs": [f"{10 + index}.{n}.0.0/16", f"fd{index - 1:02x}::{n:x}:0/112"]}}}


def agent_daemonset(service_ip: str | None) -> Obj:
    """Cilium's agent DaemonSet, reduced to its Cluster Mesh part (the chart's ``clustermesh-secrets``
    volume). ``service_ip`` stands in for cluster DNS: the local mesh API server's address."""
    def projection(secret: str, prefix: str) -> Obj:
        return {"secret": {"name": secret, "optional": True, "items": [
            {"key": "tls.key", "path": f"{prefix}etcd-client.key"},
            {"key": "tls.crt", "path": f"{prefix}etcd-client.crt"},
            {"key": "ca.crt", "path": f"{prefix}etcd-client-ca.crt"}]}}

    def env(name: str, key: str) -> Obj:
        return {"name": name, "valueFrom": {"configMapKeyRef": {"name": "cilium-config", "key": key}}}

    pod: Obj = {
        "containers": [{
            "name": "cilium-agent", "image": IMAGE, "command": ["/usr/bin/clustermesh-apiserver"],
            "args": ["agent", "--cluster-name=$(CILIUM_CLUSTER_NAME)", "--cluster-id=$(CILIUM_CLUSTER_ID)",
                     "--clustermesh-config=/var/lib/cilium/clustermesh"],
            "env": [env("CILIUM_CLUSTER_NAME", "cluster-name"), env("CILIUM_CLUSTER_ID", "cluster-id")],
            "volumeMounts": [{"name": "clustermesh-secrets", "mountPath": "/var/lib/cilium/clustermesh",
                              "readOnly": True}]}],
        "volumes": [{"name": "clustermesh-secrets", "projected": {"defaultMode": 0o400, "sources": [
            {"secret": {"name": "cilium-clustermesh", "optional": True}},
            projection("clustermesh-apiserver-remote-cert", "common-"),
            projection("clustermesh-apiserver-local-cert", "local-")]}}],
    }
    if service_ip:
        pod["hostAliases"] = [{"ip": service_ip, "hostnames": [SERVICE_DNS]}]
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "cilium", "namespace": NS, "labels": {"k8s-app": "cilium"}},
            "spec": {"selector": {"matchLabels": {"k8s-app": "cilium"}},
                     "template": {"metadata": {"labels": {"k8s-app": "cilium"}}, "spec": pod}}}


class NodeRuntimes:
    """kubesim holds one ``NodeRuntime``: this one sends each request to the kubelet running the pod."""

    def __init__(self, kubelets: Sequence[Any]) -> None:
        self._kubelets = list(kubelets)

    def _owner(self, namespace: str, pod: str) -> Any:
        for kubelet in self._kubelets:
            if any(p.namespace == namespace and p.name == pod for p in kubelet.pods.values()):
                return kubelet
        raise ContainerNotFoundError(f'pod "{pod}" is not running on any node')

    def log_file(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> Path:
        path: Path = self._owner(namespace, pod).log_file(namespace, pod, container, previous=previous)
        return path

    def is_running(self, namespace: str, pod: str, container: str) -> bool:
        try:
            return bool(self._owner(namespace, pod).is_running(namespace, pod, container))
        except ContainerNotFoundError:
            return False

    async def exec(self, namespace: str, pod: str, container: str, argv: Sequence[str], *,
                   stdin: bool, tty: bool) -> asyncio.subprocess.Process:
        proc: asyncio.subprocess.Process = await self._owner(namespace, pod).exec(
            namespace, pod, container, argv, stdin=stdin, tty=tty)
        return proc


@dataclass
class GuideCluster:
    """One local cluster (``LocalClusters``' API server and controllers) and its kubelets."""

    name: str
    index: int
    sim: KubeSim
    kubelets: list[Any] = field(default_factory=list)

    def get(self, kind: str, name: str, api_version: str = "v1") -> Obj | None:
        return self.sim.get(api_version, kind, name, namespace=NS)


class GuideMesh:
    def __init__(self, clusters: int = 3, *, nodes: int = 1, kvstoremesh: bool = True, services: int = 4,
                 endpoints: int = 12, workdir: str | None = None, out: Out = print) -> None:
        if not 2 <= clusters <= 8:
            raise ValueError("the guide demo runs 2 to 8 clusters")
        self.count, self.nodes, self.kvstoremesh = clusters, nodes, kvstoremesh
        self.services, self.endpoints = services, endpoints
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="clustermesh-guide-"))
        self.kubeconfig = self.workdir / "kubeconfig"
        self.clusters: list[GuideCluster] = []
        self.out = out
        self._stack = AsyncExitStack()

    # -- local clusters ----------------------------------------------------------------------------

    async def start(self) -> None:
        from apiserver.kube import KubeOptions, build_client
        from localmesh.kubelet import Kubelet, KubeletConfig

        # HTTPS, so pods get the API's CA as their service account ca.crt (in-cluster clients need it).
        local = LocalClusters(self.count, tls=True, state_dir=self.workdir / "api")
        await local.start()
        self._stack.push_async_callback(local.stop)
        local.write_kubeconfig(self.kubeconfig)
        for i, api in enumerate(local, 1):
            cluster = GuideCluster(api.name, i, api.sim)
            for obj in workload(api.name, i, services=self.services, endpoints=self.endpoints):
                api.sim.apply(obj)
            own = local.write_kubeconfig(self.workdir / f"{api.name}.kubeconfig", current=api.name)
            client = await build_client(KubeOptions(kubeconfig_path=str(own)))
            self._stack.push_async_callback(client.close)
            for n in range(self.nodes):
                node = f"{api.name}-node{n}"
                api.sim.apply(cilium_node(api.name, i, node, n))
                kubelet = Kubelet(client.api_client, KubeletConfig(node_name=node, api_ca_pem=api.ca_pem() or b""),
                                  api_address=(local.host, api.port))
                await kubelet.start()
                self._stack.push_async_callback(kubelet.stop)
                cluster.kubelets.append(kubelet)
                self.out(f"  {node}: kubelet bridge {kubelet.network.bridge}, pods in {kubelet.network.subnet}")
            runtime: NodeRuntime = NodeRuntimes(cluster.kubelets)
            api.sim.node_runtime = runtime
            self.clusters.append(cluster)
            log.info("Local cluster started", cluster=api.name, api=api.url, nodes=self.nodes)

    async def stop(self) -> None:
        await self._stack.aclose()

    # -- the operator's commands -------------------------------------------------------------------

    async def ctl(self, *argv: str, echo: bool = True) -> tuple[int, str]:
        """``clustermeshctl ARGV`` against the local clusters, as its own process (so it can be stopped);
        its output printed line by line (and returned)."""
        if echo:
            self.out(f"\n$ clustermeshctl {' '.join(argv)}")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "apiserver.ctl", "--kubeconfig", str(self.kubeconfig), *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        lines = []
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                lines.append(line)
                if echo:
                    self.out(line)
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        return code, "\n".join(lines)

    async def _service_ip(self, cluster: GuideCluster, within: float = 60.0) -> str:
        async with asyncio.timeout(within):
            while True:
                svc = cluster.get("Service", "clustermesh-apiserver") or {}
                ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                if ingress and ingress[0].get("ip"):
                    return str(ingress[0]["ip"])
                await asyncio.sleep(0.2)

    async def run_guide(self, *, wait: str = "10m") -> bool:
        """The guide's steps; True when every cluster's status came out healthy."""
        contexts = [c.name for c in self.clusters]
        self.out("\n━━ 1. Prerequisites")
        await self.ctl("doctor", *[a for c in contexts for a in ("--context", c)])
        self.out("\n━━ 2. Enable the mesh API server in every cluster")
        for cluster in self.clusters:
            extra = ("--inherit-ca", contexts[0]) if cluster.index > 1 else ()
            mesh = () if self.kvstoremesh else ("--kvstore-mesh=false",)
            code, _ = await self.ctl("enable", "--context", cluster.name, "--service-type=LoadBalancer", *mesh, *extra)
            if code:
                return False
            ip = await self._service_ip(cluster)
            cluster.sim.apply(agent_daemonset(ip if self.kvstoremesh else None))
        self.out("\n━━ 3. Connect the clusters (full mesh)")
        code, _ = await self.ctl("connect", "--context", contexts[0], "--destination-context", ",".join(contexts[1:]),
                                 "--connection-mode", "mesh")
        if code:
            return False
        self.out("\n━━ 4. Status")
        healthy = True
        for cluster in self.clusters:
            code, _ = await self.ctl("status", "--context", cluster.name, "--wait", "--wait-duration", wait)
            healthy = healthy and code == 0
        return healthy

    async def agent_services(self, cluster: GuideCluster) -> str:
        """``agent-dbg services`` inside one agent pod of ``cluster``, through the exec API."""
        from apiserver.ctl._kube import Kube

        kube = await Kube.connect(str(self.kubeconfig), cluster.name)
        try:
            pods = await kube.list("v1", "Pod", NS, label_selector="k8s-app=cilium")
            if not pods:
                return "(no agent pod)"
            pod = sorted(p["metadata"]["name"] for p in pods)[0]
            result = await kube.exec(NS, pod, "cilium-agent", ["clustermesh-apiserver", "agent-dbg", "services"])
            return f"[{cluster.name} {pod}]\n" + bytes(result.stdout).decode()
        finally:
            await kube.close()

    # -- churn ---------------------------------------------------------------------------------------

    def move_endpoint(self, tick: int) -> str:
        """Move one backend of one global Service in one cluster to a new address; say which."""
        cluster = self.clusters[tick % len(self.clusters)]
        service = tick // len(self.clusters) % self.services
        namespace = f"ns-{service % 4}"
        slice_ = cluster.sim.get("discovery.k8s.io/v1", "EndpointSlice", f"svc-{service}-abcde", namespace=namespace)
        if slice_ is None or not slice_.get("endpoints"):
            return ""
        endpoint = slice_["endpoints"][0]
        old = endpoint["addresses"][0]
        new = f"10.{cluster.index}.{200 + tick % 50}.{tick % 250 + 3}"
        endpoint["addresses"] = [new]
        for key in ("resourceVersion", "managedFields"):
            slice_["metadata"].pop(key, None)
        cluster.sim.apply(slice_)
        return f"{cluster.name}: {namespace}/svc-{service} backend {old} -> {new}"
