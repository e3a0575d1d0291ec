"""Events about objects (core/v1 ``Event``), as client-go's event recorder writes them: one Event per
(object, type, reason, message), its ``count`` and ``lastTimestamp`` bumped when it repeats."""

from __future__ import annotations

import secrets
from typing import Any

from localmesh.kubesim.controllers._base import Cluster

Obj = dict[str, Any]


class EventRecorder:
    def __init__(self, cluster: Cluster, component: str) -> None:
        self.cluster = cluster
        self.component = component
        self._rt = cluster.type("v1", "Event")
        self._seen: dict[tuple[str, str, str, str], str] = {}

    def normal(self, about: Obj, reason: str, message: str) -> None:
        self._record(about, "Normal", reason, message)

    def warning(self, about: Obj, reason: str, message: str) -> None:
        self._record(about, "Warning", reason, message)

    def _record(self, about: Obj, etype: str, reason: str, message: str) -> None:
        meta = about["metadata"]
        namespace = meta.get("namespace") or "default"
        now = self.cluster.now()
        key = (str(meta.get("uid", "")), etype, reason, message)
        name = self._seen.get(key)
        existing = self.cluster.get(self._rt, namespace, name) if name else None
        if existing is not None:
            existing["count"] = int(existing.get("count", 1)) + 1
            existing["lastTimestamp"] = now
            self.cluster.update(self._rt, existing)
            return
        # client-go names an Event "<object>.<unix nanoseconds in hex>"; random hex keeps it unique here.
        name = f"{meta['name']}.{secrets.token_hex(8)}"
        involved: Obj = {"kind": about.get("kind"), "namespace": meta.get("namespace"), "name": meta["name"],
                         "uid": meta.get("uid"), "apiVersion": about.get("apiVersion"),
                         "resourceVersion": meta.get("resourceVersion")}
        self.cluster.create(self._rt, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason, "message": message, "type": etype,
            "source": {"component": self.component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "eventTime": None,
            "reportingComponent": self.component, "reportingInstance": "",
        })
        self._seen[key] = name
