"""The mesh API pod's manifests (the repository's ``deploy/base``: the upstream chart's rendering with
our image) adapted to one ``enable``: namespace, Service type, KVStoreMesh on or off, image. Pure
apart from reading the manifest files.

Without KVStoreMesh the ``kvstoremesh`` container, its ``kvstoremesh-secrets`` volume and its
``kvmesh-metrics`` ports go, as the chart renders ``clustermesh.apiserver.kvstoremesh.enabled=false``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from apiserver.ctl._errors import CtlError
from apiserver.ctl._kube import kind_of
from apiserver.ctl._names import (
    APISERVER_PORT,
    DEPLOYMENT,
    KVSTOREMESH_CONTAINER,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NODEPORT,
    SERVICE,
)

KubeObject = dict[str, Any]
KVSTOREMESH_VOLUME = "kvstoremesh-secrets"
KVSTOREMESH_METRICS_PORT = "kvmesh-metrics"


def default_manifest_dir() -> Path:
    """``deploy/base`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "deploy" / "base"


def load_manifests(directory: str | Path) -> list[KubeObject]:
    base = Path(directory)
    if not base.is_dir():
        raise CtlError(f"manifest directory {base} does not exist",
                       "pass --manifests DIR (the repository's deploy/base)")
    objects: list[KubeObject] = []
    for path in sorted(base.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            raise CtlError(f"manifest {path} is not valid YAML: {exc}", "fix or remove the file") from None
        objects += [d for d in docs if isinstance(d, dict) and d.get("kind")]
    if not any(o.get("kind") == "Deployment" for o in objects):
        raise CtlError(f"manifest directory {base} has no Deployment", "point --manifests at deploy/base")
    return objects


def _drop_named(items: Sequence[Any], name: str, key: str = "name") -> list[Any]:
    return [i for i in items if not (isinstance(i, dict) and i.get(key) == name)]


def _without_kvstoremesh(obj: KubeObject) -> None:
    kind, name = obj["kind"], obj["metadata"].get("name")
    if kind == "Deployment" and name == DEPLOYMENT:
        pod = obj["spec"]["template"]["spec"]
        pod["containers"] = _drop_named(pod.get("containers") or [], KVSTOREMESH_CONTAINER)
        pod["volumes"] = _drop_named(pod.get("volumes") or [], KVSTOREMESH_VOLUME)
    elif kind == "Service" and name != SERVICE:
        spec = obj.get("spec") or {}
        spec["ports"] = [p for p in spec.get("ports") or []
                         if KVSTOREMESH_METRICS_PORT not in (p.get("name"), p.get("targetPort"))]
    elif kind == "NetworkPolicy":
        for rule in (obj.get("spec") or {}).get("ingress") or []:
            rule["ports"] = _drop_named(rule.get("ports") or [], KVSTOREMESH_METRICS_PORT, "port")


def _service_type(obj: KubeObject, service_type: str) -> None:
    spec = obj.setdefault("spec", {})
    spec["type"] = service_type
    if service_type == "NodePort":
        spec["ports"] = [{"port": APISERVER_PORT, "nodePort": NODEPORT}]


# Apply order: what pods mount and run as before the workloads that use them.
_ORDER = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Secret", "Service",
          "NetworkPolicy", "PodDisruptionBudget", "Deployment")


def _rank(obj: KubeObject) -> int:
    kind = str(obj.get("kind"))
    return _ORDER.index(kind) if kind in _ORDER else len(_ORDER) - 1


def prepare(objects: Iterable[KubeObject], *, namespace: str, service_type: str, kvstoremesh: bool,
            image: str = "") -> list[KubeObject]:
    result = []
    for original in objects:
        obj = copy.deepcopy(original)
        meta = obj.setdefault("metadata", {})
        if kind_of(str(obj.get("apiVersion")), str(obj["kind"])).namespaced:
            meta["namespace"] = namespace
        meta.setdefault("labels", {})[MANAGED_BY_LABEL] = MANAGED_BY
        if obj["kind"] == "ClusterRoleBinding":
            for subject in obj.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
        if obj["kind"] == "Service" and meta.get("name") == SERVICE:
            _service_type(obj, service_type)
        if not kvstoremesh:
            _without_kvstoremesh(obj)
        if image and obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
                container["image"] = image
        result.append(obj)
    return sorted(result, key=_rank)
