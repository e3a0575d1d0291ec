"""The kubelet's writes to the Kubernetes API (pod status, pod finalization, Node, Events) through a
kubernetes-asyncio ``ApiClient``: the client supplies server, TLS and credentials, bodies stay raw JSON."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from typing import Any

import orjson

from apiserver._logging import get_logger
from apiserver.kube import KubeAPIError

log = get_logger(__name__)

Obj = dict[str, Any]
_AUTH = ["BearerToken"]
MERGE_PATCH = "application/merge-patch+json"


class KubeletAPI:
    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    async def request(self, method: str, path: str, body: Obj | None = None, *,
                      content_type: str = "application/json") -> Obj:
        resp = await self.api_client.call_api(
            path, method, header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body, auth_settings=_AUTH, _preload_content=False)
        try:
            raw = await resp.read()
            if not 200 <= resp.status < 300:
                raise KubeAPIError.from_body(resp.status, raw)
            result: Obj = orjson.loads(raw) if raw else {}
            return result
        finally:
            resp.release()

    async def patch_status(self, namespace: str, name: str, uid: str, status: Obj) -> None:
        """Merge-patch the pod's status; the uid makes it a 409 Conflict for another pod of that name."""
        await self.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                           {"metadata": {"uid": uid}, "status": status}, content_type=MERGE_PATCH)

    async def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Finalize a graceful deletion: the kubelet's delete with grace period 0 removes the object."""
        try:
            await self.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}",
                               {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                "preconditions": {"uid": uid}})
        except KubeAPIError as exc:
            if exc.code not in (404, 409):
                raise

    async def ensure_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        try:
            await self.request("GET", f"/api/v1/nodes/{name}")
        except KubeAPIError as exc:
            if exc.code != 404:
                raise
            await self.request("POST", "/api/v1/nodes", node)


class EventRecorder:
    """Events about pods, as kubelet reports them (``source.component: kubelet``): a repeated one (same
    pod, type, reason and message) bumps the first one's ``count`` and ``lastTimestamp``, as client-go's
    event correlator does. A failure to write one is logged, never raised."""

    def __init__(self, api: KubeletAPI, node_name: str) -> None:
        self._api = api
        self._node = node_name
        self._seq = itertools.count()
        self._prefix = os.urandom(4).hex()
        self._seen: dict[tuple[str, str, str, str], tuple[str, int]] = {}  # -> (event name, count)

    async def pod_event(self, pod: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        meta = pod["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = meta.get("namespace") or "default"
        key = (str(meta.get("uid", "")), "Warning" if warning else "Normal", reason, message)
        seen = self._seen.get(key)
        if seen is not None:
            name, count = seen
            self._seen[key] = (name, count + 1)
            try:
                await self._api.request("PATCH", f"/api/v1/namespaces/{namespace}/events/{name}",
                                        {"count": count + 1, "lastTimestamp": now}, content_type=MERGE_PATCH)
                return
            except Exception as exc:
                log.warning("Event not updated", reason=reason, pod=meta["name"], error=str(exc))
                return
        name = f"{meta['name']}.{self._prefix}{next(self._seq):06x}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": namespace, "name": meta["name"],
                               "uid": meta.get("uid", "")},
            "reason": reason, "message": message, "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": self._node}, "reportingComponent": "kubelet",
            "reportingInstance": self._node, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            await self._api.request("POST", f"/api/v1/namespaces/{namespace}/events", event)
            self._seen[key] = (name, 1)
        except Exception as exc:
            log.warning("Event not written", reason=reason, pod=meta["name"], error=str(exc))
