"""Informer-style cache of one resource's objects, keyed by ``(namespace, name)``, with indexes.

Pure data structure, no I/O. The reflector is the only writer (``put``/``pop``); consumers read.
Objects are the decoded JSON dicts, shared with the events the consumer receives: treat them as
read-only. Cluster-scoped objects have namespace ``""``.

Indexes: the namespace index is always there and costs nothing per update (the namespace is part
of the key). Extra indexes are pluggable: ``add_index(name, fn)`` where ``fn(obj)`` returns the
index values of an object (an iterable of strings, empty for none).

``CompactCache`` keeps each object serialized instead (orjson bytes, about a fifth of the memory of
the decoded dicts, and nothing for the garbage collector to scan) and decodes on every read: for
resources with 100k objects that consumers rarely read back. ``MetadataCache`` keeps only each
object's resourceVersion, for resources whose consumer never reads objects back (CiliumEndpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

KubeObject = dict[str, Any]
Key = tuple[str, str]
IndexFunc = Callable[[KubeObject], Iterable[str]]


def object_key(obj: KubeObject) -> Key:
    """``(namespace, name)``; raises ``KeyError``/``TypeError`` when the object has no name."""
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def namespaced_name(namespace: str, name: str) -> str:
    """The text form of a key: ``<namespace>/<name>``, or ``<name>`` for a cluster-scoped object."""
    return f"{namespace}/{name}" if namespace else name


def object_name(obj: KubeObject) -> str:
    """``namespaced_name`` of any object, also a malformed one (for logs)."""
    meta = obj.get("metadata") or {}
    return namespaced_name(str(meta.get("namespace") or ""), str(meta.get("name", "<unnamed>")))


def resource_version(obj: KubeObject) -> str:
    rv: str = obj["metadata"].get("resourceVersion") or ""
    return rv


def index_by_service(obj: KubeObject) -> tuple[str, ...]:
    """EndpointSlice -> ``"<namespace>/<service>"`` of the Service owning it (label
    ``kubernetes.io/service-name``); nothing for slices without that label."""
    meta = obj["metadata"]
    service = (meta.get("labels") or {}).get("kubernetes.io/service-name")
    if not service:
        return ()
    return (namespaced_name(meta.get("namespace") or "", service),)


class Cache:
    __slots__ = ("_by_namespace", "_indexers", "_indices", "_items")

    def __init__(self) -> None:
        self._items: dict[Key, KubeObject] = {}
        # Dicts with None values are insertion-ordered sets: results come back in a stable order.
        self._by_namespace: dict[str, dict[Key, None]] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, dict[Key, None]]] = {}

    # -- reading ---------------------------------------------------------------------------

    # Storage hooks: the plain cache stores the objects themselves.
    @staticmethod
    def _encode(obj: KubeObject) -> Any:
        return obj

    @staticmethod
    def _decode(key: Key, stored: Any) -> KubeObject:
        return stored  # type: ignore[no-any-return]

    def get(self, namespace: str, name: str) -> KubeObject | None:
        return self.get_key((namespace, name))

    def get_key(self, key: Key) -> KubeObject | None:
        stored = self._items.get(key)
        return None if stored is None else self._decode(key, stored)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Key]:
        return iter(self._items)

    def keys(self) -> list[Key]:
        return list(self._items)

    def objects(self) -> list[KubeObject]:
        decode = self._decode
        return [decode(key, stored) for key, stored in self._items.items()]

    def list_namespace(self, namespace: str) -> list[KubeObject]:
        items, decode = self._items, self._decode
        return [decode(k, items[k]) for k in self._by_namespace.get(namespace, ())]

    def namespaces(self) -> list[str]:
        return list(self._by_namespace)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Register an index and build it over the objects already cached."""
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = fn
        index: dict[str, dict[Key, None]] = {}
        self._indices[name] = index
        for key, stored in self._items.items():
            for value in fn(self._decode(key, stored)):
                index.setdefault(value, {})[key] = None

    def by_index(self, name: str, value: str) -> list[KubeObject]:
        """Objects whose index ``name`` yields ``value``; ``KeyError`` for an unknown index."""
        items, decode = self._items, self._decode
        return [decode(k, items[k]) for k in self._indices[name].get(value, ())]

    def index_values(self, name: str) -> list[str]:
        return list(self._indices[name])

    # -- writing (the reflector) -----------------------------------------------------------

    def put(self, key: Key, obj: KubeObject) -> KubeObject | None:
        """Store ``obj``; returns the object it replaced."""
        stored = self._items.get(key)
        old = None if stored is None else self._decode(key, stored)
        self._items[key] = self._encode(obj)
        if old is None:
            bucket = self._by_namespace.get(key[0])
            if bucket is None:
                self._by_namespace[key[0]] = {key: None}
            else:
                bucket[key] = None
        if self._indexers:
            self._reindex(key, old, obj)
        return old

    def pop(self, key: Key) -> KubeObject | None:
        """Remove and return the object under ``key`` (``None`` if absent)."""
        stored = self._items.pop(key, None)
        if stored is None:
            return None
        old = self._decode(key, stored)
        bucket = self._by_namespace[key[0]]
        del bucket[key]
        if not bucket:
            del self._by_namespace[key[0]]
        if self._indexers:
            self._reindex(key, old, None)
        return old

    def _reindex(self, key: Key, old: KubeObject | None, new: KubeObject | None) -> None:
        for name, fn in self._indexers.items():
            # Tuples, not sets: an object has one or two index values, and this runs per update.
            old_values = tuple(fn(old)) if old is not None else ()
            new_values = tuple(fn(new)) if new is not None else ()
            if old_values == new_values:
                continue
            index = self._indices[name]
            for value in old_values:
                if value not in new_values:
                    bucket = index.get(value)
                    if bucket is not None:
                        bucket.pop(key, None)
                        if not bucket:
                            del index[value]
            for value in new_values:
                if value not in old_values:
                    index.setdefault(value, {})[key] = None


class CompactCache(Cache):
    """A ``Cache`` holding serialized objects: every read returns a fresh decoded copy."""

    __slots__ = ()

    @staticmethod
    def _encode(obj: KubeObject) -> Any:
        # orjson's result keeps its whole write buffer (4 KiB or more) allocated; an exact-size copy
        # is ten times smaller for a typical object.
        return bytes(memoryview(orjson.dumps(obj)))

    @staticmethod
    def _decode(key: Key, stored: Any) -> KubeObject:
        obj: KubeObject = orjson.loads(stored)
        return obj


class MetadataCache(Cache):
    """A ``Cache`` holding only each object's resourceVersion: reads return metadata stubs
    (``{"metadata": {namespace, name, resourceVersion}}``).

    For a resource whose consumer keeps what it derived from each object and never reads the
    objects back (CiliumEndpoints: 100k+ of them, whose exported entries the sync store already
    holds): the reflector still knows which objects exist, at which version, for relists and
    deletes. Indexes are not supported (they would see the stubs only).
    """

    __slots__ = ()

    @staticmethod
    def _encode(obj: KubeObject) -> Any:
        return obj["metadata"].get("resourceVersion") or ""

    @staticmethod
    def _decode(key: Key, stored: Any) -> KubeObject:
        meta = {"namespace": key[0], "name": key[1]} if key[0] else {"name": key[1]}
        if stored:
            meta["resourceVersion"] = stored
        return {"metadata": meta}

    def add_index(self, name: str, fn: IndexFunc) -> None:
        raise TypeError("a MetadataCache holds no objects to index")
