"""Converters: pure functions from Kubernetes objects (raw decoded JSON) to Cilium's wire bytes.

Nothing here does I/O, logging or asyncio; the exporter and KVStoreMesh call these functions and
write the results through the sync store. Target format: Cilium 1.19.
Every converter raises :class:`ConversionError` (never ``KeyError``/``TypeError``) on input it
cannot represent; the caller skips and counts that object.
"""

from ._errors import ConversionError
from .clusterconfig import (
    CiliumClusterConfig,
    RemoteConfigError,
    cluster_config_value,
    local_cluster_config,
    parse_cluster_config,
    validate_remote_config,
)
from .endpoints import (
    cilium_endpoint_ip_entries,
    cilium_endpoint_owner,
    cilium_endpoint_slice_ip_entries,
    cilium_endpoint_slice_owner,
)
from .gojson import go_json, go_map
from .identities import convert_cilium_identity, identity_key, identity_namespace
from .ipownership import IPOwnership
from .namespaces import namespace_is_global
from .nodes import convert_cilium_node, node_key
from .serviceexports import convert_service_export
from .services import (
    convert_service,
    endpoint_slice_service,
    is_global_service,
    is_headless_service,
    is_shared_service,
    service_key,
    service_selected,
)

__all__ = [
    "CiliumClusterConfig",
    "ConversionError",
    "IPOwnership",
    "RemoteConfigError",
    "cilium_endpoint_ip_entries",
    "cilium_endpoint_owner",
    "cilium_endpoint_slice_ip_entries",
    "cilium_endpoint_slice_owner",
    "cluster_config_value",
    "convert_cilium_identity",
    "convert_cilium_node",
    "convert_service",
    "convert_service_export",
    "endpoint_slice_service",
    "go_json",
    "go_map",
    "identity_key",
    "identity_namespace",
    "is_global_service",
    "is_headless_service",
    "is_shared_service",
    "local_cluster_config",
    "namespace_is_global",
    "node_key",
    "parse_cluster_config",
    "service_key",
    "service_selected",
    "validate_remote_config",
]
