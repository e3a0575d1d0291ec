"""Watchers: per-stream queues of pre-encoded JSON event lines, fed synchronously by the store.

A watcher filters by namespace and selectors the way kube-apiserver's watch cache does: an update that
makes an object match is sent as ADDED, one that makes it stop matching as DELETED. The HTTP layer drains
``pending`` and writes it out; this module knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from localmesh.kubesim._selectors import FieldSelector, LabelSelector

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
Key = tuple[str, str]


@dataclass(slots=True)
class Stored:
    """One stored object state: its serialized form is the source of truth (immutable bytes)."""

    raw: bytes
    rv: int
    key: Key
    labels: dict[str, str] | None


_PREFIX = {t: b'{"type":"' + t.encode() + b'","object":' for t in (ADDED, MODIFIED, DELETED)}


def encode_event(etype: str, obj: Stored) -> bytes:
    return _PREFIX[etype] + obj.raw + b"}\n"


# Renders one event line differently (e.g. as a meta.k8s.io Table for kubectl).
Render = Callable[[str, Stored], bytes]


class Watcher:
    """The server side of one watch stream."""

    __slots__ = ("closed", "fields", "filtered", "labels", "max_pending", "namespace", "pending",
                 "render", "wakeup")

    def __init__(self, namespace: str | None = None, labels: LabelSelector | None = None,
                 fields: FieldSelector | None = None, render: Render | None = None,
                 max_pending: int = 1_000_000) -> None:
        self.namespace = namespace or None
        self.labels = labels or LabelSelector()
        self.fields = fields or FieldSelector()
        self.filtered = bool(self.namespace) or not self.labels.empty or not self.fields.empty
        self.render = render
        self.max_pending = max_pending
        self.pending: list[bytes] = []
        self.wakeup = asyncio.Event()
        self.closed = False

    def _matches(self, obj: Stored) -> bool:
        ns, name = obj.key
        if self.namespace is not None and ns != self.namespace:
            return False
        if not (self.fields.matches(ns, name) and self.labels.matches(obj.labels)):
            return False
        return not self.fields.on_object or self.fields.matches_object(orjson.loads(obj.raw))

    def offer(self, etype: str, obj: Stored, prev: Stored | None, line: bytes | None = None) -> None:
        """Queue one store event; ``line`` is its shared encoding, when the caller has one."""
        if self.closed:
            return
        if self.filtered:
            now = self._matches(obj)
            before = prev is not None and self._matches(prev)
            if etype == MODIFIED:
                if now and not before:
                    etype, line = ADDED, None
                elif before and not now:
                    etype, line = DELETED, None
                elif not now:
                    return
            elif etype == DELETED:
                # A deletion is visible to whoever could see the object before it.
                if not (before or now):
                    return
            elif not now:
                return
        if self.render is not None:
            line = self.render(etype, obj)
        elif line is None:
            line = encode_event(etype, obj)
        self.push(line)

    def push(self, line: bytes) -> None:
        if self.closed:
            return
        self.pending.append(line)
        if len(self.pending) > self.max_pending:
            # A consumer this far behind is cut off, as kube-apiserver does; it re-lists.
            self.closed = True
        self.wakeup.set()

    def take(self) -> bytes:
        chunk = b"".join(self.pending)
        self.pending.clear()
        self.wakeup.clear()
        return chunk

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()
