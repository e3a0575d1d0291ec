"""``status``: gather what cilium-cli gathers, then print the guide's layout (or cilium-cli's JSON).

Service and access information, Deployment readiness, KVStoreMesh enabled iff the Deployment has a
``kvstoremesh`` container, then every pod's view: each agent's ClusterMesh section (``cilium-dbg
status -o json`` in container ``cilium-agent``) and each KVStoreMesh replica's remote clusters
(``/usr/bin/clustermesh-apiserver kvstoremesh-dbg status -o json`` in container ``kvstoremesh``), both
through the Kubernetes exec API. With ``--wait`` every step is retried until it succeeds and every
pod is connected to every cluster, or the wait duration passes (then the exit is non-zero).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from apiserver.ctl import _status
from apiserver.ctl._access import AccessInfo
from apiserver.ctl._cluster import NOT_CONFIGURED, access_info, cilium_config, cluster_identity, kvstoremesh_enabled
from apiserver.ctl._errors import CtlError
from apiserver.ctl._kube import Kube
from apiserver.ctl._names import (
    AGENT_CONTAINER,
    AGENT_SELECTOR,
    AGENT_STATUS_COMMAND,
    AGENT_STATUS_FALLBACK,
    AGENTS_SECRET,
    APISERVER_SELECTOR,
    DEPLOYMENT,
    KVSTOREMESH_CONTAINER,
    KVSTOREMESH_SECRET,
    KVSTOREMESH_STATUS_COMMAND,
)
from apiserver.ctl._render import decode_data
from apiserver.kube import KubeAPIError
from apiserver.kvstoremesh import status_from_json

Log = Callable[[str], None]
T = TypeVar("T")
POLL_INTERVAL = 2.0


@dataclass(frozen=True)
class StatusParams:
    namespace: str
    wait: bool = False
    wait_duration: float = 900.0
    output: str = "summary"


class Waiter:
    """Retries a step until it succeeds or the deadline passes (cilium-cli's wait observer)."""

    def __init__(self, params: StatusParams, log: Log, clock: Callable[[], float] = time.monotonic) -> None:
        self._wait = params.wait
        self._clock = clock
        self._start = clock()
        self._deadline = self._start + params.wait_duration
        self._log = log

    async def run(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                return await step()
            except (CtlError, KubeAPIError) as exc:
                if not self._wait or self._clock() + POLL_INTERVAL > self._deadline:
                    raise
                self._log(f"⌛ Waiting ({int(self._clock() - self._start)}s) for {what}: {exc}")
                await asyncio.sleep(POLL_INTERVAL)


def deployment_problem(deploy: dict[str, Any] | None) -> str:
    """Why a Deployment is not ready ("" when it is)."""
    if deploy is None:
        return f'deployments.apps "{DEPLOYMENT}" not found'
    spec, status = deploy.get("spec") or {}, deploy.get("status") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int((deploy.get("metadata") or {}).get("generation", 0)):
        return "the latest generation is not observed yet"
    for field, what in (("updatedReplicas", "updated"), ("availableReplicas", "available")):
        if int(status.get(field, 0)) < want:
            return f"only {int(status.get(field, 0))} of {want} replicas are {what}"
    return ""


def expected_clusters(secret: dict[str, Any] | None, local: str) -> list[str]:
    if secret is None:
        return []
    return sorted(name for name, text in decode_data(secret).items() if name != local and "endpoints:" in text)


def parse_agent_status(doc: Any) -> _status.PodView:
    mesh = doc.get("cluster-mesh") if isinstance(doc, dict) else None
    if not isinstance(mesh, dict):
        raise CtlError("ClusterMesh status is not available", "is clustermesh enabled in the agents?")
    clusters = {c.name: c for c in (status_from_json(d) for d in mesh.get("clusters") or [])}
    return _status.PodView(clusters, int(mesh.get("num-global-services", 0)))


def parse_kvstoremesh_status(doc: Any) -> _status.PodView:
    if not isinstance(doc, list):
        raise CtlError("unexpected KVStoreMesh status (not a list)", "check the kvstoremesh container")
    return _status.PodView({c.name: c for c in (status_from_json(d) for d in doc)})


async def _exec_json(kube: Kube, namespace: str, pod: str, container: str,
                     commands: Sequence[Sequence[str]]) -> Any:
    last = ""
    for argv in commands:
        result = await kube.exec(namespace, pod, container, argv)
        if result.exit_code == 0:
            try:
                return orjson.loads(bytes(result.stdout))
            except orjson.JSONDecodeError:
                last = f"{' '.join(argv)}: output is not JSON"
                continue
        last = f"{' '.join(argv)}: {(result.error or bytes(result.stderr).decode('utf-8', 'replace')).strip()}"
    raise CtlError(f"unable to determine status of pod {pod!r}: {last}",
                   f"kubectl exec -n {namespace} {pod} -c {container} -- {' '.join(commands[0])}")


async def pod_views(kube: Kube, namespace: str, selector: str, container: str,
                    commands: Sequence[Sequence[str]], parse: Callable[[Any], _status.PodView]
                    ) -> dict[str, _status.PodView]:
    views = {}
    for pod in await kube.list("v1", "Pod", namespace, label_selector=selector):
        name = pod["metadata"]["name"]
        views[name] = parse(await _exec_json(kube, namespace, name, container, commands))
    return views


async def gather_connectivity(kube: Kube, namespace: str, local: str, kvstoremesh: bool
                              ) -> tuple[_status.Connectivity, _status.Connectivity | None]:
    agents_expected = expected_clusters(await kube.get("v1", "Secret", AGENTS_SECRET, namespace), local)
    agents = _status.connectivity(agents_expected, await pod_views(
        kube, namespace, AGENT_SELECTOR, AGENT_CONTAINER, (AGENT_STATUS_COMMAND, AGENT_STATUS_FALLBACK),
        parse_agent_status))
    kv = None
    if kvstoremesh:
        kv_expected = expected_clusters(await kube.get("v1", "Secret", KVSTOREMESH_SECRET, namespace), local)
        kv = _status.connectivity(kv_expected, await pod_views(
            kube, namespace, APISERVER_SELECTOR, KVSTOREMESH_CONTAINER, (KVSTOREMESH_STATUS_COMMAND,),
            parse_kvstoremesh_status))
    return agents, kv


async def status(kube: Kube, params: StatusParams, out: Log, log: Log) -> int:
    """Print the status; return the exit code (non-zero when waiting ran out with pods not ready)."""
    waiter = Waiter(params, log)
    config = await waiter.run("the cilium-config ConfigMap", lambda: cilium_config(kube, params.namespace))
    local, cluster_id = cluster_identity(config)
    if local == "default" or cluster_id == "0":
        log("⚠️ " + NOT_CONFIGURED)
    info: AccessInfo | None = None
    kvstoremesh = False
    if config.get("identity-allocation-mode", "crd") != "crd":
        out("✅ Cilium is configured with an external kvstore")
    else:
        info = await waiter.run("access information", lambda: access_info(kube, params.namespace))
        if params.output != "json":
            for line in _status.header_lines(info):
                out(line)

        async def ready() -> None:
            problem = deployment_problem(await kube.get("apps/v1", "Deployment", DEPLOYMENT, params.namespace))
            if problem:
                raise CtlError(f"deployment {DEPLOYMENT} is not ready: {problem}",
                               f"kubectl -n {params.namespace} describe deployment {DEPLOYMENT}")

        await waiter.run(f"deployment {DEPLOYMENT} to become ready", ready)
        kvstoremesh = await kvstoremesh_enabled(kube, params.namespace)
        if params.output != "json":
            out(_status.deployment_line())
            out(_status.kvstoremesh_line(kvstoremesh))

    async def connected() -> tuple[_status.Connectivity, _status.Connectivity | None]:
        agents, kv = await gather_connectivity(kube, params.namespace, local, kvstoremesh)
        if params.wait:
            for component, st in (("KVStoreMesh replicas", kv), ("nodes", agents)):
                if st is not None and st.not_ready:
                    raise CtlError(f"{st.not_ready} {component} are not ready", "")
        return agents, kv

    try:
        agents, kv = await waiter.run("clusters to be connected", connected)
    except CtlError:
        if not params.wait:
            raise
        agents, kv = await gather_connectivity(kube, params.namespace, local, kvstoremesh)
        _print(params, info, agents, kvstoremesh, kv, out)
        return 1
    _print(params, info, agents, kvstoremesh, kv, out)
    return 0


def _print(params: StatusParams, info: AccessInfo | None, agents: _status.Connectivity, kvstoremesh: bool,
           kv: _status.Connectivity | None, out: Log) -> None:
    if params.output == "json":
        out(orjson.dumps(_status.status_json(info, agents, kvstoremesh, kv), option=orjson.OPT_INDENT_2).decode())
        return
    for line in _status.connectivity_lines(agents, kv, params.namespace):
        out(line)
