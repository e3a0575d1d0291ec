"""Kubernetes side: client configuration, the watched resources, and list/watch reflectors.

Reads the Kubernetes API and hands decoded objects to a consumer; knows nothing of etcd.
"""

from apiserver._backoff import Backoff
from apiserver._tokenbucket import TokenBucket
from apiserver.kube._cache import (
    Cache,
    CompactCache,
    IndexFunc,
    Key,
    KubeObject,
    MetadataCache,
    index_by_service,
    namespaced_name,
    object_key,
    object_name,
)
from apiserver.kube._http import KubeAPIError
from apiserver.kube.config import KubeClient, KubeConfigError, KubeOptions, add_kube_flags, build_client
from apiserver.kube.health import check_api
from apiserver.kube.reflector import (
    DELETE,
    UPSERT,
    BatchHandler,
    CacheKind,
    CountingMetrics,
    EventKind,
    ObjectEvent,
    ObjectHandler,
    Reflector,
    ReflectorMetrics,
    ReflectorOptions,
)
from apiserver.kube.resources import (
    ALL_RESOURCES,
    CILIUM_ENDPOINT_SLICES,
    CILIUM_ENDPOINTS,
    CILIUM_IDENTITIES,
    CILIUM_NODES,
    ENDPOINT_SLICES,
    NAMESPACES,
    SERVICE_EXPORTS,
    SERVICES,
    APIResource,
    label_selector_for,
)

__all__ = [
    "ALL_RESOURCES",
    "CILIUM_ENDPOINTS",
    "CILIUM_ENDPOINT_SLICES",
    "CILIUM_IDENTITIES",
    "CILIUM_NODES",
    "DELETE",
    "ENDPOINT_SLICES",
    "NAMESPACES",
    "SERVICES",
    "SERVICE_EXPORTS",
    "UPSERT",
    "APIResource",
    "Backoff",
    "BatchHandler",
    "Cache",
    "CacheKind",
    "CompactCache",
    "CountingMetrics",
    "EventKind",
    "IndexFunc",
    "Key",
    "KubeAPIError",
    "KubeClient",
    "KubeConfigError",
    "KubeObject",
    "KubeOptions",
    "MetadataCache",
    "ObjectEvent",
    "ObjectHandler",
    "Reflector",
    "ReflectorMetrics",
    "ReflectorOptions",
    "TokenBucket",
    "add_kube_flags",
    "build_client",
    "check_api",
    "index_by_service",
    "label_selector_for",
    "namespaced_name",
    "object_key",
    "object_name",
]
