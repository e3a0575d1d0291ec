"""Import kubernetes-asyncio's configuration and ``ApiClient`` without its 900 generated models.

``import kubernetes_asyncio`` runs package ``__init__`` files that import every generated API
and model class: 1,100 modules and about 40 MB of resident memory per process, a sixth of the
exporter's footprint. We use none of them: reflectors decode raw JSON, and only the kubeconfig /
in-cluster loaders and ``ApiClient.call_api`` are needed.

So the three package ``__init__`` files (``kubernetes_asyncio``, ``.client``, ``.client.models``)
are *deferred*: each package is registered without running its ``__init__``, which runs on the
first access to an attribute that is neither set here nor a submodule. Code that does use the
generated classes (``client.CoreV1Api``, a model) therefore still works, at the old cost, on
first use. If the library's layout ever stops matching, the plain import is used instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

_PACKAGES = ("kubernetes_asyncio", "kubernetes_asyncio.client", "kubernetes_asyncio.client.models")


def _deferred(name: str) -> ModuleType | None:
    """Register package ``name`` without executing its ``__init__`` (None: not possible)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    executed = False

    def __getattr__(attr: str) -> Any:
        nonlocal executed
        if attr.startswith("__"):
            raise AttributeError(attr)
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")  # binds the attribute on import
        if executed:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        executed = True
        loader.exec_module(module)  # the real __init__, once
        return getattr(module, attr)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _import() -> tuple[Any, Any, type[Exception]]:
    if not any(name in sys.modules for name in _PACKAGES):
        registered: list[str] = []
        for name in _PACKAGES:
            if _deferred(name) is None:
                for done in registered:  # undo: fall back to the plain import below
                    del sys.modules[done]
                break
            registered.append(name)
        else:
            client = sys.modules["kubernetes_asyncio.client"]
            # What ``kubernetes_asyncio.config`` imports from the client package.
            client.Configuration = importlib.import_module(  # type: ignore[attr-defined]
                "kubernetes_asyncio.client.configuration").Configuration
            client.ApiClient = importlib.import_module(  # type: ignore[attr-defined]
                "kubernetes_asyncio.client.api_client").ApiClient
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.config.config_exception import ConfigException

    return client, config, ConfigException


k8s_client, k8s_config, ConfigException = _import()
