"""A small Kubernetes client for ``clustermeshctl``: one kubeconfig context, JSON objects, server-side
apply with one field manager, and exec through the WebSocket channel protocol.

It rides on kubernetes-asyncio's ``ApiClient`` for the kubeconfig (contexts, TLS, tokens, exec
plugins) and its aiohttp session, so it talks to real clusters and to the emulator alike. Errors come
back as ``KubeAPIError`` with the API server's ``Status`` reason and message.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from apiserver.ctl._errors import CtlError
from apiserver.ctl._exec import PROTOCOLS, ExecResult
from apiserver.ctl._names import FIELD_MANAGER
from apiserver.kube import KubeAPIError
from apiserver.kube._k8s_import import ConfigException, k8s_client, k8s_config

KubeObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Kind:
    prefix: str  # /api/v1 or /apis/<group>/<version>
    plural: str
    namespaced: bool


KINDS: dict[tuple[str, str], Kind] = {
    ("v1", "ConfigMap"): Kind("/api/v1", "configmaps", True),
    ("v1", "Secret"): Kind("/api/v1", "secrets", True),
    ("v1", "Service"): Kind("/api/v1", "services", True),
    ("v1", "ServiceAccount"): Kind("/api/v1", "serviceaccounts", True),
    ("v1", "Pod"): Kind("/api/v1", "pods", True),
    ("v1", "Node"): Kind("/api/v1", "nodes", False),
    ("apps/v1", "Deployment"): Kind("/apis/apps/v1", "deployments", True),
    ("apps/v1", "DaemonSet"): Kind("/apis/apps/v1", "daemonsets", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): Kind("/apis/rbac.authorization.k8s.io/v1",
                                                          "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): Kind("/apis/rbac.authorization.k8s.io/v1",
                                                                 "clusterrolebindings", False),
    ("networking.k8s.io/v1", "NetworkPolicy"): Kind("/apis/networking.k8s.io/v1", "networkpolicies", True),
    ("policy/v1", "PodDisruptionBudget"): Kind("/apis/policy/v1", "poddisruptionbudgets", True),
    ("cilium.io/v2", "CiliumNode"): Kind("/apis/cilium.io/v2", "ciliumnodes", False),
}


def kind_of(api_version: str, kind: str) -> Kind:
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise CtlError(f"unsupported object kind {api_version}/{kind}", "this is a bug") from None


def object_path(api_version: str, kind: str, name: str = "", namespace: str = "") -> str:
    k = kind_of(api_version, kind)
    base = f"{k.prefix}/namespaces/{namespace}/{k.plural}" if k.namespaced else f"{k.prefix}/{k.plural}"
    return f"{base}/{name}" if name else base


def default_kubeconfig(environ: Mapping[str, str] = os.environ) -> str:
    first = (environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return first or str(Path.home() / ".kube" / "config")


class Kube:
    """One cluster (a kubeconfig context). ``await Kube.connect(...)``; ``await kube.close()``."""

    def __init__(self, api_client: Any, context: str) -> None:
        self._api = api_client
        self.context = context

    @classmethod
    async def connect(cls, kubeconfig: str = "", context: str = "") -> Kube:
        path = kubeconfig or default_kubeconfig()
        if not os.path.isfile(path):  # noqa: ASYNC240 -- one stat before anything runs
            raise CtlError(f"kubeconfig {path}: no such file", "pass --kubeconfig PATH or set KUBECONFIG")
        cfg = k8s_client.Configuration()
        try:
            loader = await k8s_config.load_kube_config(config_file=path, context=context or None,
                                                       client_configuration=cfg, persist_config=False)
        except (ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
            raise CtlError(f"kubeconfig {path}: {exc}",
                           "check --context against 'kubectl config get-contexts'") from None
        name = context or str(getattr(loader, "current_context", {}).get("name", "") or "")
        return cls(k8s_client.ApiClient(configuration=cfg), name)

    async def close(self) -> None:
        await self._api.close()

    @property
    def host(self) -> str:
        return str(self._api.configuration.host).rstrip("/")

    async def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", **(extra or {})}
        await self._api.update_params_for_auth(headers, [], ["BearerToken"])
        return headers

    @property
    def _session(self) -> aiohttp.ClientSession:
        session: aiohttp.ClientSession = self._api.rest_client.pool_manager
        return session

    async def request(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                      body: bytes | None = None, content_type: str = "application/json",
                      timeout: float = 30.0) -> Any:
        url = self.host + path + ("?" + urlencode(list(query)) if query else "")
        headers = await self._headers({"Content-Type": content_type} if body is not None else None)
        try:
            async with self._session.request(method, url, data=body, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.read()
                if not 200 <= resp.status < 300:
                    raise KubeAPIError.from_body(resp.status, raw)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise CtlError(f"cannot reach the Kubernetes API of context {self.context!r} at {self.host}: "
                           f"{exc or type(exc).__name__}", "check that the cluster is running") from None
        return orjson.loads(raw) if raw else None

    async def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> KubeObject | None:
        try:
            obj: KubeObject = await self.request("GET", object_path(api_version, kind, name, namespace))
        except KubeAPIError as exc:
            if exc.code == 404:
                return None
            raise
        return obj

    async def list(self, api_version: str, kind: str, namespace: str = "", *,
                   label_selector: str = "") -> list[KubeObject]:
        query = [("labelSelector", label_selector)] if label_selector else []
        doc = await self.request("GET", object_path(api_version, kind, "", namespace), query=query)
        return list((doc or {}).get("items") or [])

    async def apply(self, obj: KubeObject) -> KubeObject:
        """Server-side apply of ``obj`` with our field manager (forcing ownership of its fields)."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))
        result: KubeObject = await self.request(
            "PATCH", path, query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=orjson.dumps(obj), content_type="application/apply-patch+yaml")
        return result

    async def replace(self, obj: KubeObject) -> KubeObject:
        """Create ``obj``, or replace the whole object: keys it no longer has are gone afterwards (the
        peer files of a Secret), whatever the server's apply semantics."""
        meta = obj["metadata"]
        api_version, kind, name, ns = obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", "")
        query = [("fieldManager", FIELD_MANAGER)]
        current = await self.get(api_version, kind, name, ns)
        if current is None:
            created: KubeObject = await self.request("POST", object_path(api_version, kind, "", ns), query=query,
                                                     body=orjson.dumps(obj))
            return created
        if all(current.get(k) == obj.get(k) for k in ("data", "type")) and all(
                (current["metadata"].get(k) or {}) == (meta.get(k) or {}) for k in ("labels", "annotations")):
            return current  # unchanged: no write, no event
        body = {**obj, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}
        replaced: KubeObject = await self.request("PUT", object_path(api_version, kind, name, ns), query=query,
                                                  body=orjson.dumps(body))
        return replaced

    async def merge_patch(self, api_version: str, kind: str, name: str, namespace: str,
                          patch: Mapping[str, Any]) -> KubeObject:
        result: KubeObject = await self.request(
            "PATCH", object_path(api_version, kind, name, namespace), body=orjson.dumps(patch),
            content_type="application/merge-patch+json", query=[("fieldManager", FIELD_MANAGER)])
        return result

    async def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        try:
            await self.request("DELETE", object_path(api_version, kind, name, namespace))
        except KubeAPIError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    async def exec(self, namespace: str, pod: str, container: str, argv: Sequence[str], *,
                   timeout: float = 30.0) -> ExecResult:
        """Run ``argv`` in a container (no stdin, no tty) and collect its output and exit code."""
        query = [("container", container), ("stdout", "true"), ("stderr", "true")]
        query += [("command", arg) for arg in argv]
        url = self.host + f"/api/v1/namespaces/{namespace}/pods/{pod}/exec?" + urlencode(query)
        url = "ws" + url[len("http"):] if url.startswith("http") else url
        headers = await self._headers()
        result = ExecResult()
        try:
            async with asyncio.timeout(timeout):
                async with self._session.ws_connect(url, protocols=PROTOCOLS, headers=headers,
                                                    method="GET") as ws:
                    async for message in ws:
                        if message.type == aiohttp.WSMsgType.BINARY:
                            result.feed(message.data)
                        elif message.type == aiohttp.WSMsgType.TEXT:
                            result.feed(message.data.encode())
                        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                            break
        except aiohttp.WSServerHandshakeError as exc:
            raise KubeAPIError(exc.status, "", f"exec in pod {pod} (container {container}): {exc.message}") from None
        except TimeoutError:
            raise CtlError(f"exec in pod {namespace}/{pod} (container {container}) did not finish within "
                           f"{timeout:g}s", "check the pod with kubectl logs") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CtlError(f"exec in pod {namespace}/{pod}: {exc}", "check that the pod is running") from None
        if result.exit_code is None:
            result.exit_code = 0 if not result.error else 1
        return result
