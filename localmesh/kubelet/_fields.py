"""Downward API field paths (``fieldRef.fieldPath``) as kubelet resolves them for env and volumes (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """A container's env or a volume refers to something that is not there; the message is kubelet's."""


@dataclass(frozen=True, slots=True)
class PodAddresses:
    pod_ip: str
    host_ip: str


def _format_map(values: dict[str, str]) -> str:
    # pkg/fieldpath/fieldpath.go FormatMap: sorted k="v" lines, values quoted as Go's %q does.
    return "".join(f'{k}="{_go_quote(v)}"\n' for k, v in sorted(values.items()))


def _go_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def field_value(pod: Obj, path: str, addrs: PodAddresses, *, volume: bool = False) -> str:
    meta: Obj = pod.get("metadata") or {}
    spec: Obj = pod.get("spec") or {}
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": addrs.pod_ip,
        "status.podIPs": addrs.pod_ip,
        "status.hostIP": addrs.host_ip,
        "status.hostIPs": addrs.host_ip,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations") and volume:
        return _format_map(meta.get(path.split(".")[1]) or {})
    raise ConfigError(f'unsupported fieldPath: "{path}"')
