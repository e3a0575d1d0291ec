"""List + watch of one Kubernetes resource into an informer-style cache, with ordered events.

What it guarantees to the consumer:

* Events come in order, one batch at a time (a list page, or the lines one read of the watch
  stream returned), on one task: a batch is delivered only after the previous one was handled.
* ``UPSERT(obj, old)``: ``obj`` is new or changed; ``old`` is the cached version it replaces, or
  ``None``. ``DELETE(obj)``: ``obj`` is gone (its last state). A relist (after 410 Expired, or a
  restart) delivers UPSERT only for objects whose resourceVersion changed and DELETE for every
  cached object missing from the new list: after a relist the consumer has seen exactly the new
  state, nothing lost and nothing stale. Watch events that repeat the cached resourceVersion are
  dropped. When the server answers a watch with "Too large resource version" (it was restored or
  replaced, and its versions went back), the reflector relists as client-go's reflector does, and
  that relist delivers UPSERT for every object: equal resourceVersions mean nothing any more.
* ``on_synced()`` exactly once, after the first complete list has been delivered; then the
  ``synced`` event is set.
* A handler exception is logged (with the object's namespace/name) and does not stop the reflector.

Handlers. Two shapes, pick by speed needs (a start-up list can be 100k objects):

* ``ObjectHandler`` subclass: synchronous ``on_upsert(obj, old)``, ``on_delete(obj)``,
  ``on_synced()``. The reflector calls them per object and logs failures per object.
* anything with ``on_events(events: list[ObjectEvent])`` and ``on_synced()`` (``BatchHandler``): one
  call per batch; either may be a coroutine function, which gives the consumer backpressure (the
  reflector reads nothing more until it returns). An exception from ``on_events`` is logged with
  the batch size and its first/last object, and the next batch is delivered as usual.

Objects are the decoded JSON dicts, shared with ``reflector.cache`` (a compact cache hands out
decoded copies instead): never mutate them. Items of a
list page carry no ``kind``/``apiVersion`` (the API server puts them on the list only).

Errors (HTTP 5xx, refused connections, timeouts, broken streams) are logged with the resource name
and retried forever with exponential backoff and jitter until ``stop()``. The reflector never talks
to etcd and knows nothing of what the consumer does with the objects.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from sys import intern
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import aiohttp
import orjson

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver._tokenbucket import TokenBucket
from apiserver.kube._cache import Cache, CompactCache, IndexFunc, Key, KubeObject, MetadataCache
from apiserver.kube._http import KubeAPIError, KubeHTTP, Query
from apiserver.kube._lines import LineSplitter
from apiserver.kube.resources import APIResource

log = get_logger(__name__)


class EventKind(enum.Enum):
    UPSERT = "upsert"
    DELETE = "delete"


UPSERT = EventKind.UPSERT
DELETE = EventKind.DELETE


class ObjectEvent(NamedTuple):
    kind: EventKind
    obj: KubeObject
    # UPSERT: the cached version ``obj`` replaces (None for a new object). DELETE: always None.
    old: KubeObject | None


@runtime_checkable
class BatchHandler(Protocol):
    def on_events(self, events: list[ObjectEvent]) -> Awaitable[None] | None: ...

    def on_synced(self) -> Awaitable[None] | None: ...


class ObjectHandler:
    """Per-object consumer; override what you need. Methods must not block (enqueue, don't wait)."""

    def on_upsert(self, obj: KubeObject, old: KubeObject | None) -> None:
        pass

    def on_delete(self, obj: KubeObject) -> None:
        pass

    def on_synced(self) -> None:
        pass


class ReflectorMetrics(Protocol):
    """Hook for request/error counters (``KubeRequestMetrics`` puts Prometheus behind it).

    ``verb`` is ``list`` (one per page) or ``watch``; ``reason`` is ``expired``, ``http_<code>``,
    ``timeout``, ``connection``, ``stream``, ``decode`` or ``handler``.
    """

    def request(self, resource: str, verb: str) -> None: ...

    def error(self, resource: str, verb: str, reason: str) -> None: ...


@dataclass
class CountingMetrics:
    """In-memory ``ReflectorMetrics``: ``requests[(resource, verb)]``, ``errors[(resource, verb,
    reason)]``."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def request(self, resource: str, verb: str) -> None:
        self.requests[resource, verb] += 1

    def error(self, resource: str, verb: str, reason: str) -> None:
        self.errors[resource, verb, reason] += 1


CacheKind = Literal["objects", "compact", "metadata"]
_CACHES: dict[str, type[Cache]] = {"objects": Cache, "compact": CompactCache, "metadata": MetadataCache}


@dataclass(frozen=True, slots=True)
class ReflectorOptions:
    page_size: int = 500
    # Server-side ``timeoutSeconds`` of a watch, randomised into [t, 2t) as client-go does so that
    # many watches do not all end together.
    watch_timeout: float = 300.0
    # No byte (event or bookmark) for this long on a watch: the peer is presumed dead, reconnect.
    # Real API servers send a bookmark about every minute.
    idle_timeout: float = 120.0
    connect_timeout: float = 30.0
    list_timeout: float = 60.0  # per read while fetching one list page
    backoff_initial: float = 0.2
    backoff_max: float = 30.0
    progress_interval: float = 5.0  # list progress log period
    # What the cache keeps of each object: the object ("objects"), the object serialized
    # ("compact", ``CompactCache``: a fraction of the memory, decoded on every read) or only its
    # resourceVersion ("metadata", ``MetadataCache``: reads return metadata stubs; see
    # ``reread_namespace`` for getting objects back).
    cache: CacheKind = "objects"
    # Largest batch handed to the handler at once; a list page is delivered in several batches.
    delivery_chunk: int = 100
    # Applied to every object before it is cached or delivered (client-go's SetTransform), e.g. to
    # keep only the fields the consumer reads. It must keep metadata name, namespace and
    # resourceVersion, and must not modify its argument.
    transform: Callable[[KubeObject], KubeObject] | None = None


class _WatchSummary(NamedTuple):
    lines: int
    seconds: float


def _describe(obj: Any) -> str:
    try:
        meta = obj["metadata"]
        ns = meta.get("namespace")
        return f"{ns}/{meta['name']}" if ns else str(meta["name"])
    except (KeyError, TypeError, AttributeError):
        return "<unnamed>"


def _consume_outcome(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _error_reason(exc: BaseException) -> str:
    if isinstance(exc, KubeAPIError):
        return "expired" if exc.expired else f"http_{exc.code}"
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts derive from it too
        return "timeout"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "stream"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return "connection"
    if isinstance(exc, ValueError):  # orjson.JSONDecodeError, LineTooLongError
        return "decode"
    return type(exc).__name__


class Reflector:
    """List + watch one resource (all namespaces unless ``namespace``) into ``cache``."""

    def __init__(
        self,
        api_client: Any,
        resource: APIResource,
        handler: ObjectHandler | BatchHandler | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        namespace: str | None = None,
        options: ReflectorOptions | None = None,
        rate_limiter: TokenBucket | None = None,
        metrics: ReflectorMetrics | None = None,
    ) -> None:
        self.resource = resource
        self.name = resource.name
        self.synced = asyncio.Event()
        self._opts = options or ReflectorOptions()
        self.cache = _CACHES[self._opts.cache]()
        self._http = KubeHTTP(api_client, connect_timeout=self._opts.connect_timeout,
                              rate_limiter=rate_limiter)
        self._path = resource.list_path(namespace)
        selectors: list[tuple[str, str]] = []
        if label_selector:
            selectors.append(("labelSelector", label_selector))
        if field_selector:
            selectors.append(("fieldSelector", field_selector))
        self._selectors: Query = tuple(selectors)
        self._object_handler = handler if isinstance(handler, ObjectHandler) else None
        self._batch_handler = handler if isinstance(handler, BatchHandler) and not isinstance(
            handler, ObjectHandler) else None
        if handler is not None and self._object_handler is None and self._batch_handler is None:
            raise TypeError(f"{type(handler).__name__} is neither an ObjectHandler nor has "
                            "on_events()/on_synced()")
        self._metrics = metrics
        self._backoff = Backoff(self._opts.backoff_initial, self._opts.backoff_max)
        self._rv = ""
        self._distrust_versions = False  # the next relist delivers every object
        self._task: asyncio.Task[None] | None = None

    # -- consumer-facing reads -------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen (list, event or bookmark); ``""`` before the first list."""
        return self._rv

    def get(self, namespace: str, name: str) -> KubeObject | None:
        return self.cache.get(namespace, name)

    def list_namespace(self, namespace: str) -> list[KubeObject]:
        return self.cache.list_namespace(namespace)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self.cache.add_index(name, fn)

    async def reread_namespace(self, namespace: str) -> list[KubeObject]:
        """The objects of ``namespace`` as the API server has them now, limited to those the cache
        holds at the same resourceVersion: exactly the versions the handler has seen (an object
        created, changed or deleted meanwhile reaches the handler through the watch). For a
        ``MetadataCache``, whose reads return stubs. Raises on API errors; the caller retries."""
        path, transform, cache = self.resource.list_path(namespace), self._opts.transform, self.cache
        objects: list[KubeObject] = []
        cont = ""
        while True:
            try:
                doc = await self._get_page(path, cont)
            except Exception as exc:
                self._count_error("list", _error_reason(exc))
                raise
            for obj in doc.get("items") or []:
                try:
                    meta = obj["metadata"]
                    cached = cache.get(meta.get("namespace") or "", meta["name"])
                except (KeyError, TypeError, AttributeError):
                    continue  # malformed: never cached, so never seen by the handler either
                rv = meta.get("resourceVersion")
                if cached is not None and rv and cached["metadata"].get("resourceVersion") == rv:
                    objects.append(obj if transform is None else transform(obj))
            cont = (doc.get("metadata") or {}).get("continue") or ""
            if not cont:
                return objects

    def by_index(self, name: str, value: str) -> list[KubeObject]:
        return self.cache.by_index(name, value)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"reflector {self.name} already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"reflector-{self.name}")
        self._task.add_done_callback(self._task_done)

    async def stop(self) -> None:
        """Cancel the list/watch (closing the stream) and wait for it to end."""
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)

    async def __aenter__(self) -> Reflector:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("Reflector stopped unexpectedly", resource=self.name, error=repr(task.exception()))

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        need_list = True
        while True:
            verb = "list" if need_list else "watch"
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    self._backoff.reset()
                    verb = "watch"
                summary = await self._watch()
                log.debug("Watch ended, resuming", resource=self.name, lines=summary.lines,
                          resource_version=self._rv)
                if summary.lines == 0 and summary.seconds < 1.0:
                    # A server that closes every watch at once must not make us spin.
                    await asyncio.sleep(self._backoff.next())
            except KubeAPIError as exc:
                if verb == "watch" and exc.expired:
                    self._count_error(verb, "expired")
                    log.info("Watch resourceVersion expired, relisting", resource=self.name,
                             resource_version=self._rv)
                    need_list = True
                    continue
                if verb == "watch" and exc.too_large_resource_version:
                    self._count_error(verb, "too_large_resource_version")
                    log.warning("The API server does not know our resourceVersion (restored or replaced?); "
                                "relisting everything", resource=self.name, resource_version=self._rv,
                                error=str(exc))
                    need_list = True
                    self._distrust_versions = True
                    continue
                await self._retry_later(verb, exc)
            except Exception as exc:  # retried forever: a reflector must outlive any server trouble
                await self._retry_later(verb, exc)

    async def _retry_later(self, verb: str, exc: Exception) -> None:
        reason = _error_reason(exc)
        self._count_error(verb, reason)
        delay = self._backoff.next()
        log.warning("Kubernetes request failed, retrying", resource=self.name, verb=verb, reason=reason,
                    error=str(exc) or type(exc).__name__, retry_in=f"{delay:.2f}s")
        await asyncio.sleep(delay)

    # -- list ------------------------------------------------------------------------------

    async def _list(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_progress = started + self._opts.progress_interval
        initial = not self.synced.is_set()
        while True:  # one pass per attempt: an expired continue token restarts from scratch
            # None: the cache was empty when this pass began (an initial list), so no object can
            # be left unseen or be unchanged: 100k set insertions and cache lookups saved.
            seen: set[Key] | None = set() if self.cache else None
            cont = ""
            pages = listed = 0
            fetching: asyncio.Task[Any] | None = self._fetch_page(cont)
            try:
                while fetching is not None:
                    doc = await fetching
                    meta = doc.get("metadata") or {}
                    next_cont = meta.get("continue") or ""
                    # Ask for the next page before handling this one: the server's work and ours overlap.
                    fetching = self._fetch_page(next_cont) if next_cont else None
                    if next_cont:
                        cont = next_cont
                    items = doc.get("items") or []
                    pages += 1
                    listed += len(items)
                    await self._deliver(self._merge_page(items, seen))
                    now = loop.time()
                    if now >= next_progress:
                        next_progress = now + self._opts.progress_interval
                        log.info("Listing", resource=self.name, listed=listed, pages=pages,
                                 rate=f"{listed / (now - started):.0f}/s")
                    if not next_cont:
                        list_rv = str(meta.get("resourceVersion") or "")
            except KubeAPIError as exc:
                if not (cont and exc.expired):
                    raise
                self._count_error("list", "expired")
                log.info("List continue token expired, restarting the list", resource=self.name,
                         pages=pages)
                continue
            finally:
                if fetching is not None and not fetching.done():
                    fetching.cancel()
            break
        await self._deliver(self._drop_unseen(seen))
        self._rv = list_rv
        self._distrust_versions = False
        elapsed = loop.time() - started
        log.info("Initial list complete" if initial else "Relist complete", resource=self.name,
                 objects=listed, pages=pages, seconds=f"{elapsed:.2f}",
                 rate=f"{listed / elapsed:.0f}/s" if elapsed > 0 else "-", resource_version=list_rv)
        if initial:
            await self._call_synced()
            self.synced.set()

    async def _get_page(self, path: str, cont: str) -> Any:
        """One list page of ``path`` (counted as a list request) from the continue token ``cont``."""
        query = [("limit", str(self._opts.page_size)), *self._selectors]
        if cont:
            query.append(("continue", cont))
        self._count_request("list")
        return await self._http.get_json(path, query, read_timeout=self._opts.list_timeout)

    def _fetch_page(self, cont: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(self._get_page(self._path, cont))
        # A page abandoned by a failed or cancelled list must not log "exception never retrieved".
        task.add_done_callback(_consume_outcome)
        return task

    def _merge_page(self, items: list[KubeObject], seen: set[Key] | None) -> list[ObjectEvent]:
        cache, transform = self.cache, self._opts.transform
        events: list[ObjectEvent] = []
        for obj in items:
            if transform is not None:
                obj = transform(obj)
            try:
                meta = obj["metadata"]
                # Interned: a cache of 100k objects would otherwise hold 100k copies of a few
                # namespace names (5 MB).
                key = (intern(meta.get("namespace") or ""), meta["name"])
            except (KeyError, TypeError, AttributeError):
                self._malformed(obj)
                continue
            if seen is None:
                events.append(ObjectEvent(UPSERT, obj, cache.put(key, obj)))
                continue
            seen.add(key)
            old = cache.get_key(key)
            rv = meta.get("resourceVersion")
            if (old is not None and rv and old["metadata"].get("resourceVersion") == rv
                    and not self._distrust_versions):
                continue
            cache.put(key, obj)
            events.append(ObjectEvent(UPSERT, obj, old))
        return events

    def _drop_unseen(self, seen: set[Key] | None) -> list[ObjectEvent]:
        if seen is None:
            return []
        cache = self.cache
        events: list[ObjectEvent] = []
        for key in [k for k in cache if k not in seen]:
            old = cache.pop(key)
            if old is not None:
                events.append(ObjectEvent(DELETE, old, None))
        return events

    # -- watch -----------------------------------------------------------------------------

    async def _watch(self) -> _WatchSummary:
        timeout = int(self._opts.watch_timeout * (1.0 + random.random()))
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(max(1, timeout)))]
        if self._rv:
            query.append(("resourceVersion", self._rv))
        query.extend(self._selectors)
        loop = asyncio.get_running_loop()
        started = loop.time()
        lines_seen = 0
        self._count_request("watch")
        async with self._http.stream(self._path, query, idle_timeout=self._opts.idle_timeout) as body:
            splitter = LineSplitter()
            async for chunk in body.iter_any():
                lines = splitter.feed(chunk)
                if lines:
                    if not lines_seen:
                        self._backoff.reset()
                    lines_seen += len(lines)
                    await self._apply(lines)
            tail = splitter.tail()
            if tail:
                lines_seen += 1
                await self._apply([tail])
        return _WatchSummary(lines_seen, loop.time() - started)

    async def _apply(self, lines: Sequence[bytes]) -> None:
        """Decode watch lines into the cache and deliver the resulting events as one batch."""
        events: list[ObjectEvent] = []
        try:
            self._apply_lines(lines, events)
        finally:
            # Whatever reached the cache before an ERROR line reaches the consumer too.
            await self._deliver(events)

    def _apply_lines(self, lines: Sequence[bytes], events: list[ObjectEvent]) -> None:
        cache, transform = self.cache, self._opts.transform
        for line in lines:
            try:
                ev = orjson.loads(line)
                kind = ev["type"]
                obj = ev["object"]
                if kind == "ERROR":
                    raise KubeAPIError.from_status(obj)
                meta = obj["metadata"]
                rv = meta.get("resourceVersion") or ""
                if kind == "BOOKMARK":
                    if rv:
                        self._rv = rv
                    continue
                if transform is not None:
                    obj = transform(obj)
                # Interned: a cache of 100k objects would otherwise hold 100k copies of a few
                # namespace names (5 MB).
                key = (intern(meta.get("namespace") or ""), meta["name"])
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                self._count_error("watch", "decode")
                log.warning("Skipping malformed watch event", resource=self.name,
                            line=line[:200].decode("utf-8", "replace"))
                continue
            if rv:
                self._rv = rv
            if kind == "ADDED" or kind == "MODIFIED":
                old = cache.get_key(key)
                if old is not None and rv and old["metadata"].get("resourceVersion") == rv:
                    continue
                cache.put(key, obj)
                events.append(ObjectEvent(UPSERT, obj, old))
            elif kind == "DELETED":
                # Not cached means the consumer never saw it: nothing to retract.
                if cache.pop(key) is not None:
                    events.append(ObjectEvent(DELETE, obj, None))
            else:
                log.warning("Unknown watch event type", resource=self.name, type=str(kind))

    # -- delivery --------------------------------------------------------------------------

    async def _deliver(self, events: list[ObjectEvent]) -> None:
        chunk = self._opts.delivery_chunk
        if len(events) <= chunk:
            await self._deliver_chunk(events)
            return
        for start in range(0, len(events), chunk):
            if start:
                # Let other tasks run between chunks: handling a 500-object page takes several
                # milliseconds, and the writers downstream must keep their requests flowing.
                await asyncio.sleep(0)
            await self._deliver_chunk(events[start:start + chunk])

    async def _deliver_chunk(self, events: list[ObjectEvent]) -> None:
        if not events:
            return
        if self._object_handler is not None:
            self._deliver_each(self._object_handler, events)
        elif self._batch_handler is not None:
            try:
                result = self._batch_handler.on_events(events)
                if result is not None:
                    await result
            except Exception:
                self._count_error("handler", "handler")
                log.exception("Event handler failed", resource=self.name, events=len(events),
                              first=_describe(events[0].obj), last=_describe(events[-1].obj))

    def _deliver_each(self, handler: ObjectHandler, events: list[ObjectEvent]) -> None:
        for event in events:
            try:
                if event.kind is UPSERT:
                    handler.on_upsert(event.obj, event.old)
                else:
                    handler.on_delete(event.obj)
            except Exception:
                self._count_error("handler", "handler")
                meta = event.obj.get("metadata") or {}
                log.exception("Event handler failed", resource=self.name, event=event.kind.value,
                              namespace=meta.get("namespace") or "", name=meta.get("name") or "")

    async def _call_synced(self) -> None:
        handler = self._object_handler or self._batch_handler
        if handler is None:
            return
        try:
            result = handler.on_synced()
            if result is not None:
                await result
        except Exception:
            self._count_error("handler", "handler")
            log.exception("on_synced handler failed", resource=self.name)

    # -- bookkeeping -----------------------------------------------------------------------

    def _malformed(self, obj: Any) -> None:
        self._count_error("list", "decode")
        log.warning("Skipping object without metadata.name", resource=self.name, obj=repr(obj)[:200])

    def _count_request(self, verb: str) -> None:
        if self._metrics is not None:
            self._metrics.request(self.name, verb)

    def _count_error(self, verb: str, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.error(self.name, verb, reason)
