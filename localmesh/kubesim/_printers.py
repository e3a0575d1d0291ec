"""Server-side printing of the workload kinds, with kube-apiserver's columns (``pkg/printers/internalversion/
printers.go``): what ``kubectl get pods`` / ``deployments`` / ``daemonsets`` / ``services`` / ``endpoints``
/ ``nodes`` show, ``-o wide`` columns included (priority 1). Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Cell = Callable[[Obj, dt.datetime], Any]

_NONE = "<none>"


@dataclass(frozen=True, slots=True)
class Printed:
    name: str
    cell: Cell
    priority: int = 0
    type: str = "string"


def _since(stamp: Any, now: dt.datetime) -> str:
    from localmesh.kubesim._table import human_duration  # _table imports this module

    if not isinstance(stamp, str):
        return "<unknown>"
    try:
        then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())


def age(obj: Obj, now: dt.datetime) -> str:
    return _since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _containers(obj: Obj) -> list[Obj]:
    return [c for c in _spec(obj).get("containers") or [] if isinstance(c, dict)]


# -- Pods ---------------------------------------------------------------------------------------------

def pod_ready(pod: Obj, now: dt.datetime) -> str:
    statuses = _status(pod).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(_containers(pod))}"


def pod_status(pod: Obj, now: dt.datetime) -> str:
    """printPod's reason: phase or status reason, an init container's or a container's waiting /
    terminated reason, Terminating while being deleted."""
    status = _status(pod)
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    init_specs = _spec(pod).get("initContainers") or []
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            reason = "Init:" + str(terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}")
        elif waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        return reason
    running = False
    for cs in reversed(status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = str(state["waiting"]["reason"])
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = str(terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}")
        elif state.get("running") and cs.get("ready"):
            running = True
    if running and reason == "Completed":
        reason = "Running"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def pod_restarts(pod: Obj, now: dt.datetime) -> str:
    statuses = _status(pod).get("containerStatuses") or []
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    last = max((str(((s.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or "")
                for s in statuses), default="")
    return f"{restarts} ({_since(last, now)} ago)" if restarts and last else str(restarts)


def _or_none(value: Any) -> str:
    return str(value) if value else _NONE


POD: tuple[Printed, ...] = (
    Printed("Ready", pod_ready), Printed("Status", pod_status), Printed("Restarts", pod_restarts),
    Printed("Age", age),
    Printed("IP", lambda p, now: _or_none(_status(p).get("podIP")), 1),
    Printed("Node", lambda p, now: _or_none(_spec(p).get("nodeName")), 1),
    Printed("Nominated Node", lambda p, now: _or_none(_status(p).get("nominatedNodeName")), 1),
    Printed("Readiness Gates", lambda p, now: _NONE, 1),
)


# -- Deployments and DaemonSets -----------------------------------------------------------------------

def _template_containers(obj: Obj) -> list[Obj]:
    template = _spec(obj).get("template") or {}
    return [c for c in (template.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]


def _selector(obj: Obj, now: dt.datetime) -> str:
    selector = _spec(obj).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr.get('key')} {str(expr.get('operator', '')).lower()} ({values})")
    return ",".join(parts) or _NONE


_WORKLOAD_WIDE = (
    Printed("Containers", lambda o, now: ",".join(str(c.get("name")) for c in _template_containers(o)), 1),
    Printed("Images", lambda o, now: ",".join(str(c.get("image")) for c in _template_containers(o)), 1),
    Printed("Selector", _selector, 1),
)

DEPLOYMENT: tuple[Printed, ...] = (
    Printed("Ready", lambda d, now: f"{_status(d).get('readyReplicas', 0)}/{_spec(d).get('replicas', 1)}"),
    Printed("Up-to-date", lambda d, now: int(_status(d).get("updatedReplicas", 0)), type="integer"),
    Printed("Available", lambda d, now: int(_status(d).get("availableReplicas", 0)), type="integer"),
    Printed("Age", age), *_WORKLOAD_WIDE,
)


def _node_selector(ds: Obj, now: dt.datetime) -> str:
    selector = ((_spec(ds).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or _NONE


def _count(field: str) -> Cell:
    return lambda o, now: int(_status(o).get(field, 0))


DAEMONSET: tuple[Printed, ...] = (
    Printed("Desired", _count("desiredNumberScheduled"), type="integer"),
    Printed("Current", _count("currentNumberScheduled"), type="integer"),
    Printed("Ready", _count("numberReady"), type="integer"),
    Printed("Up-to-date", _count("updatedNumberScheduled"), type="integer"),
    Printed("Available", _count("numberAvailable"), type="integer"),
    Printed("Node Selector", _node_selector), Printed("Age", age), *_WORKLOAD_WIDE,
)


# -- Services, Endpoints, Nodes -----------------------------------------------------------------------

def external_ip(svc: Obj, now: dt.datetime) -> str:
    spec = _spec(svc)
    kind = spec.get("type", "ClusterIP")
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    if kind == "ExternalName":
        return str(spec.get("externalName") or _NONE)
    if kind == "LoadBalancer":
        ingress = ((_status(svc).get("loadBalancer") or {}).get("ingress")) or []
        found = [str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname")]
        return ",".join(found + external) or "<pending>"
    return ",".join(external) or _NONE


def service_ports(svc: Obj, now: dt.datetime) -> str:
    shown = []
    for port in _spec(svc).get("ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        shown.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(shown) or _NONE


SERVICE: tuple[Printed, ...] = (
    Printed("Type", lambda s, now: str(_spec(s).get("type", "ClusterIP"))),
    Printed("Cluster-IP", lambda s, now: _or_none(_spec(s).get("clusterIP"))),
    Printed("External-IP", external_ip), Printed("Port(s)", service_ports), Printed("Age", age),
    Printed("Selector", lambda s, now: ",".join(f"{k}={v}" for k, v in sorted(
        (_spec(s).get("selector") or {}).items())) or _NONE, 1),
)


def endpoint_list(ep: Obj, now: dt.datetime) -> str:
    """formatEndpoints: ip:port pairs of ready addresses, at most three, then "+ N more..."."""
    pairs = []
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or [{}]
        for address in subset.get("addresses") or []:
            for port in ports:
                pairs.append(f"{address.get('ip')}:{port['port']}" if port.get("port") else str(address.get("ip")))
    if not pairs:
        return _NONE
    shown = ",".join(pairs[:3])
    return shown + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")


ENDPOINTS: tuple[Printed, ...] = (Printed("Endpoints", endpoint_list), Printed("Age", age))


def node_status(node: Obj, now: dt.datetime) -> str:
    ready = next((c for c in _status(node).get("conditions") or [] if c.get("type") == "Ready"), None)
    text = "Unknown" if ready is None or ready.get("status") == "Unknown" else (
        "Ready" if ready.get("status") == "True" else "NotReady")
    return text + (",SchedulingDisabled" if _spec(node).get("unschedulable") else "")


def node_roles(node: Obj, now: dt.datetime) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    return ",".join(r for r in roles if r) or _NONE


NODE: tuple[Printed, ...] = (
    Printed("Status", node_status), Printed("Roles", node_roles), Printed("Age", age),
    Printed("Version", lambda n, now: str(((_status(n).get("nodeInfo") or {}).get("kubeletVersion")) or "")),
    Printed("Internal-IP", lambda n, now: next((str(a.get("address")) for a in _status(n).get("addresses") or []
                                                if a.get("type") == "InternalIP"), _NONE), 1),
)

def _involved(event: Obj) -> Obj:
    involved = event.get("involvedObject")
    return involved if isinstance(involved, dict) else {}


def _last_seen(event: Obj, now: dt.datetime) -> str:
    stamp = event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get(
        "creationTimestamp")
    if isinstance(stamp, str) and "." in stamp:  # eventTime carries microseconds
        stamp = stamp.split(".", 1)[0] + "Z"
    return _since(stamp, now)


# Events have no leading Name column (it is the last, wide one).
EVENT: tuple[Printed, ...] = (
    Printed("Last Seen", _last_seen), Printed("Type", lambda e, now: str(e.get("type") or "")),
    Printed("Reason", lambda e, now: str(e.get("reason") or "")),
    Printed("Object", lambda e, now: f"{str(_involved(e).get('kind', '')).lower()}/{_involved(e).get('name', '')}"),
    Printed("Subobject", lambda e, now: str(_involved(e).get("fieldPath") or ""), 1),
    Printed("Source", lambda e, now: str((e.get("source") or {}).get("component") or ""), 1),
    Printed("Message", lambda e, now: str(e.get("message") or "").strip()),
    Printed("First Seen", lambda e, now: _since(e.get("firstTimestamp"), now), 1),
    Printed("Count", lambda e, now: str(e.get("count") or 1), 1),
    Printed("Name", lambda e, now: str((e.get("metadata") or {}).get("name", "")), 1),
)
NAMELESS = frozenset({("", "Event")})

PRINTERS: dict[tuple[str, str], tuple[Printed, ...]] = {
    ("", "Event"): EVENT,
    ("", "Pod"): POD, ("apps", "Deployment"): DEPLOYMENT, ("apps", "DaemonSet"): DAEMONSET,
    ("", "Service"): SERVICE, ("", "Endpoints"): ENDPOINTS, ("", "Node"): NODE,
}
