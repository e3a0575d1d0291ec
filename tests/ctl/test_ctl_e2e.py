"""End to end without a kubelet: what clustermeshctl writes, consumed by the real components.

Per cluster: an emulated Kubernetes API with a synthetic workload, a real etcd serving the server
certificate ``enable`` issued (mutual TLS), the exporter and KVStoreMesh in-process with the admin
certificate, and an agent. Their config directories are the Secrets ``connect`` wrote, mounted the way
a Secret volume would be (the files of ``cilium-kvstoremesh`` / ``cilium-clustermesh`` plus the
projected certificates); only the mount path ``/var/lib/cilium/clustermesh/`` and the local Service's
port are rewritten to this machine's, as a pod's mount namespace and cluster DNS would provide them.
``status`` runs the real ``kvstoremesh-dbg`` / ``agent-dbg`` commands through the emulator's ``pods/exec``
(WebSocket), as host processes. Not covered here: etcd RBAC (the CNs are checked in tests/security), the
kubelet.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
import pytest_asyncio

from apiserver.clusterinfo import ClusterInfo
from apiserver.clustermesh.exporter import Exporter
from apiserver.clustermesh.options import ExporterOptions
from apiserver.ctl._certs import ca_from_secret_data
from apiserver.kube import KubeOptions, build_client
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstoremesh import DaemonSettings, KVStoreMeshDaemon, MeshConfig
from apiserver.metrics import APISERVER_NAMESPACE, KVSTOREMESH_NAMESPACE, Metrics
from localmesh.agent import Agent, AgentSettings
from localmesh.kubesim import KubeSim
from localmesh.kubesim._node import ContainerNotFoundError
from localmesh.testing.etcd import EtcdServer, EtcdTLS
from localmesh.testing.polling import eventually
from localmesh.testing.synthetic import ClusterShape, synthetic_cluster
from tests.ctl.conftest import NS, Clusters, write_kubeconfig
from tests.ctl.test_ctl_statuscmd import set_up_pods

MOUNT = "/var/lib/cilium/clustermesh/"
SVC = "clustermesh-apiserver.kube-system.svc:2379"


def secret_files(sim: KubeSim, name: str) -> dict[str, bytes]:
    secret = sim.get("v1", "Secret", name, namespace=NS) or {}
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


@dataclass
class Node:
    """One cluster's mesh API pod and one agent, in-process."""

    name: str
    sim: KubeSim
    dir: Path
    etcd: EtcdServer | None = None
    kvstoremesh: KVStoreMeshDaemon | None = None
    agent: Agent | None = None
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    def mount(self, volume: str, projections: dict[str, dict[str, str]], secret: str) -> Path:
        """Write a Secret volume's files (the Secret's keys plus projected certificate keys) again."""
        target = self.dir / volume
        target.mkdir(exist_ok=True)
        files = dict(secret_files(self.sim, secret))
        for source, mapping in projections.items():
            data = secret_files(self.sim, source)
            files.update({path: data[key] for key, path in mapping.items()})
        assert self.etcd is not None
        for old in target.iterdir():
            if old.name not in files:
                old.unlink()
        for name, blob in files.items():
            text = blob.replace(MOUNT.encode(), f"{target}/".encode())
            text = text.replace(SVC.encode(), f"{SVC.split(':')[0]}:{self.etcd.client_port}\ncilium-host-aliases:\n"
                                f"  {SVC.split(':')[0]}:\n    ips:\n    - 127.0.0.1".encode())
            (target / name).write_bytes(text)
        return target

    def remount(self) -> None:
        if self.sim.get("v1", "Secret", "cilium-kvstoremesh", namespace=NS) is not None or not (
                self.dir / "kvstoremesh").exists():
            self.mount("kvstoremesh", {"clustermesh-apiserver-remote-cert": REMOTE}, "cilium-kvstoremesh")
        self.mount("agent", {"clustermesh-apiserver-remote-cert": REMOTE,
                             "clustermesh-apiserver-local-cert": LOCAL}, "cilium-clustermesh")


# The chart's projections of the certificate Secrets into the config directory.
REMOTE = {"tls.key": "common-etcd-client.key", "tls.crt": "common-etcd-client.crt",
          "ca.crt": "common-etcd-client-ca.crt"}
LOCAL = {"tls.key": "local-etcd-client.key", "tls.crt": "local-etcd-client.crt", "ca.crt": "local-etcd-client-ca.crt"}


