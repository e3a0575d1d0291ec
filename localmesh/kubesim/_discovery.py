"""Discovery documents (``/version``, ``/api``, ``/apis``, resource lists) and CRD objects (pure).

All derived from the resource table, so kubectl's RESTMapper resolves exactly the types the emulator
serves, by plural, singular, kind and short name.
"""

from __future__ import annotations

from typing import Any

from localmesh.kubesim._resources import Column, Registry, ResourceType

Obj = dict[str, Any]

KUBE_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_SUBRESOURCE_VERBS = ["get", "patch", "update"]


def api_versions(server_address: str) -> Obj:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> Obj:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> Obj:
    groups = [_group(name, versions) for name, versions in registry.group_versions().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, name: str) -> Obj | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource_entry(rt: ResourceType) -> Obj:
    entry: Obj = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                  "kind": rt.kind, "verbs": list(rt.verbs)}
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def resource_list(registry: Registry, group: str, version: str) -> Obj | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[Obj] = []
    for rt in types:
        resources.append(_resource_entry(rt))
        resources.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                          "kind": rt.kind, "verbs": _SUBRESOURCE_VERBS})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def crd_for(rt: ResourceType) -> Obj:
    """A CustomResourceDefinition as ``kubectl get crd`` shows for a served custom resource type."""
    names: Obj = {"plural": rt.plural, "singular": rt.singular, "kind": rt.kind, "listKind": rt.list_kind}
    if rt.short_names:
        names["shortNames"] = list(rt.short_names)
    if rt.categories:
        names["categories"] = list(rt.categories)
    version: Obj = {
        "name": rt.version, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        "subresources": {"status": {}},
    }
    if rt.columns:
        version["additionalPrinterColumns"] = [
            {"name": c.name, "type": c.type, "jsonPath": "." + c.path, "priority": c.priority}
            for c in rt.columns]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": rt.group_resource},
        "spec": {"group": rt.group, "names": names, "scope": "Namespaced" if rt.namespaced else "Cluster",
                 "versions": [version]},
        "status": {
            "acceptedNames": names,
            "storedVersions": [rt.version],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted",
                 "lastTransitionTime": "2025-01-01T00:00:00Z"},
            ],
        },
    }


def resource_types_from_crd(crd: Obj) -> list[ResourceType]:
    """The resource types a CRD object makes servable (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (isinstance(group, str) and isinstance(plural, str) and isinstance(kind, str)):
        return []
    out: list[ResourceType] = []
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or not version.get("served", True) or not version.get("name"):
            continue
        columns = tuple(
            Column(str(c.get("name")), str(c.get("jsonPath", "")).lstrip("."), str(c.get("type", "string")),
                   int(c.get("priority", 0)))
            for c in version.get("additionalPrinterColumns") or [] if isinstance(c, dict)
            and str(c.get("jsonPath", "")) != ".metadata.creationTimestamp")
        out.append(ResourceType(
            group, str(version["name"]), plural, str(names.get("singular") or kind.lower()), kind,
            spec.get("scope", "Namespaced") == "Namespaced", tuple(names.get("shortNames") or ()),
            tuple(names.get("categories") or ()), columns, custom=True))
    return out
