"""``ControllerManager``: runs a set of controllers against one emulator, the way kube-controller-manager
(and a scheduler, and a load-balancer controller) run against one API server.

    manager = ControllerManager(sim, lb_pool="172.19.255.0/28")
    await manager.start()
    ...
    await manager.stop()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import orjson

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._sim import KubeSim
from localmesh.kubesim._store import Event
from localmesh.kubesim.controllers._base import Change, Cluster, Controller, run_controller
from localmesh.kubesim.controllers._daemonset import DaemonSetController
from localmesh.kubesim.controllers._deployment import DeploymentController
from localmesh.kubesim.controllers._endpoints import EndpointsController, EndpointSliceController
from localmesh.kubesim.controllers._gc import GarbageCollector
from localmesh.kubesim.controllers._loadbalancer import AddressPool, LoadBalancerController
from localmesh.kubesim.controllers._namespaces import NamespaceBootstrap
from localmesh.kubesim.controllers._scheduler import Scheduler

log = get_logger(__name__)

DEFAULT_LB_POOL = "172.19.255.0/28"


class ControllerManager:
    """Deployment, DaemonSet, scheduler, Endpoints, EndpointSlice, garbage collector, namespace bootstrap
    (``default`` ServiceAccount, ``kube-root-ca.crt`` with ``root_ca``) and LoadBalancer controllers over
    one ``KubeSim`` (``lb_pool`` None: no LoadBalancer controller). ``clock`` (seconds since the epoch) is
    for tests that move time."""

    def __init__(self, sim: KubeSim, *, lb_pool: str | AddressPool | None = DEFAULT_LB_POOL,
                 root_ca: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        self.sim = sim
        self.cluster = Cluster(sim.api, clock)
        pool = AddressPool(lb_pool) if isinstance(lb_pool, str) else lb_pool
        self.loadbalancer = LoadBalancerController(self.cluster, pool) if pool is not None else None
        self.deployments = DeploymentController(self.cluster)
        self.controllers: list[Controller] = [
            self.deployments, DaemonSetController(self.cluster), Scheduler(self.cluster),
            EndpointsController(self.cluster), EndpointSliceController(self.cluster),
            GarbageCollector(self.cluster), NamespaceBootstrap(self.cluster, root_ca),
        ]
        if self.loadbalancer is not None:
            self.controllers.append(self.loadbalancer)
        self._following: dict[tuple[str, str], list[Controller]] = {}
        for controller in self.controllers:
            for kind in controller.follows:
                self._following.setdefault(kind, []).append(controller)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError("ControllerManager already started")
        self.sim.store.listeners.append(self._on_event)
        for controller in self.controllers:
            for key in controller.initial_keys():
                controller.queue.add(key)
            self._tasks.append(asyncio.create_task(run_controller(controller), name=f"kubesim-{controller.name}"))
            self._tasks[-1].add_done_callback(self._exited)
        log.info("Controllers started", controllers=",".join(c.name for c in self.controllers))

    def _exited(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("Controller stopped unexpectedly", task=task.get_name(), error=repr(task.exception()))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        if self._on_event in self.sim.store.listeners:
            self.sim.store.listeners.remove(self._on_event)
        await cancel_and_wait(*tasks)
        for controller in self.controllers:
            controller.queue.close()

    def _on_event(self, rt: ResourceType, event: Event) -> None:
        interested: Sequence[Controller] = self._following.get((rt.group, rt.kind), ())
        if not interested:
            return
        change = Change(event.type, event.obj.key, orjson.loads(event.obj.raw),
                        orjson.loads(event.prev.raw) if event.prev is not None else None)
        for controller in interested:
            for key in controller.keys_for(rt, change):
                controller.queue.add(key)