async def start_pod(node: Node, index: int) -> None:
    """etcd with enable's server certificate, then the exporter with the admin certificate."""
    tls = EtcdTLS(node.dir / "etcd-pki")
    # The mesh CA signs the probe's client certificate too.
    tls.ca = ca_from_secret_data(node.sim.get("v1", "Secret", "cilium-ca", namespace=NS) or {})
    server = secret_files(node.sim, "clustermesh-apiserver-server-cert")
    tls.ca_file.write_bytes(server["ca.crt"])
    tls.server.cert_file.write_bytes(server["tls.crt"])
    tls.server.key_file.write_bytes(server["tls.key"])
    node.etcd = EtcdServer(tls, name=f"etcd-ctl-e2e-{node.name}")
    await node.etcd.start()
    node.stack.push_async_callback(node.etcd.stop)
    admin = secret_files(node.sim, "clustermesh-apiserver-admin-cert")
    for key, blob in admin.items():
        (node.dir / f"admin-{key}").write_bytes(blob)
    config = EtcdConfig(endpoints=(node.etcd.endpoint,), trusted_ca_file=str(node.dir / "admin-ca.crt"),
                        cert_file=str(node.dir / "admin-tls.crt"), key_file=str(node.dir / "admin-tls.key"))
    (node.dir / "etcd-config.yaml").write_text(
        f"endpoints:\n- {node.etcd.endpoint}\ntrusted-ca-file: {config.trusted_ca_file}\n"
        f"cert-file: {config.cert_file}\nkey-file: {config.key_file}\n")
    backend = await EtcdClient.connect(config)
    node.stack.push_async_callback(backend.close)
    kube = await build_client(KubeOptions(kubeconfig_path=str(node.sim.write_kubeconfig(node.dir / "kc"))))
    node.stack.push_async_callback(kube.close)
    exporter = Exporter(ExporterOptions(cluster=ClusterInfo(node.name, index),
                                        kvstore=KVStoreOptions(config_file=str(node.dir / "etcd-config.yaml"))),
                        backend, kube, Metrics(APISERVER_NAMESPACE))
    await exporter.start()
    node.stack.push_async_callback(exporter.stop)


async def start_mesh_side(node: Node, index: int, kvstoremesh: bool) -> None:
    """KVStoreMesh (when enabled) and the agent, reading the mounted Secrets."""
    node.remount()
    fast = MeshConfig(per_cluster_ready_timeout=30.0, config_poll_interval=0.1, drain_grace_period=0.0)
    if kvstoremesh:
        node.kvstoremesh = KVStoreMeshDaemon(DaemonSettings(
            cluster=ClusterInfo(node.name, index), config_dir=str(node.dir / "kvstoremesh"),
            kvstore=KVStoreOptions(config_file=str(node.dir / "etcd-config.yaml")), mesh=fast, health_port=0,
            health_host="127.0.0.1", api_serve_addr="127.0.0.1:0"), metrics=Metrics(KVSTOREMESH_NAMESPACE))
        await node.kvstoremesh.start()
        node.stack.push_async_callback(node.kvstoremesh.stop)
    kube = KubeOptions(kubeconfig_path=str(node.dir / "kc"))
    node.agent = Agent(AgentSettings(ClusterInfo(node.name, index), str(node.dir / "agent"), "127.0.0.1:0", kube=kube,
                                     mesh=MeshConfig(disable_drain_on_disconnection=True, config_poll_interval=0.1)))
    await node.agent.start()
    node.stack.push_async_callback(node.agent.stop)


