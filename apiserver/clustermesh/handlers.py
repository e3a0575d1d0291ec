"""Per-resource export handlers: CiliumNode, CiliumIdentity, CiliumEndpoint(Slice).

Each turns reflector events into writes on its own sync store, via the pure converters. Services
and service exports, which join two resources, live in ``services.py``.
"""

from __future__ import annotations

from apiserver.clusterinfo import ClusterInfo
from apiserver.clustermesh._handler import ExportHandler
from apiserver.clustermesh.namespaces import NamespaceGate
from apiserver.convert import (
    IPOwnership,
    cilium_endpoint_ip_entries,
    cilium_endpoint_slice_ip_entries,
    convert_cilium_identity,
    convert_cilium_node,
    identity_namespace,
)
from apiserver.kube import KubeObject
from apiserver.kvstore.syncstore import SyncStore
from apiserver.metrics import Metrics


class SyncedHandler(ExportHandler):
    """A handler writing to exactly one sync store: the reflector's sync marks the store synced."""

    def __init__(self, store: SyncStore, metrics: Metrics | None) -> None:
        super().__init__(metrics)
        self.store = store

    def on_synced(self) -> None:
        self.store.mark_synced()


class NodeHandler(SyncedHandler):
    resource = "ciliumnodes"

    def __init__(self, store: SyncStore, cluster: ClusterInfo, metrics: Metrics | None = None) -> None:
        super().__init__(store, metrics)
        self._cluster = cluster

    def upsert(self, obj: KubeObject) -> None:
        key, value = convert_cilium_node(obj, self._cluster)
        self.store.upsert(key, value)

    def delete(self, obj: KubeObject) -> None:
        self.store.delete(f"{self._cluster.name}/{obj['metadata']['name']}")


class IdentityHandler(SyncedHandler):
    """Identities are cluster-scoped objects, but belong to the namespace named by their labels."""

    resource = "ciliumidentities"

    def __init__(self, store: SyncStore, namespaces: NamespaceGate, metrics: Metrics | None = None) -> None:
        super().__init__(store, metrics)
        self._namespaces = namespaces

    def upsert(self, obj: KubeObject) -> None:
        converted = convert_cilium_identity(obj)
        # Skipped like a malformed object (logged and counted); what it exported before stays.
        if converted is None:
            self.malformed(obj, "no security-labels")
            return
        namespace = identity_namespace(obj)
        if namespace is None:
            self.malformed(obj, "no namespace label: security-labels without k8s:io.kubernetes.pod.namespace")
            return
        key, value = converted
        if self._namespaces.is_global(namespace):
            self.store.upsert(key, value)
        else:
            self.store.delete(key)

    def delete(self, obj: KubeObject) -> None:
        self.store.delete(obj["metadata"]["name"])


def identity_namespace_index(obj: KubeObject) -> tuple[str, ...]:
    try:
        namespace = identity_namespace(obj)
    except ValueError:  # ConversionError: malformed labels are reported when the object is handled
        return ()
    return (namespace,) if namespace else ()


def endpoint_slice_namespace_index(obj: KubeObject) -> tuple[str, ...]:
    namespace = obj.get("namespace")
    return (namespace,) if isinstance(namespace, str) and namespace else ()


class EndpointHandler(SyncedHandler):
    """IP -> identity entries from CiliumEndpoints (or CiliumEndpointSlices).

    Several objects may claim one IP: ``IPOwnership`` keeps the first owner's entry and hands the
    key over when that owner lets go, so a key is deleted only when nobody claims it.
    """

    def __init__(self, store: SyncStore, namespaces: NamespaceGate, *, slices: bool = False,
                 metrics: Metrics | None = None) -> None:
        super().__init__(store, metrics)
        self._namespaces = namespaces
        self._slices = slices
        self.resource = "ciliumendpointslices" if slices else "ciliumendpoints"
        self._ownership = IPOwnership()

    def _owner_and_namespace(self, obj: KubeObject) -> tuple[str, str]:
        meta = obj["metadata"]
        if self._slices:
            return meta["name"], str(obj.get("namespace") or "")
        namespace = meta.get("namespace") or ""
        return f"{namespace}/{meta['name']}", namespace

    def upsert(self, obj: KubeObject) -> None:
        owner, namespace = self._owner_and_namespace(obj)
        entries: dict[str, bytes] = {}
        if self._namespaces.is_global(namespace):
            skipped: list[str] = []
            entries = (cilium_endpoint_slice_ip_entries(obj, skipped) if self._slices
                       else cilium_endpoint_ip_entries(obj, skipped))
            for reason in skipped:  # the valid addresses are still exported
                self.malformed(obj, reason)
        self._write(*self._ownership.update(owner, entries))

    def delete(self, obj: KubeObject) -> None:
        owner, _ = self._owner_and_namespace(obj)
        self._write(*self._ownership.remove(owner))

    def _write(self, upserts: dict[str, bytes], deletes: list[str]) -> None:
        for key in deletes:
            self.store.delete(key)
        self.store.upsert_many(upserts)
