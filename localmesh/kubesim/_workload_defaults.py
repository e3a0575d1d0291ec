"""Defaults and validation of Pods, Deployments and DaemonSets, as kube-apiserver applies them on every
write (``pkg/apis/core/v1/defaults.go``, ``pkg/apis/apps/v1/defaults.go``, and the ServiceAccount and
DefaultTolerationSeconds admission plugins for Pods). Pure; raises ``KubeError`` for invalid input.

Templates are defaulted exactly as the Pods made from them, so a template's hash is stable across
``kubectl apply`` of the same manifest.
"""

from __future__ import annotations

from typing import Any

from localmesh.kubesim import _errors as errors
from localmesh.kubesim._resources import ResourceType

Obj = dict[str, Any]

_NOT_READY_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def pod_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            _container(container)


def _qos_class(spec: Obj) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers") or [] if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(r.get("limits") and all(r.get("requests", r["limits"]).get(k) == v
                                             for k, v in r["limits"].items())
                     and set((r.get("requests") or r["limits"]).keys()) >= {"cpu", "memory"}
                     for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def pod(obj: Obj, old: Obj | None) -> None:
    spec = obj.setdefault("spec", {})
    pod_spec(spec)
    if old is None and isinstance(spec, dict):
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("priority", 0)
        spec.setdefault("tolerations", [dict(t) for t in _NOT_READY_TOLERATIONS])
    status = obj.setdefault("status", {})
    if isinstance(status, dict) and isinstance(spec, dict):
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", _qos_class(spec))


def _template(rt: ResourceType, obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise errors.invalid(rt, obj["metadata"]["name"], "spec.template", "FieldValueRequired", "Required value")
    template = spec.get("template")
    if not isinstance(template, dict):
        raise errors.invalid(rt, obj["metadata"]["name"], "spec.template", "FieldValueRequired", "Required value")
    pod_spec(template.setdefault("spec", {}))
    template.setdefault("metadata", {})
    selector = spec.get("selector")
    labels = template["metadata"].get("labels") or {}
    name = obj["metadata"]["name"]
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        raise errors.invalid(rt, name, "spec.selector", "FieldValueRequired", "Required value")
    match = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match.items()):
        shown = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
        raise errors.invalid(rt, name, "spec.template.metadata.labels", "FieldValueInvalid",
                             f"Invalid value: map[string]string{{{shown}}}: `selector` does not match template "
                             f"`labels`")


def deployment(rt: ResourceType, obj: Obj) -> None:
    _template(rt, obj)
    spec: Obj = obj["spec"]
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def daemonset(rt: ResourceType, obj: Obj) -> None:
    _template(rt, obj)
    spec: Obj = obj["spec"]
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)


def apply_workload_defaults(rt: ResourceType, obj: Obj, old: Obj | None) -> None:
    if rt.group == "" and rt.kind == "Pod":
        pod(obj, old)
    elif rt.group == "apps" and rt.kind == "Deployment":
        deployment(rt, obj)
    elif rt.group == "apps" and rt.kind == "DaemonSet":
        daemonset(rt, obj)