class PodProcesses:
    """The node side of exec (kubesim's ``NodeRuntime``): the command the container would run, as a host
    process pointed at the in-process daemon behind the pod. The exec request, its WebSocket channels
    and exit status go through the emulator's real ``pods/exec``."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def log_file(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> Path:
        raise ContainerNotFoundError(f'container "{container}" in pod "{pod}" keeps no log here')

    def is_running(self, namespace: str, pod: str, container: str) -> bool:
        return True

    async def exec(self, namespace: str, pod: str, container: str, argv: Sequence[str], *,
                   stdin: bool, tty: bool) -> asyncio.subprocess.Process:
        if container == "kvstoremesh":
            assert self.node.kvstoremesh is not None
            assert list(argv) == ["/usr/bin/clustermesh-apiserver", "kvstoremesh-dbg", "status", "-o", "json"]
            command = ["kvstoremesh-dbg", "-H", f"127.0.0.1:{self.node.kvstoremesh.api.port}", "status", "-o", "json"]
        elif argv[0] == "cilium-dbg":
            raise FileNotFoundError(2, "No such file or directory", "cilium-dbg")  # as in the local runtime
        else:
            assert self.node.agent is not None and list(argv[:2]) == ["clustermesh-apiserver", "agent-dbg"]
            command = ["agent-dbg", "-H", f"127.0.0.1:{self.node.agent.api_port}", *argv[2:]]
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "apiserver", *command, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


@pytest_asyncio.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[tuple[Clusters, dict[str, Node]]]:
    nodes: dict[str, Node] = {}
    async with AsyncExitStack() as stack:
        for i in (1, 2):
            sim = KubeSim()
            await sim.start()
            stack.push_async_callback(sim.stop)
            for obj in synthetic_cluster(ClusterShape(name=f"cluster{i}", cluster_index=i, services=2, endpoints=6)):
                sim.apply(obj)
            (tmp_path / f"cluster{i}").mkdir()
            nodes[f"cluster{i}"] = Node(f"cluster{i}", sim, tmp_path / f"cluster{i}")
            stack.push_async_callback(nodes[f"cluster{i}"].stack.aclose)
        yield Clusters({n: node.sim for n, node in nodes.items()},
                       write_kubeconfig(tmp_path / "kubeconfig", {n: node.sim for n, node in nodes.items()})), nodes


@pytest.mark.parametrize("kvstoremesh", [pytest.param(True, id="kvstoremesh"),
                                         pytest.param(False, id="agents-read-remotes-directly")])
async def test_enable_connect_status_disconnect_end_to_end(mesh: tuple[Clusters, dict[str, Node]],
                                                           kvstoremesh: bool) -> None:
    clusters, nodes = mesh
    for i, name in enumerate(nodes, 1):
        extra = (("--inherit-ca", "cluster1") if i > 1 else ()) + (() if kvstoremesh else ("--kvstore-mesh=false",))
        assert (await clusters.enable(name, *extra)).code == 0
        await start_pod(nodes[name], i)
        svc = clusters.obj(name, "Service", "clustermesh-apiserver") or {}
        assert nodes[name].etcd is not None
        svc["spec"]["ports"] = [{"port": nodes[name].etcd.client_port}]  # type: ignore[union-attr]
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
        nodes[name].sim.apply(svc)
    result = await clusters.run("connect", "--context", "cluster1", "--destination-context", "cluster2")
    assert result.code == 0, result.err
    for i, name in enumerate(nodes, 1):
        await start_mesh_side(nodes[name], i, kvstoremesh)
        set_up_pods(clusters, name, 1)

    async def agents_see_both() -> bool:
        agent = nodes["cluster1"].agent
        assert agent is not None
        services = (await agent.view()).services
        return "ns-0/svc-0" in services and set(services["ns-0/svc-0"].backends) == {"cluster1", "cluster2"}

    await eventually(agents_see_both, 30.0)
    for node in nodes.values():
        node.sim.node_runtime = PodProcesses(node)
    result = await clusters.run("status", "--context", "cluster1", "--wait", "--wait-duration", "60s")
    assert result.code == 0, result.out + result.err
    kv_lines = ["✅ All 1 KVStoreMesh replicas are connected to all clusters [min:1 / avg:1.0 / max:1]"]
    assert result.out.splitlines()[4:] == [
        f"\u2139\ufe0f KVStoreMesh is {'enabled' if kvstoremesh else 'disabled'}",
        "",
        "✅ All 1 nodes are connected to all clusters [min:1 / avg:1.0 / max:1]",
        *(kv_lines if kvstoremesh else []),
        "",
        "🔌 Cluster Connections:",
        " - cluster2: 1 configured, 1/1 connected",
        *(["   KVStoreMesh: 1/1 configured, 1/1 connected"] if kvstoremesh else []),
        "",
        "🔀 Global services: [ min:2 / avg:2.0 / max:2 ]",
    ]
    agent_view = orjson.loads(orjson.dumps(await nodes["cluster1"].agent.cluster_mesh()))  # type: ignore[union-attr]
    assert agent_view["clusters"][0]["config"].get("kvstoremesh", False) is kvstoremesh
    if kvstoremesh:
        # KVStoreMesh of cluster1 holds cluster2's exported keys, read by cluster1's agent through it.
        assert nodes["cluster1"].kvstoremesh is not None and nodes["cluster1"].kvstoremesh.backend is not None
        cached, _ = await nodes["cluster1"].kvstoremesh.backend.list_prefix("cilium/cache/services/v1/cluster2/")
        assert sorted(kv.key.rsplit("/", 2)[-2] + "/" + kv.key.rsplit("/", 1)[-1] for kv in cached) == [
            "ns-0/svc-0", "ns-1/svc-1"]

    result = await clusters.run("disconnect", "--context", "cluster1", "--destination-context", "cluster2")
    assert result.code == 0, result.err
    for node in nodes.values():
        node.remount()

    async def disconnected() -> bool:
        kv = nodes["cluster1"].kvstoremesh
        agent = nodes["cluster1"].agent
        assert agent is not None
        kv_done = kv is None or (kv.mesh is not None and kv.mesh.status() == [])
        return kv_done and (await agent.cluster_mesh())["clusters"] == []

    await eventually(disconnected, 30.0)
    result = await clusters.run("status", "--context", "cluster1")
    assert "🔌 No cluster connected" in result.lines
