"""The ``RemoteCluster`` status model of ``GET /v1/cluster`` and its human rendering. Pure.

JSON layout follows the go-swagger models upstream: fields ordered by Go field name, every
field ``omitempty`` except ``last-failure`` (a ``strfmt.DateTime`` struct, which Go's encoder
never omits: the zero time renders as ``0001-01-01T00:00:00.000Z``), and the pointer booleans
``service-exports-enabled`` / ``service-exports`` / ``endpoint-slices``, present whenever set.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00.000Z"


@dataclass(slots=True)
class RemoteClusterConfigStatus:
    required: bool = True
    retrieved: bool = False
    cluster_id: int = 0
    kvstoremesh: bool = False
    sync_canaries: bool = False
    service_exports_enabled: bool | None = None
    endpoint_slices_export_mode: str = ""


@dataclass(slots=True)
class RemoteClusterSyncedStatus:
    nodes: bool = False
    services: bool = False
    identities: bool = False
    endpoints: bool = False
    service_exports: bool | None = None
    endpoint_slices: bool | None = None


@dataclass(slots=True)
class RemoteClusterStatus:
    name: str
    connected: bool = False
    ready: bool = False
    status: str = ""
    num_failures: int = 0
    last_failure: _dt.datetime | None = None
    num_nodes: int = 0
    num_shared_services: int = 0
    num_service_exports: int = 0
    num_identities: int = 0
    num_endpoints: int = 0
    num_endpoint_slices: int = 0
    config: RemoteClusterConfigStatus | None = None
    synced: RemoteClusterSyncedStatus | None = field(default=None)


def format_datetime(value: _dt.datetime | None) -> str:
    """Go ``strfmt.DateTime`` (RFC 3339 with milliseconds), in UTC."""
    if value is None:
        return ZERO_TIME
    utc = value.astimezone(_dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> _dt.datetime | None:
    if not text or text.startswith("0001-01-01"):
        return None
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _omitempty(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    return {k: v for k, v in pairs if v not in (None, False, 0, "", {}, [])}


def _pointer(doc: dict[str, Any], key: str, value: bool | None) -> None:
    if value is not None:
        doc[key] = value


def config_to_json(cfg: RemoteClusterConfigStatus) -> dict[str, Any]:
    doc = _omitempty([("cluster-id", cfg.cluster_id),
                      ("endpoint-slices-export-mode", cfg.endpoint_slices_export_mode),
                      ("kvstoremesh", cfg.kvstoremesh), ("required", cfg.required),
                      ("retrieved", cfg.retrieved)])
    _pointer(doc, "service-exports-enabled", cfg.service_exports_enabled)
    if cfg.sync_canaries:
        doc["sync-canaries"] = True
    return doc


def synced_to_json(synced: RemoteClusterSyncedStatus) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    _pointer(doc, "endpoint-slices", synced.endpoint_slices)
    doc.update(_omitempty([("endpoints", synced.endpoints), ("identities", synced.identities),
                           ("nodes", synced.nodes)]))
    _pointer(doc, "service-exports", synced.service_exports)
    if synced.services:
        doc["services"] = True
    return doc


def status_to_json(st: RemoteClusterStatus) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if st.config is not None:
        doc["config"] = config_to_json(st.config)
    if st.connected:
        doc["connected"] = True
    doc["last-failure"] = format_datetime(st.last_failure)
    doc.update(_omitempty([
        ("name", st.name), ("num-endpoint-slices", st.num_endpoint_slices),
        ("num-endpoints", st.num_endpoints), ("num-failures", st.num_failures),
        ("num-identities", st.num_identities), ("num-nodes", st.num_nodes),
        ("num-service-exports", st.num_service_exports),
        ("num-shared-services", st.num_shared_services), ("ready", st.ready), ("status", st.status),
    ]))
    if st.synced is not None:
        doc["synced"] = synced_to_json(st.synced)
    return doc


def _opt_bool(doc: Mapping[str, Any], key: str) -> bool | None:
    value = doc.get(key)
    return None if value is None else bool(value)


def status_from_json(doc: Mapping[str, Any]) -> RemoteClusterStatus:
    """Inverse of ``status_to_json`` (tolerates missing fields, as Go's decoder does)."""
    config = None
    if isinstance(doc.get("config"), Mapping):
        c = doc["config"]
        config = RemoteClusterConfigStatus(
            required=bool(c.get("required", False)), retrieved=bool(c.get("retrieved", False)),
            cluster_id=int(c.get("cluster-id", 0)), kvstoremesh=bool(c.get("kvstoremesh", False)),
            sync_canaries=bool(c.get("sync-canaries", False)),
            service_exports_enabled=_opt_bool(c, "service-exports-enabled"),
            endpoint_slices_export_mode=str(c.get("endpoint-slices-export-mode", "")))
    synced = None
    if isinstance(doc.get("synced"), Mapping):
        s = doc["synced"]
        synced = RemoteClusterSyncedStatus(
            nodes=bool(s.get("nodes", False)), services=bool(s.get("services", False)),
            identities=bool(s.get("identities", False)), endpoints=bool(s.get("endpoints", False)),
            service_exports=_opt_bool(s, "service-exports"), endpoint_slices=_opt_bool(s, "endpoint-slices"))
    return RemoteClusterStatus(
        name=str(doc.get("name", "")), connected=bool(doc.get("connected", False)),
        ready=bool(doc.get("ready", False)), status=str(doc.get("status", "")),
        num_failures=int(doc.get("num-failures", 0)),
        last_failure=parse_datetime(str(doc.get("last-failure", ""))),
        num_nodes=int(doc.get("num-nodes", 0)), num_shared_services=int(doc.get("num-shared-services", 0)),
        num_service_exports=int(doc.get("num-service-exports", 0)),
        num_identities=int(doc.get("num-identities", 0)), num_endpoints=int(doc.get("num-endpoints", 0)),
        num_endpoint_slices=int(doc.get("num-endpoint-slices", 0)), config=config, synced=synced)


def go_duration(seconds: int) -> str:
    """Go ``time.Duration.String()`` of a whole number of seconds (``1h2m3s``, ``5s``, ``0s``)."""
    seconds = max(0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _since(value: _dt.datetime | None, now: _dt.datetime) -> str:
    if value is None:
        return "never"
    return go_duration(int((now - value).total_seconds())) + " ago"


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def format_status(clusters: Sequence[RemoteClusterStatus], *, verbose: bool = False,
                  now: _dt.datetime | None = None) -> str:
    """The text ``kvstoremesh-dbg status`` prints (upstream's brief/verbose layout)."""
    now = now or _dt.datetime.now(_dt.UTC)
    ready = sum(1 for c in clusters if c.ready)
    lines = [f"KVStoreMesh:\t{ready}/{len(clusters)} clusters ready"]
    for c in clusters:
        lines.append(
            f"   {c.name}: {'ready' if c.ready else 'not-ready'}, {c.num_nodes} nodes, {c.num_endpoints} "
            f"endpoints, {c.num_identities} identities, {c.num_shared_services} services, "
            f"{c.num_failures} failures (last: {_since(c.last_failure, now)})")
        if c.ready and not verbose:
            continue
        lines.append(f"   └  {c.status}")
        if c.config is None:
            remote = "expected=unknown, retrieved=unknown"
        else:
            remote = f"expected={_go_bool(c.config.required)}, retrieved={_go_bool(c.config.retrieved)}"
            if c.config.retrieved:
                remote += (f", cluster-id={c.config.cluster_id}, kvstoremesh={_go_bool(c.config.kvstoremesh)}"
                           f", sync-canaries={_go_bool(c.config.sync_canaries)}")
        lines.append(f"   └  remote configuration: {remote}")
        if c.synced is not None:
            s = c.synced
            lines.append(f"   └  synchronization status: nodes={_go_bool(s.nodes)}, "
                         f"endpoints={_go_bool(s.endpoints)}, identities={_go_bool(s.identities)}, "
                         f"services={_go_bool(s.services)}")
    return "\n".join(lines) + "\n"
