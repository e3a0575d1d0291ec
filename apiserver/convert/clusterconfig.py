"""``CiliumClusterConfig`` under ``cilium/cluster-config/<cluster>``. Pure.

Writing: every field ``omitempty`` except ``capabilities`` (Go never omits a struct), and
``serviceExportsEnabled`` is a pointer, so ``false`` is written while ``None`` is left out.
Reading: :func:`parse_cluster_config` decodes like Go's ``json.Unmarshal`` into the struct
(unknown fields ignored, case-insensitive field names, ``null`` leaves a field untouched,
wrong types and out-of-range numbers are errors), then :func:`validate_remote_config`
applies the reader-side rules of ``ClusterInfo.ValidateRemoteConfig``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from apiserver.clusterinfo import ClusterInfo

from ._errors import ConversionError
from .gojson import go_json

__all__ = [
    "ENDPOINT_SLICES_EXPORT_MODES",
    "CiliumClusterConfig",
    "RemoteConfigError",
    "cluster_config_value",
    "local_cluster_config",
    "parse_cluster_config",
    "validate_remote_config",
]

# "" means "services only" (and is what 1.19 peers, which do not know the field, imply).
ENDPOINT_SLICES_EXPORT_MODES = frozenset({"", "services-and-endpointslices", "endpointslices-only"})
_DEFAULT_MAX_CONNECTED_CLUSTERS = 255
_UINT32_MAX = 0xFFFFFFFF


class RemoteConfigError(ConversionError):
    """A remote cluster's configuration is incompatible with the local cluster."""


@dataclass(frozen=True, slots=True)
class CiliumClusterConfig:
    id: int = 0
    synced_canaries: bool = False
    cached: bool = False
    max_connected_clusters: int = 0
    service_exports_enabled: bool | None = None  # None: the peer does not know MCS-API
    endpoint_slices_export_mode: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "max_connected_clusters"):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= _UINT32_MAX:
                raise ConversionError(f"{name}: {number!r} is not a uint32")


def local_cluster_config(cluster: ClusterInfo, *, mcs_api_enabled: bool) -> CiliumClusterConfig:
    """The config the clustermesh-apiserver advertises for its own cluster (1.19 format)."""
    return CiliumClusterConfig(
        id=cluster.id,
        synced_canaries=True,
        max_connected_clusters=cluster.max_connected_clusters,
        service_exports_enabled=mcs_api_enabled,
    )


def cluster_config_value(cfg: CiliumClusterConfig) -> bytes:
    capabilities: dict[str, Any] = {}
    if cfg.synced_canaries:
        capabilities["syncedCanaries"] = True
    if cfg.cached:
        capabilities["cached"] = True
    if cfg.max_connected_clusters:
        capabilities["maxConnectedClusters"] = cfg.max_connected_clusters
    if cfg.service_exports_enabled is not None:
        capabilities["serviceExportsEnabled"] = cfg.service_exports_enabled
    if cfg.endpoint_slices_export_mode:
        capabilities["endpointSlicesExportMode"] = cfg.endpoint_slices_export_mode
    value: dict[str, Any] = {"id": cfg.id} if cfg.id else {}
    value["capabilities"] = capabilities
    return go_json(value)


def validate_remote_config(cfg: CiliumClusterConfig, local: ClusterInfo) -> None:
    """Raise :class:`RemoteConfigError` unless a reader in ``local`` may use ``cfg``."""
    if cfg.id == 0:
        raise RemoteConfigError("ClusterID 0 is reserved")
    if cfg.id > local.cluster_id_max:
        raise RemoteConfigError(f"ClusterID > {local.cluster_id_max} is not supported")
    if (
        local.max_connected_clusters != _DEFAULT_MAX_CONNECTED_CLUSTERS
        and cfg.max_connected_clusters != local.max_connected_clusters
    ):
        raise RemoteConfigError(
            f"mismatched MaxConnectedClusters; local={local.max_connected_clusters}, "
            f"remote={cfg.max_connected_clusters}"
        )
    if cfg.endpoint_slices_export_mode not in ENDPOINT_SLICES_EXPORT_MODES:
        raise RemoteConfigError(f"unknown endpointSlicesExportMode {cfg.endpoint_slices_export_mode[:64]!r}")


# ----- decoding, Go style ----- #


class _Object(list[tuple[str, Any]]):
    """A JSON object kept as its ordered (key, value) pairs, duplicates included."""


class _Number(str):
    """A JSON number kept as its literal text: Go decides per target field what it accepts."""


class _Integer(_Number):
    """A JSON number without fraction or exponent (``-0`` stays distinguishable from ``0``)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


_TOP_FIELDS = {"id": "id", "capabilities": "capabilities"}
_CAPABILITY_FIELDS = {
    "syncedcanaries": "synced_canaries",
    "cached": "cached",
    "maxconnectedclusters": "max_connected_clusters",
    "serviceexportsenabled": "service_exports_enabled",
    "endpointslicesexportmode": "endpoint_slices_export_mode",
}
_BOOL_CAPABILITIES = frozenset({"synced_canaries", "cached"})


def parse_cluster_config(raw: bytes) -> CiliumClusterConfig:
    """Decode a stored cluster config; :class:`ConversionError` where Go's decoder fails."""
    try:
        # Go replaces invalid UTF-8 inside strings by U+FFFD rather than failing.
        doc = json.loads(
            raw.decode("utf-8", "replace"),
            object_pairs_hook=_Object,
            parse_int=_Integer,
            parse_float=_Number,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise ConversionError(f"cluster config is not valid JSON: {exc}") from None
    if doc is None:  # Go: unmarshalling null into a struct is a no-op
        return CiliumClusterConfig()
    if not isinstance(doc, _Object):
        raise ConversionError("cluster config is not a JSON object")
    values: dict[str, Any] = {}
    for key, value in doc:
        field = _TOP_FIELDS.get(key.casefold())
        if field == "id":
            if value is not None:
                values["id"] = _uint32(value, "id")
        elif field == "capabilities" and value is not None:
            if not isinstance(value, _Object):
                raise ConversionError("capabilities: expected an object")
            # A repeated "capabilities" decodes into the same struct: fields merge.
            for cap_key, cap_value in value:
                name = _CAPABILITY_FIELDS.get(cap_key.casefold())
                if name is not None:
                    _set_capability(values, name, cap_value)
    return replace(CiliumClusterConfig(), **values)


def _set_capability(values: dict[str, Any], name: str, value: Any) -> None:
    if name == "service_exports_enabled":  # a pointer: null resets it to nil
        if value is not None and not isinstance(value, bool):
            raise ConversionError("serviceExportsEnabled: expected a boolean")
        values[name] = value
    elif value is None:
        return
    elif name == "max_connected_clusters":
        values[name] = _uint32(value, "maxConnectedClusters")
    elif name in _BOOL_CAPABILITIES:
        if not isinstance(value, bool):
            raise ConversionError(f"{name}: expected a boolean")
        values[name] = value
    else:
        if not isinstance(value, str) or isinstance(value, _Number):
            raise ConversionError(f"{name}: expected a string")
        values[name] = value


def _uint32(value: Any, what: str) -> int:
    if not isinstance(value, _Integer) or value.startswith("-"):
        raise ConversionError(f"{what}: expected an unsigned integer")
    if len(value) > 10 or int(value) > _UINT32_MAX:  # JSON forbids leading zeros
        raise ConversionError(f"{what}: {value[:32]} overflows uint32")
    return int(value)
