"""Map a request path onto (resource type, namespace, name, subresource) -- pure.

Accepted shapes, under ``/api/v1`` or ``/apis/<group>/<version>``:
``<plural>``, ``<plural>/<name>[/<sub>]``, ``namespaces/<ns>/<plural>[/<name>[/<sub>]]``, and the
deprecated ``watch/...`` prefix of any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from localmesh.kubesim._resources import Registry, ResourceType

SUBRESOURCES = ("status", "scale", "log", "exec")
NAMESPACE_SUBRESOURCES = ("status",)
SCALABLE = (("apps", "Deployment"),)
# Subresources that only pods have, served by the node that runs the pod (``_podio``).
POD_SUBRESOURCES = ("log", "exec")


@dataclass(frozen=True, slots=True)
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None = None
    watch_path: bool = False


def split_group_version(parts: list[str]) -> tuple[str, str, list[str]] | None:
    """``["api","v1",...]`` / ``["apis",g,v,...]`` -> (group, version, rest)."""
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def resolve(registry: Registry, path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    gv = split_group_version(parts)
    if gv is None:
        return None
    group, version, rest = gv
    watch_path = bool(rest) and rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    if not rest:
        return None
    namespace: str | None = None
    # namespaces/<ns>/<plural>... is a namespaced resource, unless <plural> is a namespace subresource.
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    rt = registry.by_path(group, version, rest[0])
    if rt is None or len(rest) > 3:
        return None
    if namespace is not None and not rt.namespaced:
        return None
    name = rest[1] if len(rest) >= 2 else None
    if name is not None and rt.namespaced and namespace is None:
        return None
    sub = rest[2] if len(rest) == 3 else None
    if sub is not None and (sub not in SUBRESOURCES
                            or (sub in POD_SUBRESOURCES and (rt.group, rt.kind) != ("", "Pod"))
                            or (sub == "scale" and (rt.group, rt.kind) not in SCALABLE)):
        return None
    return Target(rt, namespace, name, sub, watch_path)
