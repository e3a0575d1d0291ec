"""The Kubernetes resources clustermesh-apiserver watches, and the label selectors it watches them with.

Pure data: URL paths and selector strings, no I/O. A ``APIResource`` names one API collection; the
reflector lists and watches ``resource.list_path()`` (all namespaces for namespaced resources).
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
ENDPOINTSLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
# EndpointSlices that Cilium itself mirrors from remote clusters; exporting them would loop.
ENDPOINTSLICE_MESH_CONTROLLER = "endpointslice-mesh-controller.cilium.io"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class APIResource:
    """One API collection: ``group`` is ``""`` for the core API (``/api/v1``)."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """Short name for logs and metric labels (``ciliumnodes``, ``endpointslices``)."""
        return self.plural

    def list_path(self, namespace: str | None = None) -> str:
        """``/api/v1/services`` (all namespaces) or ``/api/v1/namespaces/<ns>/services``."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        if namespace:
            raise ValueError(f"{self.kind} is cluster-scoped: it has no namespace {namespace!r}")
        return f"{base}/{self.plural}"


CILIUM_NODES = APIResource("CiliumNode", "cilium.io", "v2", "ciliumnodes", namespaced=False)
CILIUM_IDENTITIES = APIResource("CiliumIdentity", "cilium.io", "v2", "ciliumidentities", namespaced=False)
CILIUM_ENDPOINTS = APIResource("CiliumEndpoint", "cilium.io", "v2", "ciliumendpoints", namespaced=True)
CILIUM_ENDPOINT_SLICES = APIResource(
    "CiliumEndpointSlice", "cilium.io", "v2alpha1", "ciliumendpointslices", namespaced=False)
SERVICES = APIResource("Service", "", "v1", "services", namespaced=True)
ENDPOINT_SLICES = APIResource("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", namespaced=True)
NAMESPACES = APIResource("Namespace", "", "v1", "namespaces", namespaced=False)
# Cilium 1.19 reads MCS-API v1alpha1; 1.20 moved to v1beta1 (same JSON): use dataclasses.replace.
SERVICE_EXPORTS = APIResource(
    "ServiceExport", "multicluster.x-k8s.io", "v1alpha1", "serviceexports", namespaced=True)

ALL_RESOURCES: tuple[APIResource, ...] = (
    CILIUM_NODES, CILIUM_IDENTITIES, CILIUM_ENDPOINTS, CILIUM_ENDPOINT_SLICES,
    SERVICES, ENDPOINT_SLICES, NAMESPACES, SERVICE_EXPORTS,
)


def service_proxy_selector(service_proxy_name: str) -> str:
    """Upstream's service-proxy-name rule (``--k8s-service-proxy-name``).

    With no proxy name Cilium is the default proxy and handles every service that does not name
    another proxy; with a name it handles only the services that name it.
    """
    if service_proxy_name:
        return f"{SERVICE_PROXY_NAME_LABEL}={service_proxy_name}"
    return f"!{SERVICE_PROXY_NAME_LABEL}"


def endpointslice_selector(service_proxy_name: str) -> str:
    """Slices of the services we handle, minus the ones Cilium mirrored from remote clusters.

    The API server ANDs comma-separated requirements. Kubernetes mirrors the service-proxy-name
    label from a Service onto its EndpointSlices, so the same rule selects the same services.
    """
    return (f"{ENDPOINTSLICE_MANAGED_BY_LABEL}!={ENDPOINTSLICE_MESH_CONTROLLER},"
            f"{service_proxy_selector(service_proxy_name)}")


def label_selector_for(resource: APIResource, service_proxy_name: str = "") -> str:
    """The label selector clustermesh-apiserver watches ``resource`` with (``""``: everything)."""
    if resource.group == SERVICES.group and resource.plural == SERVICES.plural:
        return service_proxy_selector(service_proxy_name)
    if resource.group == ENDPOINT_SLICES.group and resource.plural == ENDPOINT_SLICES.plural:
        return endpointslice_selector(service_proxy_name)
    return ""
