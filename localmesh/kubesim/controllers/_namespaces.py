"""What every namespace of a real cluster holds without anyone applying it: the ``default`` ServiceAccount
(kube-controller-manager's serviceaccount controller) and, when the API server has a CA, the
``kube-root-ca.crt`` ConfigMap with it (the root-ca-cert-publisher), which in-cluster clients mount to
verify the API server. Both are put back when deleted; a changed ConfigMap is restored.
"""

from __future__ import annotations

from collections.abc import Iterable

from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import DELETED, Key
from localmesh.kubesim.controllers._base import Change, Cluster, Controller

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


class NamespaceBootstrap(Controller):
    """Keys are ("", namespace)."""

    name = "namespace-bootstrap"
    follows = frozenset({("", "Namespace"), ("", "ConfigMap"), ("", "ServiceAccount")})

    def __init__(self, cluster: Cluster, root_ca: bytes | None) -> None:
        super().__init__(cluster)
        self.root_ca = root_ca.decode() if root_ca else None
        self._namespaces = cluster.type("v1", "Namespace")
        self._configmaps = cluster.type("v1", "ConfigMap")
        registry = cluster.api.registry
        self._accounts = registry.by_kind("v1", "ServiceAccount")

    def initial_keys(self) -> Iterable[Key]:
        return [("", str(ns["metadata"]["name"])) for ns in self.cluster.list(self._namespaces)]

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        if rt.kind == "Namespace":
            return () if change.type == DELETED else (("", change.key[1]),)
        if (rt.kind, change.key[1]) in (("ConfigMap", ROOT_CA_CONFIGMAP), ("ServiceAccount", "default")):
            return (("", change.key[0]),)
        return ()

    def reconcile(self, key: Key) -> float | None:
        namespace = key[1]
        ns = self.cluster.get(self._namespaces, None, namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return None
        if self._accounts is not None and self.cluster.get(self._accounts, namespace, "default") is None:
            self.cluster.create(self._accounts, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                 "metadata": {"name": "default", "namespace": namespace}})
        if self.root_ca is None:
            return None
        data = {"ca.crt": self.root_ca}
        current = self.cluster.get(self._configmaps, namespace, ROOT_CA_CONFIGMAP)
        if current is None:
            self.cluster.create(self._configmaps, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                             "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used "
                                             "to verify the kube-apiserver when using internal endpoints such "
                                             "as the internal service IP or kubernetes.default.svc. No other "
                                             "usage is guaranteed across distributions of Kubernetes "
                                             "clusters."}},
                "data": data})
        elif current.get("data") != data:
            current["data"] = data
            self.cluster.update(self._configmaps, current)
        return None
