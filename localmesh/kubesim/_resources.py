"""The table of resource types the emulator serves, and lookups into it.

Adding a resource type is one ``ResourceType(...)`` row in ``BUILTIN_RESOURCES``. Everything else
(routing, discovery documents, CRD objects, list kinds, Status messages) is derived from the row.
This module is pure data: it must never touch the store or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Column:
    """One extra ``kubectl get`` column (Table API), read from a dotted path of the object."""

    name: str
    path: str
    type: str = "string"
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    # Served from a CustomResourceDefinition (pre-seeded for the table's custom rows).
    custom: bool = False
    verbs: tuple[str, ...] = field(default=ALL_VERBS)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        """``ciliumnodes.cilium.io`` / ``services``: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``CiliumNode.cilium.io`` / ``Service``: how 422 Invalid messages name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def unconditional_update(self) -> bool:
        """Whether a PUT without metadata.resourceVersion is allowed: built-ins yes, custom resources no."""
        return not self.custom

    @property
    def returns_deleted_object(self) -> bool:
        """A DELETE answers with the object (else with a Success Status), per kube-apiserver's registries."""
        return self.custom or (self.group == "" and self.kind in ("Service", "Pod", "Namespace"))


def _core(plural: str, kind: str, namespaced: bool, *short: str, categories: tuple[str, ...] = (),
          columns: tuple[Column, ...] = ()) -> ResourceType:
    return ResourceType("", "v1", plural, kind.lower(), kind, namespaced, short, categories, columns)


def _crd(group: str, version: str, plural: str, kind: str, namespaced: bool, *short: str,
         categories: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(group, version, plural, kind.lower(), kind, namespaced, short, categories,
                        custom=True)


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, "ns", columns=(Column("Status", "status.phase"),)),
    _core("services", "Service", True, "svc", categories=("all",),
          columns=(Column("Type", "spec.type"), Column("Cluster-IP", "spec.clusterIP"))),
    _core("endpoints", "Endpoints", True, "ep"),
    _core("secrets", "Secret", True, columns=(Column("Type", "type"),)),
    _core("configmaps", "ConfigMap", True, "cm"),
    _core("nodes", "Node", False, "no"),
    _core("pods", "Pod", True, "po", categories=("all",), columns=(Column("Status", "status.phase"),)),
    _core("events", "Event", True, "ev"),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), ("all",)),
    ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ("ds",), ("all",)),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True,
                 columns=(Column("AddressType", "addressType"),)),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
                 "CustomResourceDefinition", False, ("crd", "crds")),
    _crd("cilium.io", "v2", "ciliumnodes", "CiliumNode", False, "cn", "ciliumn", categories=("cilium",)),
    _crd("cilium.io", "v2", "ciliumidentities", "CiliumIdentity", False, "ciliumid",
         categories=("cilium",)),
    _crd("cilium.io", "v2", "ciliumendpoints", "CiliumEndpoint", True, "cep", "ciliumep",
         categories=("cilium",)),
    _crd("cilium.io", "v2alpha1", "ciliumendpointslices", "CiliumEndpointSlice", False, "ces",
         categories=("cilium",)),
    _crd("multicluster.x-k8s.io", "v1alpha1", "serviceexports", "ServiceExport", True, "svcex"),
    # The rest of what the mesh API pod's manifests (deploy/base) hold.
    _core("serviceaccounts", "ServiceAccount", True, "sa"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
                 "ClusterRoleBinding", False),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", True,
                 ("netpol",)),
    ResourceType("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", True,
                 ("pdb",)),
)


class Registry:
    """Lookups over a set of resource types: by URL (group, version, plural) and by apiVersion/kind."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_RESOURCES) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._order: list[ResourceType] = []
        for rt in types:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        if (rt.group, rt.version, rt.plural) not in self._by_path:
            self._order.append(rt)
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.api_version, rt.kind)] = rt

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._order)

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def by_plural(self, plural: str) -> list[ResourceType]:
        return [rt for rt in self._order if rt.plural == plural]

    def group_versions(self) -> dict[str, list[str]]:
        """Group name -> served versions, in table order (the first one is preferred)."""
        out: dict[str, list[str]] = {}
        for rt in self._order:
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._order if rt.group == group and rt.version == version]
