"""The controller machinery: per controller a work queue fed by store events, drained on the event loop.

Controllers run in the emulator's process and read and write through ``Api`` (the verb semantics HTTP
clients get, admission and defaulting included), as kube-controller-manager does through informers and
the API server. A reconcile is synchronous, so it sees one consistent state and nothing changes under it;
store events only enqueue keys, they never reconcile inline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from apiserver._logging import get_logger
from localmesh.kubesim import _errors as errors
from localmesh.kubesim._api import Api
from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import Key

log = get_logger(__name__)

Obj = dict[str, Any]
# How long a reconcile that failed waits before the next try.
_RETRY_AFTER = 1.0
# Decoded objects kept for read-only lists before the cache starts over.
_CACHE_LIMIT = 50_000


def rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(slots=True)
class Change:
    """One committed store event, decoded once for every controller that follows its kind."""

    type: str  # ADDED / MODIFIED / DELETED
    key: Key
    obj: Obj
    prev: Obj | None


class Cluster:
    """What controllers read and write: typed access to one emulator's objects, and its clock."""

    def __init__(self, api: Api, clock: Callable[[], float]) -> None:
        self.api = api
        self.clock = clock
        self._decoded: dict[tuple[str, str, Key], tuple[int, Obj]] = {}

    def type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.api.registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"kubesim does not serve {kind} in {api_version}")
        return rt

    def now(self) -> str:
        return rfc3339(self.clock())

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        stored = self.api.store.get(rt, ((namespace or "") if rt.namespaced else "", name))
        return orjson.loads(stored.raw) if stored is not None else None

    def list(self, rt: ResourceType, namespace: str | None = None,
             labels: Mapping[str, str] | None = None, *, readonly: bool = False) -> list[Obj]:
        """Current objects, optionally only those carrying all of ``labels`` (checked before decoding).
        ``readonly``: the caller does not change them, so decoded copies are shared between calls (an
        informer's cache: a reconcile per pod change need not decode every pod again)."""
        stored = self.api.store.iter_current(rt, namespace)
        if labels:
            wanted = labels.items()
            stored = (s for s in stored if s.labels is not None and wanted <= s.labels.items())
        if not readonly:
            return [orjson.loads(s.raw) for s in stored]
        cache = self._decoded
        if len(cache) > _CACHE_LIMIT:
            cache.clear()  # drops the entries of deleted objects too
        out = []
        for s in stored:
            entry = (rt.group, rt.plural, s.key)
            hit = cache.get(entry)
            if hit is None or hit[0] != s.rv:
                hit = cache[entry] = (s.rv, orjson.loads(s.raw))
            out.append(hit[1])
        return out

    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        stored = self.api.create(rt, obj["metadata"].get("namespace"), obj)
        result: Obj = orjson.loads(stored.raw)
        return result

    def update(self, rt: ResourceType, obj: Obj, *, status: bool = False) -> Obj:
        meta = obj["metadata"]
        stored = self.api.update(rt, meta.get("namespace"), meta["name"], obj,
                                 subresource="status" if status else None)
        result: Obj = orjson.loads(stored.raw)
        return result

    def delete(self, rt: ResourceType, namespace: str | None, name: str, uid: str | None = None) -> bool:
        """Delete if present (and, with ``uid``, still that object); False if it was already gone."""
        try:
            self.api.delete(rt, namespace, name, preconditions={"uid": uid} if uid else None)
        except errors.KubeError as exc:
            if exc.code in (404, 409):
                return False
            raise
        return True


class WorkQueue:
    """Keys to reconcile, each at most once in the queue; ``add_after`` for timed re-checks."""

    def __init__(self) -> None:
        self._keys: dict[Key, None] = {}
        self._ready = asyncio.Event()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Key) -> None:
        self._keys[key] = None
        self._ready.set()

    def add_after(self, key: Key, delay: float) -> None:
        timer = self._timers.get(key)
        loop = asyncio.get_running_loop()
        when = loop.time() + max(delay, 0.0)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return  # an earlier re-check is already due
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> Key:
        while not self._keys:
            self._ready.clear()
            await self._ready.wait()
        key = next(iter(self._keys))
        del self._keys[key]
        return key

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._keys.clear()


class Controller:
    """One reconcile loop. Subclasses say which kinds they follow (``follows``: (group, kind)), map each
    change to the keys it concerns, and reconcile one key (returning seconds until a re-check, or None)."""

    name: ClassVar[str] = "controller"
    follows: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.queue = WorkQueue()

    def keys_for(self, rt: ResourceType, change: Change) -> Iterable[Key]:
        raise NotImplementedError

    def initial_keys(self) -> Iterable[Key]:
        """Keys to reconcile at start (every object the controller owns or manages)."""
        return ()

    def reconcile(self, key: Key) -> float | None:
        raise NotImplementedError


async def run_controller(controller: Controller) -> None:
    """Drain ``controller``'s queue forever; a failed reconcile is logged and retried."""
    queue = controller.queue
    while True:
        key = await queue.get()
        try:
            again = controller.reconcile(key)
        except errors.KubeError as exc:
            log.warning("Reconcile failed", controller=controller.name, key="/".join(key), error=exc.message)
            again = _RETRY_AFTER
        except Exception:
            log.exception("Reconcile failed", controller=controller.name, key="/".join(key))
            again = _RETRY_AFTER
        if again is not None:
            queue.add_after(key, again)
        await asyncio.sleep(0)  # one key at a time: the API server's requests go in between
