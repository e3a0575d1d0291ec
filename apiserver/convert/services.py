"""Service + EndpointSlices -> ``ClusterService`` JSON under ``cilium/state/services/v1``.
Pure.

Mirrors the 1.19 operator ``DefaultClusterServiceConverter`` and ``ParseEndpointSliceV1``:
only global *and* shared services are exported; frontends are the cluster IPs (verbatim)
with the Service ports, backends the ready-or-serving addresses of the EndpointSlices
(``netip`` text form) with the slice ports. ``hostnames``/``zones`` are ``omitempty`` (1.19),
``labels``/``selector`` are ``{}`` when empty, ``includeExternal``/``shared`` always true.
Namespace filtering is the caller's job.

Deliberate deviation: a zoned backend address (``fe80::1%eth0``) is skipped; upstream would
write it and every reader would then reject the whole service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from apiserver.clusterinfo import ClusterInfo
from apiserver.paths import join_key

from . import _access as a
from ._errors import ConversionError
from ._ip import canonical_addr_cluster
from .gojson import go_json, go_map

__all__ = [
    "ENDPOINT_SLICE_MESH_CONTROLLER",
    "GLOBAL_SERVICE_ANNOTATIONS",
    "SHARED_SERVICE_ANNOTATIONS",
    "convert_service",
    "endpoint_slice_service",
    "is_global_service",
    "is_headless_service",
    "is_shared_service",
    "service_key",
    "service_selected",
]

# Main annotation first, then its legacy alias (upstream ``annotation.Get`` order).
GLOBAL_SERVICE_ANNOTATIONS = ("service.cilium.io/global", "io.cilium/global-service")
SHARED_SERVICE_ANNOTATIONS = ("service.cilium.io/shared", "io.cilium/shared-service")
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ENDPOINT_SLICE_MESH_CONTROLLER = "endpointslice-mesh-controller.cilium.io"
DEPRECATED_ZONE_LABEL = "topology.kubernetes.io/zone"

_SLICE_ADDRESS_TYPES = frozenset({"IPv4", "IPv6"})
_SLICE_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
_UINT16 = 0xFFFF


def service_key(cluster: ClusterInfo, svc: Mapping[str, Any]) -> str:
    """Key relative to the services (or service exports) prefix: ``<cluster>/<ns>/<name>``."""
    meta = a.metadata(svc)
    return join_key(cluster.name, a.namespace_of(meta), a.name_of(meta))


def is_global_service(svc: Mapping[str, Any]) -> bool:
    """``service.cilium.io/global`` (or its alias) is ``"true"``, case-insensitively."""
    value = a.annotation(a.metadata(svc), *GLOBAL_SERVICE_ANNOTATIONS)
    return value is not None and value.lower() == "true"


def is_shared_service(svc: Mapping[str, Any]) -> bool:
    """Global, and ``service.cilium.io/shared`` (or alias) absent or ``"true"``."""
    if not is_global_service(svc):
        return False
    value = a.annotation(a.metadata(svc), *SHARED_SERVICE_ANNOTATIONS)
    return value is None or value.lower() == "true"


def service_selected(svc_or_slice: Mapping[str, Any], service_proxy_name: str = "") -> bool:
    """The informers' label selector on ``service.kubernetes.io/service-proxy-name``.

    Without a configured proxy name, objects carrying the label belong to another proxy;
    with one, only objects whose label equals it are ours.
    """
    value = a.labels_of(a.metadata(svc_or_slice)).get(SERVICE_PROXY_NAME_LABEL)
    if not service_proxy_name:
        return value is None
    return value == service_proxy_name


def endpoint_slice_service(slice_: Mapping[str, Any]) -> str | None:
    """``<ns>/<service>`` owning an EndpointSlice, ``None`` if unowned or mirrored by Cilium."""
    meta = a.metadata(slice_)
    labels = a.labels_of(meta)
    service = labels.get(SERVICE_NAME_LABEL)
    if not service or labels.get(MANAGED_BY_LABEL) == ENDPOINT_SLICE_MESH_CONTROLLER:
        return None
    return f"{a.namespace_of(meta)}/{service}"


def is_headless_service(svc: Mapping[str, Any]) -> bool:
    """Label ``service.kubernetes.io/headless`` present, or ``clusterIP`` is ``None`` (any case)."""
    if HEADLESS_LABEL in a.labels_of(a.metadata(svc)):
        return True
    spec = a.mapping(svc.get("spec"), "spec")
    return a.string(spec.get("clusterIP"), "spec.clusterIP").lower() == "none"


def convert_service(
    svc: Mapping[str, Any], slices: Iterable[Mapping[str, Any]], cluster: ClusterInfo,
    skipped: list[tuple[Mapping[str, Any], str]] | None = None,
) -> bytes | None:
    """The ``ClusterService`` value, or ``None`` when the service is not exported.

    ``slices`` are the EndpointSlices of the service; slices owned by another service (or
    mirrored by Cilium) are ignored. On an address present in several slices the later slice
    wins, so pass them in a stable order. With ``skipped``, a malformed slice contributes no
    backend and is appended with the reason (the other slices still count); without it, a
    malformed slice raises ``ConversionError`` like a malformed service.
    """
    meta = a.metadata(svc)
    name = a.name_of(meta)
    namespace = a.namespace_of(meta)
    if not is_shared_service(svc):
        return None
    spec = a.mapping(svc.get("spec"), "spec")
    labels = a.labels_of(meta)
    selector = a.str_map(spec.get("selector"), "spec.selector") or {}

    frontends: dict[str, Any] = {}
    if not is_headless_service(svc):
        ports = _service_ports(spec)
        cluster_ips = [a.string(ip, "spec.clusterIPs[]") for ip in a.array(spec.get("clusterIPs"), "spec.clusterIPs")]
        if not cluster_ips:
            cluster_ips = [a.string(spec.get("clusterIP"), "spec.clusterIP")]
        for ip in cluster_ips:
            frontends[ip] = ports

    backends: dict[str, Any] = {}
    hostnames: dict[str, str] = {}
    zones: dict[str, Any] = {}
    owner = f"{namespace}/{name}"
    for slice_ in slices:
        if skipped is None:
            if endpoint_slice_service(slice_) == owner:
                _add_backends(slice_, backends, hostnames, zones)
            continue
        # All or nothing per slice: its backends are collected apart, then merged.
        own: tuple[dict[str, Any], dict[str, str], dict[str, Any]] = ({}, {}, {})
        try:
            if endpoint_slice_service(slice_) != owner:
                continue
            _add_backends(slice_, *own)
        except ConversionError as exc:
            skipped.append((slice_, exc.reason))
            continue
        backends.update(own[0])
        hostnames.update(own[1])
        zones.update(own[2])

    value: dict[str, Any] = {
        "cluster": cluster.name,
        "namespace": namespace,
        "name": name,
        "frontends": go_map(frontends),
        "backends": go_map(backends),
    }
    if hostnames:
        value["hostnames"] = go_map(hostnames)
    if zones:
        value["zones"] = go_map(zones)
    value["labels"] = go_map(labels)
    value["selector"] = go_map(selector)
    value["includeExternal"] = True
    value["shared"] = True
    value["clusterID"] = cluster.id
    return go_json(value)


def _service_ports(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    ports: dict[str, dict[str, Any]] = {}
    for what, port in a.objects(spec.get("ports"), "spec.ports"):
        # The protocol is copied verbatim; Go converts the port with uint16().
        ports[a.string(port.get("name"), f"{what}.name")] = {
            "Protocol": a.string(port.get("protocol"), f"{what}.protocol"),
            "Port": a.integer(port.get("port"), f"{what}.port", a.INT32) & _UINT16,
        }
    return go_map(ports)


def _slice_ports(slice_: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    ports: dict[str, dict[str, Any]] = {}
    for what, port in a.objects(slice_.get("ports"), "ports"):
        protocol = port.get("protocol")
        if protocol is None:
            protocol = "TCP"
        elif a.string(protocol, f"{what}.protocol") not in _SLICE_PROTOCOLS:
            continue
        number = port.get("port")
        if number is None:
            continue
        ports[a.string(port.get("name"), f"{what}.name")] = {
            "Protocol": protocol,
            "Port": a.integer(number, f"{what}.port", a.INT32) & _UINT16,
        }
    return go_map(ports)


def _add_backends(
    slice_: Mapping[str, Any],
    backends: dict[str, Any],
    hostnames: dict[str, str],
    zones: dict[str, Any],
) -> None:
    if a.string(slice_.get("addressType"), "addressType") not in _SLICE_ADDRESS_TYPES:
        return  # FQDN slices contribute nothing
    ports = _slice_ports(slice_)
    # Within a slice the last endpoint listing an address wins, before conditions are looked at.
    by_address: dict[str, tuple[bool, str, str, list[dict[str, str]]]] = {}
    for what, endpoint in a.objects(slice_.get("endpoints"), "endpoints"):
        conditions = a.mapping(endpoint.get("conditions"), f"{what}.conditions")
        ready = a.opt_bool(conditions.get("ready"), f"{what}.conditions.ready")
        serving = a.opt_bool(conditions.get("serving"), f"{what}.conditions.serving")
        # An absent condition counts as true.
        included = ready is not False or serving is not False
        hostname = a.string(endpoint.get("hostname"), f"{what}.hostname")
        zone_value = endpoint.get("zone")
        if zone_value is not None:
            zone = a.string(zone_value, f"{what}.zone")
        else:
            topology = a.str_map(endpoint.get("deprecatedTopology"), f"{what}.deprecatedTopology") or {}
            zone = topology.get(DEPRECATED_ZONE_LABEL, "")
        for_zones = _for_zones(endpoint, what)
        for address in a.array(endpoint.get("addresses"), f"{what}.addresses"):
            text = canonical_addr_cluster(a.string(address, f"{what}.addresses[]"))
            if text is not None:
                by_address[text] = (included, hostname, zone, for_zones)
    for text, (included, hostname, zone, for_zones) in by_address.items():
        if not included:
            continue
        backends[text] = ports
        if hostname:
            hostnames[text] = hostname
        if zone:
            zones[text] = {"zone": zone, "forZones": for_zones}


def _for_zones(endpoint: Mapping[str, Any], what: str) -> list[dict[str, str]]:
    hints = a.mapping(endpoint.get("hints"), f"{what}.hints")
    return [
        {"name": a.string(a.mapping(h, f"{what}.hints.forZones[]").get("name"), f"{what}.hints.forZones[].name")}
        for h in a.array(hints.get("forZones"), f"{what}.hints.forZones")
    ]
