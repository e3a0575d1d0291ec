"""Global-namespace gate: which namespaces are exported, and who to tell on a change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from apiserver.convert import namespace_is_global
from apiserver.kube import DELETE, ObjectEvent

NamespaceListener = Callable[[str], None]


class NamespaceGate:
    """Fed by the Namespace reflector. Namespaced handlers ask ``is_global(ns)`` and subscribe to
    be told when a namespace becomes global, stops being global, appears or goes away.

    An object whose namespace is not known (yet) is not exported; it is re-evaluated when the
    namespace appears -- the same outcome as upstream's "retry until the namespace is cached".
    """

    def __init__(self, default_global: bool = True) -> None:
        self._default_global = default_global
        self._global: dict[str, bool] = {}
        self._listeners: list[NamespaceListener] = []
        self.synced = asyncio.Event()

    def is_global(self, namespace: str) -> bool:
        return self._global.get(namespace, False)

    def subscribe(self, listener: NamespaceListener) -> None:
        self._listeners.append(listener)

    def on_events(self, events: list[ObjectEvent]) -> None:
        for event in events:
            name = event.obj["metadata"]["name"]
            before = self._global.get(name)
            if event.kind is DELETE:
                self._global.pop(name, None)
                after = None
            else:
                after = namespace_is_global(event.obj, self._default_global)
                self._global[name] = after
            if before != after:
                for listener in self._listeners:
                    listener(name)

    def on_synced(self) -> None:
        self.synced.set()
