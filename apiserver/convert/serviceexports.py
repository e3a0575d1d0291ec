"""Service + MCS-API ServiceExport -> ``MCSAPIServiceSpec`` JSON under
``cilium/state/serviceexports/v1``. Pure.

Field order and ``omitempty`` follow upstream ``MCSAPIServiceSpec``: ``ports`` is always an
array (``[]`` when none), ``exportCreationTimestamp`` is ``null`` when the export has no
creation timestamp, the pointer fields (``appProtocol``, ``internalTrafficPolicy``,
``trafficDistribution``, ``sessionAffinityConfig``) are present exactly when set.
Namespace filtering is the caller's job; the key is :func:`service_key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiserver.clusterinfo import ClusterInfo

from . import _access as a
from ._errors import ConversionError
from ._timefmt import rfc3339_utc_seconds
from .gojson import go_json, go_map
from .services import service_key

__all__ = ["convert_service_export", "service_key"]


def convert_service_export(
    svc: Mapping[str, Any], export: Mapping[str, Any], cluster: ClusterInfo
) -> bytes | None:
    """The value for a Service and its same-named ServiceExport; ``None`` for ExternalName."""
    svc_meta = a.metadata(svc)
    name, namespace = a.name_of(svc_meta), a.namespace_of(svc_meta)
    export_meta = a.metadata(export)
    if (a.name_of(export_meta), a.namespace_of(export_meta)) != (name, namespace):
        raise ConversionError("the ServiceExport does not belong to the Service")
    spec = a.mapping(svc.get("spec"), "spec")
    if a.string(spec.get("type"), "spec.type") == "ExternalName":
        return None
    export_spec = a.mapping(export.get("spec"), "ServiceExport spec")

    value: dict[str, Any] = {"cluster": cluster.name, "name": name, "namespace": namespace}
    annotations = a.str_map(export_spec.get("exportedAnnotations"), "spec.exportedAnnotations")
    if annotations:
        value["annotations"] = go_map(annotations)
    labels = a.str_map(export_spec.get("exportedLabels"), "spec.exportedLabels")
    if labels:
        value["labels"] = go_map(labels)
    created = a.string(export_meta.get("creationTimestamp"), "ServiceExport metadata.creationTimestamp")
    value["exportCreationTimestamp"] = (
        rfc3339_utc_seconds(created, "ServiceExport metadata.creationTimestamp")
        if export_meta.get("creationTimestamp") is not None
        else None
    )
    value["ports"] = _ports(spec)
    value["type"] = "Headless" if a.string(spec.get("clusterIP"), "spec.clusterIP") == "None" else "ClusterSetIP"
    value["sessionAffinity"] = a.string(spec.get("sessionAffinity"), "spec.sessionAffinity")
    affinity = a.mapping(spec.get("sessionAffinityConfig"), "spec.sessionAffinityConfig")
    client_ip = a.mapping(affinity.get("clientIP"), "spec.sessionAffinityConfig.clientIP")
    timeout = client_ip.get("timeoutSeconds")
    if timeout is not None:
        what = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        value["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": a.integer(timeout, what, a.INT32)}}
    families = [a.string(f, "spec.ipFamilies[]") for f in a.array(spec.get("ipFamilies"), "spec.ipFamilies")]
    if families:
        value["ipFamilies"] = families
    for field in ("internalTrafficPolicy", "trafficDistribution"):
        setting = spec.get(field)
        if setting is not None:
            value[field] = a.string(setting, f"spec.{field}")
    return go_json(value)


def _ports(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = []
    for what, port in a.objects(spec.get("ports"), "spec.ports"):
        out: dict[str, Any] = {}
        name = a.string(port.get("name"), f"{what}.name")
        if name:
            out["name"] = name
        protocol = a.string(port.get("protocol"), f"{what}.protocol")
        if protocol:
            out["protocol"] = protocol
        app_protocol = port.get("appProtocol")
        if app_protocol is not None:
            out["appProtocol"] = a.string(app_protocol, f"{what}.appProtocol")
        out["port"] = a.integer(port.get("port"), f"{what}.port", a.INT32)
        ports.append(out)
    return ports
