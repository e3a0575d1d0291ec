"""``KubeSim``: the emulator as one object -- lifecycle (start/stop), kubeconfig, and direct,
synchronous access to its objects for tests (``apply``/``get``/``list``/``delete``).

Direct writes go through the same verb semantics as HTTP writes and notify watchers at once.
"""

from __future__ import annotations

import asyncio
import collections
import os
import ssl
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import yaml
from aiohttp import web

from apiserver._logging import get_logger
from localmesh.kubesim import _discovery as discovery
from localmesh.kubesim._api import Api
from localmesh.kubesim._faults import Faults
from localmesh.kubesim._http import HttpFrontend
from localmesh.kubesim._kubeconfig import kubeconfig
from localmesh.kubesim._node import NodeRuntime
from localmesh.kubesim._podio import PodIO
from localmesh.kubesim._resources import BUILTIN_RESOURCES, Registry, ResourceType
from localmesh.kubesim._selectors import parse_field_selector, parse_label_selector
from localmesh.kubesim._store import Store
from localmesh.kubesim._tls import ServerTLS

log = get_logger(__name__)

Obj = dict[str, Any]
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class KubeSim:
    """An in-process Kubernetes API server emulator, served over real HTTP(S).

    ``history`` is the number of events retained per resource type (like kube-apiserver's watch
    cache): a watch or a paged list at an older resourceVersion gets 410 Expired.
    ``bookmark_interval`` is how often watches that allow bookmarks get one (kube-apiserver: about a
    minute; shorter here so tests see them). Not thread-safe: use it from its event loop's thread.
    """

    def __init__(self, history: int = 10000, *, bookmark_interval: float = 1.0,
                 resources: Iterable[ResourceType] = BUILTIN_RESOURCES, seed_defaults: bool = True) -> None:
        self.registry = Registry(resources)
        self.store = Store(history)
        self.api = Api(self.store, self.registry)
        self.faults = Faults(self._close_watches, self.store.compact)
        # The node that runs the pods (a local kubelet), for pods/log and pods/exec; None: unreachable.
        self.node_runtime: NodeRuntime | None = None
        self._http = HttpFrontend(self.api, self.faults, bookmark_interval=bookmark_interval,
                                  server_address=lambda: f"{self._host}:{self._port}",
                                  pod_io=PodIO(self.api, lambda: self.node_runtime))
        self._runner: web.AppRunner | None = None
        self._host = ""
        self._port = 0
        self._scheme = "http"
        self._ca_pem: bytes | None = None
        if seed_defaults:
            self._seed_defaults()

    def _seed_defaults(self) -> None:
        ns = self._type("v1", "Namespace")
        for name in DEFAULT_NAMESPACES:
            self.api.put(ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        crd = self.registry.by_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        if crd is None:
            return
        for rt in list(self.registry):
            if rt.custom:
                self.api.put(crd, discovery.crd_for(rt))

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    tls: ServerTLS | ssl.SSLContext | None = None) -> None:
        if self._runner is not None:
            raise RuntimeError("KubeSim already started")
        ssl_context: ssl.SSLContext | None = None
        if isinstance(tls, ServerTLS):
            ssl_context, self._ca_pem = tls.ssl_context(), tls.ca_pem()
        elif tls is not None:
            ssl_context = tls
        runner = web.AppRunner(self._http.application(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._scheme = "https" if ssl_context else "http"
        self._host = host
        self._port = runner.addresses[0][1]
        log.info("Kubernetes API emulator listening", url=self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.faults.resume()
        self._close_watches()
        await runner.cleanup()
        log.info("Kubernetes API emulator stopped", url=f"{self._scheme}://{self._host}:{self._port}")

    async def __aenter__(self) -> KubeSim:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("KubeSim is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self._scheme}://{host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def kubeconfig(self, namespace: str = "default") -> Obj:
        return kubeconfig(self.url, ca_pem=self._ca_pem, namespace=namespace)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: whoever polls for the file never reads half of it.
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        partial.chmod(0o600)
        os.replace(partial, target)
        return target

    def _close_watches(self) -> int:
        watchers = self.store.watchers()
        for w in watchers:
            w.close()
        return len(watchers)

    # -- introspection for tests -----------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self.store.resource_version

    @property
    def request_counts(self) -> collections.Counter[tuple[str, str]]:
        """(verb, plural) -> requests seen, e.g. ``sim.request_counts["list", "ciliumnodes"]``."""
        return self._http.request_counts

    def watch_count(self, api_version: str, kind: str) -> int:
        """Open watch streams on one resource type (to wait until a consumer is watching)."""
        return len(self.store.bucket(self._type(api_version, kind)).watchers)

    async def wait_for_watch(self, api_version: str, kind: str, count: int = 1, within: float = 10.0) -> None:
        """Wait until at least ``count`` watches are open on a type; TimeoutError after ``within`` s."""
        async with asyncio.timeout(within):
            await self.store.wait_for_watchers(self._type(api_version, kind), count)

    # -- direct object access --------------------------------------------------------------------------

    def _type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"kubesim does not serve {kind} in {api_version}")
        return rt

    def _ns(self, rt: ResourceType, namespace: str | None) -> str | None:
        return (namespace or "default") if rt.namespaced else None

    def apply(self, obj: Obj) -> Obj:
        """Create or replace by apiVersion/kind/namespace/name; returns the stored object (a copy)."""
        rt = self._type(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        stored = self.api.put(rt, orjson.loads(orjson.dumps(obj)))
        result: Obj = orjson.loads(stored.raw)
        return result

    def load(self, objs: Iterable[Obj]) -> int:
        """Bulk ``apply`` without returning copies (seeding large data sets); returns the count."""
        count = 0
        for obj in objs:
            rt = self._type(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
            self.api.put(rt, orjson.loads(orjson.dumps(obj)))
            count += 1
        return count

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        rt = self._type(api_version, kind)
        stored = self.store.get(rt, (self._ns(rt, namespace) or "", name))
        return orjson.loads(stored.raw) if stored is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[Obj]:
        """Current objects of one type (all namespaces unless ``namespace``), in key order."""
        rt = self._type(api_version, kind)
        result = self.api.list(rt, namespace if rt.namespaced else None,
                               labels=parse_label_selector(label_selector),
                               fields=parse_field_selector(field_selector, (rt.group, rt.kind)))
        return [orjson.loads(s.raw) for s in result.items]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """Delete (or, with finalizers, mark for deletion); returns the object, None if absent."""
        rt = self._type(api_version, kind)
        ns = self._ns(rt, namespace)
        if self.store.get(rt, (ns or "", name)) is None:
            return None
        deletion = self.api.delete(rt, ns, name)
        result: Obj = orjson.loads(deletion.obj.raw)
        return result
