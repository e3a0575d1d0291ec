"""What every exporting handler shares: turning reflector batches into sync-store writes, and
skipping (with one log line and a metric) objects that cannot be converted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apiserver._logging import get_logger
from apiserver.convert import ConversionError
from apiserver.kube import DELETE, KubeObject, ObjectEvent, object_name
from apiserver.metrics import Metrics

log = get_logger(__name__)


class ExportHandler:
    """Base of the per-resource handlers: ``upsert``/``delete`` per object, errors contained.

    A conversion failure leaves whatever this object exported before untouched: bad input never
    removes or corrupts good data.
    """

    resource: str = ""

    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    def on_events(self, events: list[ObjectEvent]) -> None:
        for event in events:
            try:
                if event.kind is DELETE:
                    self.delete(event.obj)
                else:
                    self.upsert(event.obj)
            except ConversionError as exc:
                self.malformed(event.obj, exc.reason)

    def upsert(self, obj: KubeObject) -> None:
        raise NotImplementedError

    def delete(self, obj: KubeObject) -> None:
        raise NotImplementedError

    def on_synced(self) -> None:
        raise NotImplementedError

    def resync(self, objects: Iterable[KubeObject]) -> None:
        """Re-evaluate objects (their namespace changed global-ness)."""
        for obj in objects:
            try:
                self.upsert(obj)
            except ConversionError as exc:
                self.malformed(obj, exc.reason)

    def malformed(self, obj: Any, reason: str, resource: str = "") -> None:
        name = object_name(obj) if isinstance(obj, dict) else "<not an object>"
        resource = resource or self.resource
        log.warning("Skipping object that cannot be exported", resource=resource, object=name, reason=reason)
        if self._metrics is not None:
            self._metrics.malformed_objects_total.labels(resource, _reason_label(reason)).inc()


def _reason_label(reason: str) -> str:
    """A bounded label value: the reason's first words, not the offending data."""
    head = reason.split(":", 1)[0]
    return head[:48]
