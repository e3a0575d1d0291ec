"""One pod on the node: its sandbox and volumes, init containers in order, then its containers, the
status kubelet writes for it, and its graceful termination.

The pod's phase follows kubelet's ``getPhase``: Pending until the init containers completed and a
container started; Running while a container runs or will be restarted; Succeeded / Failed when all
containers ended for good under the restart policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.kube import KubeAPIError
from localmesh.kubelet._atomic import write_atomic
from localmesh.kubelet._backoff import CrashBackoff
from localmesh.kubelet._container import Container, now_rfc3339
from localmesh.kubelet._env import build_env, command_line
from localmesh.kubelet._fields import ConfigError, PodAddresses
from localmesh.kubelet._sandbox import PodSandbox
from localmesh.kubelet._volumes import PodIdentity, referenced_objects, service_account_volume, volume_files

if TYPE_CHECKING:
    from localmesh.kubelet._kubelet import Kubelet

log = get_logger(__name__)

Obj = dict[str, Any]
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_VOLUME = "kube-api-access"
_HOSTS = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
          "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")


class Pod:
    def __init__(self, kubelet: Kubelet, obj: Obj, index: int) -> None:
        self.kubelet = kubelet
        self.obj = obj
        meta = obj["metadata"]
        self.namespace = str(meta.get("namespace") or "default")
        self.name = str(meta["name"])
        self.uid = str(meta.get("uid") or "")
        self.dir = kubelet.state.dir / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.sandbox = PodSandbox(kubelet.state, kubelet.network, self.dir / "sandbox", self.name,
                                  f"lv{kubelet.state.run_id[:6]}{index:05x}")
        self.backoff_factory: Callable[[], CrashBackoff] = lambda: CrashBackoff(kubelet.config.backoff)
        spec: Obj = obj.get("spec") or {}
        self.init_containers = [Container(self, c, init=True) for c in spec.get("initContainers") or []]
        self.containers = [Container(self, c) for c in spec.get("containers") or []]
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.phase = "Pending"
        self.initialized = not self.init_containers
        self.sandbox_ready = False
        self.start_time = now_rfc3339()
        self._transitions: dict[str, tuple[str, str]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._terminating: asyncio.Task[None] | None = None
        self._events: set[asyncio.Task[None]] = set()
        self.deleted = asyncio.Event()

    @property
    def title(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    @property
    def pod_ip(self) -> str:
        return str(self.sandbox.ip or "")

    @property
    def ready(self) -> bool:
        return self.phase == "Running" and all(c.ready for c in self.containers)

    def references(self, kind: str, namespace: str, name: str) -> bool:
        return namespace == self.namespace and (kind, name) in referenced_objects(self.obj)

    # -- what containers ask -------------------------------------------------------------------------

    def _addresses(self) -> PodAddresses:
        return PodAddresses(self.pod_ip, str(self.kubelet.network.gateway))

    def env_for(self, container: Obj) -> tuple[dict[str, str], list[str]]:
        cfg = self.kubelet.config
        service = self.kubelet.service_env()
        env = build_env(container, self.obj, self._addresses(), self.kubelet.lookup, service)
        argv = command_line(container, env, cfg.entrypoint)
        for name in cfg.host_env:
            if name in os.environ and name not in env:
                env[name] = os.environ[name]
        return env, argv

    def container_dir(self, name: str) -> Path:
        return self.dir / "containers" / name

    def container_spec(self, container: Obj, argv: list[str]) -> dict[str, Any]:
        cfg = self.kubelet.config
        binds: list[Obj] = [{"source": src, "target": target, "file": True, "readonly": True}
                            for target, src in cfg.image_binds().items()]
        mounted: set[str] = set()
        for mount in container.get("volumeMounts") or []:
            source = self.dir / "volumes" / str(mount["name"])
            if not source.exists():
                raise ConfigError(f'volume "{mount["name"]}" not found in pod spec')
            if mount.get("subPath"):
                source = Path(os.path.realpath(source / str(mount["subPath"])))
            target = str(mount["mountPath"])
            binds.append({"source": str(source), "target": target, "file": source.is_file(),
                          "readonly": bool(mount.get("readOnly"))})
            mounted.add(target.rstrip("/"))
        if self._automount() and SA_PATH not in mounted:
            binds.append({"source": str(self.dir / "volumes" / SA_VOLUME), "target": SA_PATH, "file": False,
                          "readonly": True})
        files = [{"path": path, "data": data, "mode": 0o644} for path, data in cfg.image_files().items()]
        files.append({"path": "/etc/hosts", "data": self._hosts(), "mode": 0o644})
        return {"argv": argv, "workdir": container.get("workingDir") or "/", "binds": binds, "files": files}

    def _automount(self) -> bool:
        return (self.obj.get("spec") or {}).get("automountServiceAccountToken") is not False

    def _hosts(self) -> str:
        text = _HOSTS + f"{self.pod_ip}\t{self.name}\n"
        aliases = (self.obj.get("spec") or {}).get("hostAliases") or []
        if aliases:
            text += "\n# Entries added by HostAliases.\n"
            for alias in aliases:
                text += f"{alias.get('ip')}\t" + "\t".join(alias.get("hostnames") or []) + "\n"
        return text

    def changed(self) -> None:
        self._dirty.set()
        self.kubelet.pod_changed(self)

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self.kubelet.events.pod_event(self.obj, reason, message,
                                                                                    warning=warning))
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    def grace_period(self) -> float:
        meta = self.obj.get("metadata") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (self.obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return float(grace)

    # -- volumes -------------------------------------------------------------------------------------

    def identity(self) -> PodIdentity:
        sa = str((self.obj.get("spec") or {}).get("serviceAccountName") or "default")
        return PodIdentity(token=f"localmesh-token:{self.namespace}:{sa}:{self.uid}",
                           ca_pem=self.kubelet.config.api_ca_pem)

    def write_volumes(self) -> None:
        """Materialise every volume (raises ConfigError naming what is missing)."""
        identity = self.identity()
        root = self.dir / "volumes"
        root.mkdir(parents=True, exist_ok=True)
        for volume in (self.obj.get("spec") or {}).get("volumes") or []:
            target = root / str(volume["name"])
            files = volume_files(volume, self.obj, self._addresses(), self.kubelet.lookup, identity)
            if files is not None:
                write_atomic(target, files)
            elif "hostPath" in volume:
                host = Path(str(volume["hostPath"].get("path", "")))
                if volume["hostPath"].get("type") in ("DirectoryOrCreate",):
                    host.mkdir(parents=True, exist_ok=True)
                if not target.is_symlink():
                    target.symlink_to(host)
            else:
                target.mkdir(parents=True, exist_ok=True)
        if self._automount():
            write_atomic(root / SA_VOLUME, service_account_volume(self.namespace, identity))

    def refresh_volumes(self) -> None:
        if not self.sandbox_ready:
            return
        try:
            self.write_volumes()
        except ConfigError as exc:
            self.event("FailedMount", f"MountVolume.SetUp failed: {exc}", warning=True)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_status(), name=f"status-{self.name}")
        self._task = asyncio.create_task(self._run(), name=f"pod-{self.name}")
        self.changed()

    def update(self, obj: Obj) -> None:
        self.obj = obj
        if obj["metadata"].get("deletionTimestamp") and self._terminating is None:
            self._terminating = asyncio.create_task(self._terminate(finalize=True), name=f"delete-{self.name}")

    async def _run(self) -> None:
        try:
            await self._setup()
            await self._containers()
        except Exception as exc:
            log.exception("Pod failed", pod=self.title)
            self.event("Failed", f"Error: {exc}", warning=True)
            raise

    async def _setup(self) -> None:
        while True:
            try:
                self.write_volumes()
                break
            except (ConfigError, OSError) as exc:
                self.event("FailedMount", f"MountVolume.SetUp failed: {exc}", warning=True)
                await asyncio.sleep(1.0)
        while True:
            try:
                await self.sandbox.start(self.kubelet.api_address)
                break
            except Exception as exc:
                self.event("FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}", warning=True)
                with contextlib.suppress(Exception):
                    await self.sandbox.stop()
                await asyncio.sleep(1.0)
        self.sandbox_ready = True
        self.changed()

    async def _containers(self) -> None:
        init_policy = "Never" if self.restart_policy == "Never" else "OnFailure"
        for container in self.init_containers:
            if await container.run(init_policy) != 0:
                self.phase = "Failed"
                self.changed()
                return
        self.initialized = True
        for container in self.containers:
            container.state = {"waiting": {"reason": "ContainerCreating"}}
        self.phase = "Running"
        self.changed()
        codes = await asyncio.gather(*(c.run(self.restart_policy) for c in self.containers))
        self.phase = "Failed" if any(codes) else "Succeeded"
        self.changed()

    async def _terminate(self, *, finalize: bool) -> None:
        grace = self.grace_period()
        self.event("Killing", "Stopping pod")
        await asyncio.gather(*(c.stop(grace) for c in self.containers + self.init_containers))
        await cancel_and_wait(self._task)
        await self.sandbox.stop()
        self.changed()
        if finalize:
            await self.kubelet.finalize(self)
        self.deleted.set()

    async def stop(self, *, grace: float = 0.0) -> None:
        """The kubelet stops or the pod object is gone: end everything, keep no trace."""
        if self._terminating is None:
            await asyncio.gather(*(c.stop(grace) for c in self.containers + self.init_containers))
            await cancel_and_wait(self._task)
            with contextlib.suppress(Exception):
                await self.sandbox.stop()
        else:
            await cancel_and_wait(self._terminating)
            with contextlib.suppress(Exception):
                await self.sandbox.stop()
        await cancel_and_wait(self._writer, *self._events)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- status --------------------------------------------------------------------------------------

    def _condition(self, kind: str, value: bool) -> Obj:
        status = "True" if value else "False"
        old = self._transitions.get(kind)
        if old is None or old[0] != status:
            old = (status, now_rfc3339())
            self._transitions[kind] = old
        return {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": old[1]}

    def status(self) -> Obj:
        ready = self.ready
        status: Obj = {
            "phase": self.phase,
            "conditions": [self._condition("PodReadyToStartContainers", self.sandbox_ready),
                           self._condition("Initialized", self.initialized),
                           self._condition("Ready", ready),
                           self._condition("ContainersReady", all(c.ready for c in self.containers)),
                           self._condition("PodScheduled", True)],
            "hostIP": str(self.kubelet.network.gateway),
            "hostIPs": [{"ip": str(self.kubelet.network.gateway)}],
            "startTime": self.start_time,
            "containerStatuses": [c.status() for c in self.containers],
            "qosClass": "BestEffort",
        }
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        return status

    async def _write_status(self) -> None:
        written: Obj | None = None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            status = self.status()
            if status == written:
                continue
            try:
                await self.kubelet.api.patch_status(self.namespace, self.name, self.uid, status)
                written = status
            except KubeAPIError as exc:
                if exc.code in (404, 409):
                    return  # the pod object is gone (or another pod of the same name took its place)
                log.warning("Pod status not written, retrying", pod=self.title, error=str(exc))
                await asyncio.sleep(0.5)
                self._dirty.set()
            except Exception as exc:
                log.warning("Pod status not written, retrying", pod=self.title, error=str(exc))
                await asyncio.sleep(0.5)
                self._dirty.set()
