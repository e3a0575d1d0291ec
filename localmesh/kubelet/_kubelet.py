"""The local kubelet: runs the pods bound to its node whose image is the project's own, as processes in
their own namespaces, and reports them through the Kubernetes API like a kubelet.

It watches Pods (all, keeping those whose ``spec.nodeName`` is its node), and the Secrets, ConfigMaps
and Services its pods read, through the project's reflector, so it works against any API server. It
implements kubesim's ``NodeRuntime`` (logs and exec). Starting needs root; it first sweeps what
crashed runs left behind; stopping ends every process and removes every link, route and directory it
made (pod objects stay, as when a real kubelet stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from apiserver._lifecycle import StartStop
from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.kube import APIResource, KubeAPIError, KubeObject, ObjectHandler, Reflector
from apiserver.runner import PartRunner
from localmesh.kubelet._client import EventRecorder, KubeletAPI
from localmesh.kubelet._config import KubeletConfig
from localmesh.kubelet._container import Container
from localmesh.kubelet._fields import Obj
from localmesh.kubelet._lb import LoadBalancers
from localmesh.kubelet._net import ClusterNetwork
from localmesh.kubelet._pod import Pod
from localmesh.kubelet._state import RunState, sweep, undo
from localmesh.kubelet._sys import require_root
from localmesh.kubesim import KubeSim
from localmesh.kubesim._node import ContainerNotFoundError

log = get_logger(__name__)

PODS = APIResource("Pod", "", "v1", "pods", namespaced=True)
SECRETS = APIResource("Secret", "", "v1", "secrets", namespaced=True)
CONFIGMAPS = APIResource("ConfigMap", "", "v1", "configmaps", namespaced=True)
SERVICES = APIResource("Service", "", "v1", "services", namespaced=True)


def _starter(reflector: Reflector) -> Callable[[], Awaitable[None]]:
    async def start() -> None:
        reflector.start()
    return start


class _Handler(ObjectHandler):
    def __init__(self, upsert: Any, delete: Any) -> None:
        self._upsert = upsert
        self._delete = delete

    def on_upsert(self, obj: KubeObject, old: KubeObject | None) -> None:
        self._upsert(obj)

    def on_delete(self, obj: KubeObject) -> None:
        self._delete(obj)


class Kubelet(StartStop):
    """``api_client``: a kubernetes-asyncio ``ApiClient``; ``api_address``: the API server's host and
    port, which pods reach at ``127.0.0.1:<port>`` (None: pods get no API access)."""

    def __init__(self, api_client: Any, config: KubeletConfig, *, api_address: tuple[str, int] | None = None) -> None:
        self.config = config
        self.node_name = config.node_name
        self.api_address = api_address
        self.api = KubeletAPI(api_client)
        self.events = EventRecorder(self.api, config.node_name)
        self.state = RunState(config.state_root, os.urandom(3).hex())
        self.network = ClusterNetwork(self.state, f"lb{self.state.run_id}")
        if config.pod_subnet:
            self.network.subnet = ipaddress.IPv4Network(config.pod_subnet)
        self.pods: dict[str, Pod] = {}  # uid -> pod
        self.rejected: dict[str, Obj] = {}  # uid -> pod whose image is not ours
        self.lb = LoadBalancers(self.network, lambda: list(self.pods.values()))
        self._secrets = Reflector(api_client, SECRETS, _Handler(self._on_source, self._on_source))
        self._configmaps = Reflector(api_client, CONFIGMAPS, _Handler(self._on_source, self._on_source))
        self._services = Reflector(api_client, SERVICES, _Handler(self._on_service, self._on_service_deleted))
        self._pods = Reflector(api_client, PODS, _Handler(self._on_pod, self._on_pod_deleted))
        self._tasks: set[asyncio.Task[None]] = set()
        self._index = 0
        self._runner: PartRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the parts in order (each one's undo is owed from then on); a failure undoes what started."""
        require_root()
        self.config.check()
        swept = await sweep(self.config.state_root)
        if swept:
            log.info("Swept stopped kubelet runs", runs=",".join(swept))
        runner = self._runner = PartRunner(f"kubelet {self.node_name}")
        try:
            await runner.start("state", self._create_state, lambda: undo(self.config.state_root, self.state.dir))
            await runner.start("network", self.network.create, self.network.close)
            await self.api.ensure_node(self._node_object())
            for reflector in (self._secrets, self._configmaps, self._services):
                await runner.start(reflector.name, _starter(reflector), reflector.stop)
            for reflector in (self._secrets, self._configmaps):
                await reflector.synced.wait()
            runner.on_stop("loadbalancer routes", self.lb.close)
            runner.spawn("loadbalancers", self.lb.run())
            runner.on_stop("pods", self._stop_pods)
            await runner.start("pods watch", _starter(self._pods), self._pods.stop)
        except BaseException:
            await runner.stop()
            raise
        log.info("Local kubelet started", node=self.node_name, bridge=self.network.bridge,
                 subnet=str(self.network.subnet), state=str(self.state.dir))

    async def _create_state(self) -> None:
        self.state.create()

    async def _stop_pods(self) -> None:
        await cancel_and_wait(*self._tasks)
        await asyncio.gather(*(pod.stop() for pod in self.pods.values()), return_exceptions=True)
        self.pods.clear()

    async def stop(self) -> None:
        """Stop every part, last started first; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.stop()
            log.info("Local kubelet stopped", node=self.node_name)

    def serve(self, sim: KubeSim) -> None:
        """Be the node of an in-process ``sim``: its ``pods/log`` and ``pods/exec`` reach this kubelet, and
        deleting a running pod becomes graceful (the pod stays, marked, until this kubelet stopped it)."""
        sim.node_runtime = self
        sim.api.graceful_pods = True

    def _node_object(self) -> Obj:
        ip = str(self.network.gateway)
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": {"kubernetes.io/hostname": self.node_name,
                                                               "kubernetes.io/os": "linux"}},
                "spec": {"podCIDR": str(self.network.subnet), "podCIDRs": [str(self.network.subnet)]},
                "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                         {"type": "Hostname", "address": self.node_name}],
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status"}]}}

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what pods ask -------------------------------------------------------------------------------

    def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        reflector = self._secrets if kind == "Secret" else self._configmaps
        obj: Obj | None = reflector.get(namespace, name)
        return obj

    def service_env(self) -> dict[str, str]:
        if self.api_address is None:
            return {}
        port = str(self.api_address[1])
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": f"tcp://127.0.0.1:{port}"}

    def pod_changed(self, pod: Pod) -> None:
        self.lb.trigger()

    async def finalize(self, pod: Pod) -> None:
        try:
            await self.api.delete_pod(pod.namespace, pod.name, pod.uid)
        except Exception as exc:
            log.warning("Pod deletion not finalized", pod=pod.title, error=str(exc))

    # -- watch handlers ------------------------------------------------------------------------------

    def _on_pod(self, obj: Obj) -> None:
        if (obj.get("spec") or {}).get("nodeName") != self.node_name:
            return
        uid = str(obj["metadata"].get("uid") or "")
        pod = self.pods.get(uid)
        if pod is not None:
            pod.update(obj)
            return
        if obj["metadata"].get("deletionTimestamp"):
            self.rejected.pop(uid, None)
            self._spawn(self.api.delete_pod(obj["metadata"].get("namespace") or "default",
                                            obj["metadata"]["name"], uid))
            return
        if uid in self.rejected:
            return
        spec = obj.get("spec") or {}
        foreign = [c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
                   if not self.config.supports(str(c.get("image", "")))]
        if foreign:
            self.rejected[uid] = obj
            self._spawn(self._reject(obj, foreign))
            return
        self._index += 1
        pod = Pod(self, obj, self._index)
        self.pods[uid] = pod
        pod.start()
        log.info("Pod admitted", pod=pod.title)

    async def _reject(self, obj: Obj, foreign: list[Obj]) -> None:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        statuses: dict[str, list[Obj]] = {"initContainerStatuses": [], "containerStatuses": []}
        for key, field in (("initContainerStatuses", "initContainers"), ("containerStatuses", "containers")):
            for c in spec.get(field) or []:
                waiting: Obj = {"reason": "PodInitializing"}
                if c in foreign:
                    waiting = {"reason": "ErrImageNeverPull", "message": self._never_pull(str(c.get("image")))}
                statuses[key].append({"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                      "ready": False, "restartCount": 0, "started": False,
                                      "state": {"waiting": waiting}, "lastState": {}})
        status: Obj = {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastProbeTime": None}],
            "hostIP": str(self.network.gateway), "qosClass": "BestEffort",
            **{k: v for k, v in statuses.items() if v}}
        for c in foreign:
            await self.events.pod_event(obj, "ErrImageNeverPull", self._never_pull(str(c.get("image"))), warning=True)
        with contextlib.suppress(KubeAPIError):
            await self.api.patch_status(meta.get("namespace") or "default", meta["name"], str(meta.get("uid", "")),
                                        status)

    def _never_pull(self, image: str) -> str:
        return (f'Container image "{image}" is not present with pull policy of Never: this local kubelet '
                f"runs only images of {', '.join(self.config.images)}")

    def _on_pod_deleted(self, obj: Obj) -> None:
        uid = str(obj["metadata"].get("uid") or "")
        self.rejected.pop(uid, None)
        pod = self.pods.pop(uid, None)
        if pod is not None:
            self._spawn(pod.stop())
            self.lb.trigger()

    def _on_source(self, obj: Obj) -> None:
        meta = obj["metadata"]
        kind = str(obj.get("kind") or ("Secret" if "type" in obj else "ConfigMap"))
        for pod in self.pods.values():
            if pod.references(kind, meta.get("namespace") or "default", meta["name"]):
                pod.refresh_volumes()

    def _on_service(self, obj: Obj) -> None:
        self.lb.services[(obj["metadata"].get("namespace") or "default", obj["metadata"]["name"])] = obj
        self.lb.trigger()

    def _on_service_deleted(self, obj: Obj) -> None:
        self.lb.services.pop((obj["metadata"].get("namespace") or "default", obj["metadata"]["name"]), None)
        self.lb.trigger()

    # -- NodeRuntime (kubesim's pods/log and pods/exec) ------------------------------------------------

    def _container(self, namespace: str, pod_name: str, container: str) -> tuple[Pod, Container]:
        for pod in self.pods.values():
            if pod.namespace == namespace and pod.name == pod_name:
                for c in pod.containers + pod.init_containers:
                    if c.name == container or not container:
                        return pod, c
        raise ContainerNotFoundError(f'container "{container}" in pod "{pod_name}" is not available')

    def log_file(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> Path:
        _, c = self._container(namespace, pod, container)
        restart = c.restart_count - 1 if previous else c.restart_count
        path = c.log_path(restart)
        if restart < 0 or not path.exists():
            if previous:
                raise ContainerNotFoundError(f'previous terminated container "{c.name}" in pod "{pod}" not found')
            raise ContainerNotFoundError(f'container "{c.name}" in pod "{pod}" is waiting to start')
        return path

    def is_running(self, namespace: str, pod: str, container: str) -> bool:
        try:
            return self._container(namespace, pod, container)[1].running
        except ContainerNotFoundError:
            return False

    async def exec(self, namespace: str, pod: str, container: str, argv: Sequence[str], *,
                   stdin: bool, tty: bool) -> asyncio.subprocess.Process:
        p, c = self._container(namespace, pod, container)
        proc = c.proc
        if proc is None or proc.returncode is not None:
            raise ContainerNotFoundError(f'container "{c.name}" in pod "{pod}" is not running')
        return await p.sandbox.exec(proc.pid, argv, c.env, stdin=stdin)
