"""The agent's own cluster's global services, from its Kubernetes API: Services and EndpointSlices
converted by the product's converter into the ``ClusterService`` the exporter would write, so the
merged view holds every backend of every cluster, the local ones included (as an agent's service
cache does)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert import ConversionError
from apiserver.convert.services import convert_service, endpoint_slice_service, is_global_service
from apiserver.kube import KubeClient
from apiserver.kube._http import KubeHTTP

SERVICES_PATH = "/api/v1/services"
SLICES_PATH = "/apis/discovery.k8s.io/v1/endpointslices"


async def local_services(kube: KubeClient, cluster: ClusterInfo) -> dict[str, bytes]:
    """``<namespace>/<name>`` -> ClusterService bytes, for every global shared Service."""
    http = KubeHTTP(kube.api_client)
    services = (await http.get_json(SERVICES_PATH)).get("items") or []
    slices: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for slice_ in (await http.get_json(SLICES_PATH)).get("items") or []:
        owner = endpoint_slice_service(slice_)
        if owner is not None:
            slices[owner].append(slice_)
    result: dict[str, bytes] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        try:
            if not is_global_service(svc):
                continue
            value = convert_service(svc, sorted(slices[key], key=lambda s: s["metadata"]["name"]), cluster)
        except ConversionError:
            continue  # the exporter skips (and counts) malformed objects too
        if value is not None:
            result[key] = value
    return result
