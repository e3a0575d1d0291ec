"""Global services (Service + EndpointSlices) and MCS-API service exports (Service + ServiceExport).

Both values join two resources, so each exporter takes events from two reflectors and recomputes
the affected service keys once per batch. Each joined resource reports its own sync; the store is
marked synced when both have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from apiserver.clusterinfo import ClusterInfo
from apiserver.clustermesh._handler import ExportHandler
from apiserver.clustermesh.namespaces import NamespaceGate
from apiserver.convert import ConversionError, convert_service, convert_service_export
from apiserver.kube import Cache, KubeObject, ObjectEvent, index_by_service, namespaced_name
from apiserver.kvstore.syncstore import SyncStore
from apiserver.metrics import Metrics

SERVICE_INDEX = "service"
ServiceKey = tuple[str, str]


def _service_of(obj: KubeObject) -> ServiceKey:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def _owners(events: list[ObjectEvent]) -> set[ServiceKey]:
    """Services owning the slices of a batch (before and after the change)."""
    owners: set[ServiceKey] = set()
    for event in events:
        for obj in (event.obj, event.old):
            if obj is not None:
                for owner in index_by_service(obj):
                    namespace, _, name = owner.partition("/")
                    owners.add((namespace, name))
    return owners


class Feed:
    """One joined resource's view as a reflector handler (``on_events``/``on_synced``)."""

    def __init__(self, affected: Callable[[list[ObjectEvent]], set[ServiceKey]], exporter: JoinedExporter) -> None:
        self._affected = affected
        self._exporter = exporter
        self.synced = False

    def on_events(self, events: list[ObjectEvent]) -> None:
        self._exporter.recompute_all(self._affected(events))

    def on_synced(self) -> None:
        self.synced = True
        self._exporter.feed_synced()


class JoinedExporter(ExportHandler):
    """A store whose keys are ``<cluster>/<namespace>/<service>``, fed by two caches."""

    def __init__(self, store: SyncStore, cluster: ClusterInfo, namespaces: NamespaceGate,
                 services: Cache, other: Cache, metrics: Metrics | None) -> None:
        super().__init__(metrics)
        self.store = store
        self._cluster = cluster
        self._namespaces = namespaces
        self._services = services
        self._other = other
        self.service_feed = Feed(lambda events: {_service_of(e.obj) for e in events}, self)
        self.other_feed = Feed(self._other_affected, self)

    def _other_affected(self, events: list[ObjectEvent]) -> set[ServiceKey]:
        return {_service_of(e.obj) for e in events}

    def feed_synced(self) -> None:
        if self.service_feed.synced and self.other_feed.synced:
            self.store.mark_synced()

    def on_synced(self) -> None:  # the feeds report sync, not this object
        pass

    def resync_namespace(self, namespace: str) -> None:
        keys = {(namespace, obj["metadata"]["name"]) for obj in self._services.list_namespace(namespace)}
        keys.update((namespace, obj["metadata"]["name"]) for obj in self._other.list_namespace(namespace))
        self.recompute_all(keys)

    def recompute_all(self, services: Iterable[ServiceKey]) -> None:
        for namespace, name in services:
            self.recompute(namespace, name)

    def recompute(self, namespace: str, name: str) -> None:
        key = f"{self._cluster.name}/{namespace}/{name}"
        service = self._services.get(namespace, name)
        if service is None or not self._namespaces.is_global(namespace):
            self.store.delete(key)
            return
        try:
            value = self.value(service)
        except ConversionError as exc:
            self.malformed(service, exc.reason)
            return
        if value is None:
            self.store.delete(key)
        else:
            self.store.upsert(key, value)

    def value(self, service: KubeObject) -> bytes | None:
        raise NotImplementedError


class ServiceExporter(JoinedExporter):
    """``cilium/state/services/v1/<C>/<ns>/<name>``: global+shared Services with their backends."""

    resource = "services"

    def __init__(self, store: SyncStore, cluster: ClusterInfo, namespaces: NamespaceGate,
                 services: Cache, slices: Cache, metrics: Metrics | None = None) -> None:
        slices.add_index(SERVICE_INDEX, index_by_service)
        super().__init__(store, cluster, namespaces, services, slices, metrics)

    def _other_affected(self, events: list[ObjectEvent]) -> set[ServiceKey]:
        return _owners(events)

    def resync_namespace(self, namespace: str) -> None:
        # Slices name their service in a label; services alone decide what is exported.
        self.recompute_all((namespace, obj["metadata"]["name"])
                           for obj in self._services.list_namespace(namespace))

    def value(self, service: KubeObject) -> bytes | None:
        namespace, name = _service_of(service)
        slices = self._other.by_index(SERVICE_INDEX, namespaced_name(namespace, name))
        # A later slice wins on a shared address: a stable order gives a stable value.
        slices.sort(key=lambda s: s["metadata"]["name"])
        skipped: list[tuple[Mapping[str, Any], str]] = []
        value = convert_service(service, slices, self._cluster, skipped)
        for slice_, reason in skipped:  # the service goes on with its other slices
            self.malformed(slice_, reason, resource="endpointslices")
        return value


class ServiceExportExporter(JoinedExporter):
    """``cilium/state/serviceexports/v1/<C>/<ns>/<name>``: Services that have a ServiceExport."""

    resource = "serviceexports"

    def value(self, service: KubeObject) -> bytes | None:
        namespace, name = _service_of(service)
        export = self._other.get(namespace, name)
        if export is None:
            return None
        return convert_service_export(service, export, self._cluster)


class Tee:
    """Hands one reflector's batches to several feeds (Services feed two exporters)."""

    def __init__(self, *feeds: Feed) -> None:
        self._feeds = feeds

    def on_events(self, events: list[ObjectEvent]) -> None:
        for feed in self._feeds:
            feed.on_events(events)

    def on_synced(self) -> None:
        for feed in self._feeds:
            feed.on_synced()
