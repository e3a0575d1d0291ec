"""The emulator's HTTP surface (aiohttp): discovery, list/get/watch and writes, rendered as kube-apiserver
renders them (JSON, Tables for kubectl, Status objects for failures, chunked JSON-lines watches).

Query parameters are parsed here; the semantics live in ``_api``. This is the only module that
speaks HTTP.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from apiserver._logging import get_logger
from localmesh.kubesim import _discovery as discovery
from localmesh.kubesim import _errors as errors
from localmesh.kubesim import _openapi as openapi
from localmesh.kubesim import _protobuf as protobuf
from localmesh.kubesim import _scale as scaling
from localmesh.kubesim import _table as tables
from localmesh.kubesim._api import Api, Deletion, parse_body
from localmesh.kubesim._faults import Faults
from localmesh.kubesim._podio import PodIO
from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._routing import POD_SUBRESOURCES, Target, resolve
from localmesh.kubesim._selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from localmesh.kubesim._watch import Stored, Watcher

log = get_logger(__name__)

_TRUE = frozenset(("1", "t", "T", "true", "TRUE", "True"))
_FALSE = frozenset(("0", "f", "F", "false", "FALSE", "False"))
_JSON = "application/json"
# How long a list/watch at a resourceVersion ahead of ours waits for it (kube-apiserver: 3 s).
_FRESHNESS_WAIT = 3.0
# An idle watch stream checks this often whether its client went away.
_IDLE_CHECK = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bool(query: Any, name: str) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'{name}: Invalid value: "{value}": strconv.ParseBool: parsing "{value}": '
                             f"invalid syntax")


def _selectors(query: Mapping[str, str], rt: ResourceType) -> tuple[LabelSelector, FieldSelector]:
    """The request's label and field selectors; 400 Bad Request when either does not parse."""
    try:
        return (parse_label_selector(query.get("labelSelector")),
                parse_field_selector(query.get("fieldSelector"), (rt.group, rt.kind)))
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None


def _int(query: Any, name: str) -> int:
    value = query.get(name)
    if value is None or value == "":
        return 0
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None
    if number < 0:
        raise errors.bad_request(f'{name}: Invalid value: {number}: must be greater than or equal to 0')
    return number


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type=_JSON)


def _raw(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON)


def status_response(exc: errors.KubeError, accept: str | None = None) -> web.Response:
    resp = _json(exc.status(), exc.code)
    if protobuf.wants_protobuf(accept) and exc.code != 406:
        resp = web.Response(body=protobuf.encode_status(exc.status()), status=exc.code,
                            content_type=protobuf.PROTOBUF)
    resp.headers.update(exc.headers)
    return resp


def _body(request: web.Request, rt: ResourceType, raw: bytes) -> Any:
    """A create/update body: protobuf (client-go's default for built-in kinds) or JSON."""
    if protobuf.is_protobuf(request.headers.get("Content-Type")):
        return protobuf.decode_object(rt, raw)
    return parse_body(raw)


def _encoded(request: web.Request, raw_json: bytes, status: int) -> web.Response:
    """A stored object in the form the client accepts (protobuf when it accepts no JSON)."""
    if protobuf.wants_protobuf(request.headers.get("Accept")):
        return web.Response(body=protobuf.encode_object(raw_json), status=status, content_type=protobuf.PROTOBUF)
    return _raw(raw_json, status)


def _document(request: web.Request, doc: dict[str, Any]) -> web.Response:
    """A document the emulator builds (not a stored object) in the form the client accepts."""
    if protobuf.wants_protobuf(request.headers.get("Accept")):
        return web.Response(body=protobuf.encode_document(doc), content_type=protobuf.PROTOBUF)
    return _json(doc)


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _verb(request: web.Request, target: Target) -> str:
    method = request.method
    if method == "GET":
        if target.watch_path or _bool(request.query, "watch"):
            return "watch"
        return "get" if target.name else "list"
    collection = target.name is None
    verb = {("POST", True): "create", ("PUT", False): "update", ("PATCH", False): "patch",
            ("DELETE", False): "delete", ("DELETE", True): "deletecollection"}.get((method, collection))
    if verb is None or (verb == "create" and target.subresource):
        raise errors.method_not_allowed(method)
    return verb


def _bookmark(rt: ResourceType, rv: int, initial_end: bool = False, proto: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
    if proto:
        return protobuf.watch_frame("BOOKMARK", protobuf.encode_object(orjson.dumps(obj)))
    return b'{"type":"BOOKMARK","object":' + orjson.dumps(obj) + b"}\n"


def _error_event(exc: errors.KubeError, proto: bool = False) -> bytes:
    if proto:
        return protobuf.watch_frame("ERROR", protobuf.encode_status(exc.status()))
    return b'{"type":"ERROR","object":' + orjson.dumps(exc.status()) + b"}\n"


def _protobuf_event(etype: str, obj: Stored) -> bytes:
    try:
        return protobuf.watch_frame(etype, protobuf.encode_object(obj.raw))
    except errors.KubeError as exc:  # an object the tables cannot carry: say so in the stream
        return _error_event(exc, proto=True)


class HttpFrontend:
    """Builds the aiohttp application serving one ``Api``."""

    def __init__(self, api: Api, faults: Faults, *, bookmark_interval: float,
                 server_address: Callable[[], str], pod_io: PodIO | None = None) -> None:
        self.api = api
        self.faults = faults
        self.pod_io = pod_io or PodIO(api, lambda: None)
        self.bookmark_interval = bookmark_interval
        self._server_address = server_address
        self.request_counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            response = await self._dispatch(request)
        except errors.KubeError as exc:
            response = status_response(exc, request.headers.get("Accept"))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug here must still answer like an apiserver, and be visible
            log.exception("Request failed", method=request.method, path=request.path_qs)
            response = status_response(errors.generic(500, f"Internal error occurred: {exc}"))
        if log.is_debug():
            log.debug("Request", method=request.method, path=request.path_qs, code=response.status)
        return response

    # -- discovery -----------------------------------------------------------------------------------

    def _discovery(self, parts: list[str]) -> web.Response | None:
        registry = self.api.registry
        if parts in (["version"], ["version", ""]):
            return _json(discovery.KUBE_VERSION)
        if parts and parts[0] in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if parts == ["api"]:
            return _json(discovery.api_versions(self._server_address()))
        if parts == ["apis"]:
            return _json(discovery.api_group_list(registry))
        if len(parts) == 2 and parts[0] == "api":
            doc = discovery.resource_list(registry, "", parts[1])
            return _json(doc) if doc else None
        if len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(registry, parts[1])
            return _json(doc) if doc else None
        if len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(registry, parts[1], parts[2])
            return _json(doc) if doc else None
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi(parts[2:])
        return None

    def _openapi(self, gv: list[str]) -> web.Response | None:
        registry = self.api.registry
        if not gv:
            return _raw(openapi.root_document(registry))
        if len(gv) == 2 and gv[0] == "api":
            doc = openapi.group_version_document(registry, "", gv[1])
        elif len(gv) == 3 and gv[0] == "apis":
            doc = openapi.group_version_document(registry, gv[1], gv[2])
        else:
            doc = None
        return _raw(doc) if doc is not None else None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if request.method == "GET" and (len(parts) <= 3 or parts[0] not in ("api", "apis")):
            response = self._discovery(parts)
            if response is not None:
                self.request_counts[("discovery", request.path)] += 1
                await self.faults.before_request(None, "get")
                return response
        target = resolve(self.api.registry, request.path)
        if target is None:
            raise errors.path_not_found()
        if target.subresource == "scale" and target.name is not None:
            return await self._scale(request, target)
        if target.subresource in POD_SUBRESOURCES and target.name is not None:
            self.request_counts[(target.subresource, target.rt.plural)] += 1
            await self.faults.before_request(target.rt.plural, "get")
            return await self.pod_io.handle(request, target)
        verb = _verb(request, target)
        self.request_counts[(verb, target.rt.plural)] += 1
        await self.faults.before_request(target.rt.plural, verb)
        handler: Callable[[web.Request, Target], Awaitable[web.StreamResponse]] = getattr(self, f"_{verb}")
        return await handler(request, target)

    async def _scale(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        self.request_counts[("scale", target.rt.plural)] += 1
        await self.faults.before_request(target.rt.plural, "update" if request.method != "GET" else "get")
        if request.method == "GET":
            return _document(request, scaling.scale_of(self.api.get(target.rt, target.namespace, target.name)))
        if request.method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed(request.method)
        body, content_type = await request.read(), request.headers.get("Content-Type", "")
        if request.method == "PUT" and protobuf.is_protobuf(content_type):
            body, content_type = orjson.dumps(protobuf.decode_scale(body)), _JSON
        return _document(request, scaling.update_scale(self.api, target.rt, target.namespace, target.name,
                                                       request.method, content_type, body))

    # -- reads ---------------------------------------------------------------------------------------

    def _render_one(self, request: web.Request, rt: ResourceType, stored: Stored, status: int = 200
                    ) -> web.Response:
        if tables.wants_table(request.headers.get("Accept", "")):
            include = request.query.get("includeObject", "Metadata")
            return _raw(tables.table(rt, (stored,), {"resourceVersion": str(stored.rv)}, include), status)
        return _encoded(request, stored.raw, status)

    async def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        stored = self.api.get(target.rt, target.namespace, target.name)
        return self._render_one(request, target.rt, stored)

    async def _wait_fresh(self, rv: str | None) -> None:
        if rv and rv.isdigit() and int(rv) > self.api.store.resource_version:
            await self.api.store.wait_for_rv(int(rv), _FRESHNESS_WAIT)

    async def _list(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        rt = target.rt
        labels, fields = _selectors(q, rt)
        rv = q.get("resourceVersion")
        await self._wait_fresh(rv)
        result = self.api.list(rt, target.namespace, rv=rv, match=q.get("resourceVersionMatch"),
                               limit=_int(q, "limit"), continue_token=q.get("continue"),
                               labels=labels, fields=fields)
        meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if result.remaining:
            meta["remainingItemCount"] = result.remaining
        if tables.wants_table(request.headers.get("Accept", "")):
            return _raw(tables.table(rt, result.items, meta, q.get("includeObject", "Metadata")))
        if protobuf.wants_protobuf(request.headers.get("Accept")):
            return web.Response(body=protobuf.encode_list(rt.api_version, rt.list_kind, meta,
                                                          [s.raw for s in result.items]),
                                content_type=protobuf.PROTOBUF)
        head = (b'{"kind":"' + rt.list_kind.encode() + b'","apiVersion":"' + rt.api_version.encode()
                + b'","metadata":' + orjson.dumps(meta) + b',"items":[')
        return _raw(head + b",".join([s.raw for s in result.items]) + b"]}")

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        rt = target.rt
        labels, fields = _selectors(q, rt)
        if target.name is not None:  # the deprecated /watch/.../<name> form
            fields = parse_field_selector(f"metadata.name={target.name}")
        timeout = _int(q, "timeoutSeconds")
        bookmarks = _bool(q, "allowWatchBookmarks")
        initial_events = _bool(q, "sendInitialEvents")
        rv = q.get("resourceVersion")
        if initial_events and (q.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            raise errors.KubeError(422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: "
                                   "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                                   "NotOlderThan and allowWatchBookmarks to true")
        render = None
        proto = protobuf.wants_protobuf(request.headers.get("Accept"))
        content_type = protobuf.PROTOBUF_WATCH if proto else _JSON
        if proto:
            if not protobuf.has_schema(rt):
                raise protobuf.not_acceptable(f"the emulator has no protobuf schema for {rt.group_kind}")
            render = _protobuf_event
        elif tables.wants_table(request.headers.get("Accept", "")):
            include = q.get("includeObject", "Metadata")

            def render(etype: str, obj: Stored) -> bytes:
                return tables.table_event(rt, etype, obj, include)

        watcher = Watcher(target.namespace, labels, fields, render)
        response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        if self.faults.take_expired_watch():
            expired = errors.too_old_resource_version(int(rv) if rv and rv.isdigit() else 0,
                                                      self.api.store.resource_version)
            await response.prepare(request)
            await response.write(_error_event(expired, proto))
            await response.write_eof()
            return response
        await self._wait_fresh(rv)
        store = self.api.store
        try:
            self.api.watch(rt, watcher, None if initial_events else rv)
        except errors.KubeError as exc:
            # Like kube-apiserver, a watch that cannot start is a 200 with one ERROR event.
            await response.prepare(request)
            await response.write(_error_event(exc, proto))
            await response.write_eof()
            return response
        if initial_events:
            watcher.push(_bookmark(rt, store.resource_version, initial_end=True, proto=proto))
        try:
            await response.prepare(request)
            await self._stream(request, response, rt, watcher, timeout, bookmarks, proto)
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away
        finally:
            store.unsubscribe(rt, watcher)
            watcher.close()
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, rt: ResourceType,
                      watcher: Watcher, timeout_seconds: int, bookmarks: bool, proto: bool = False) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds else None
        interval = self.bookmark_interval
        next_bookmark = loop.time() + interval if bookmarks and interval > 0 else None
        store = self.api.store
        while True:
            if watcher.pending:
                await self.faults.wait_running()
                await response.write(watcher.take())
            if watcher.closed and not watcher.pending:
                break
            # Checked even while events keep flowing, so a busy stream still times out and bookmarks.
            now = loop.time()
            if deadline is not None and now >= deadline:
                break
            if next_bookmark is not None and now >= next_bookmark:
                watcher.push(_bookmark(rt, store.resource_version, proto=proto))
                next_bookmark = now + interval
            if watcher.pending:
                continue
            wait = _IDLE_CHECK
            for moment in (deadline, next_bookmark):
                if moment is not None:
                    wait = min(wait, moment - now)
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    await watcher.wakeup.wait()
            except TimeoutError:
                transport = request.transport
                if transport is None or transport.is_closing():
                    return
        await response.write_eof()

    # -- writes --------------------------------------------------------------------------------------

    async def _create(self, request: web.Request, target: Target) -> web.StreamResponse:
        body = _body(request, target.rt, await request.read())
        stored = self.api.create(target.rt, target.namespace, body, dry_run=_dry_run(request))
        return self._render_one(request, target.rt, stored, 201)

    async def _update(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        body = _body(request, target.rt, await request.read())
        stored = self.api.update(target.rt, target.namespace, target.name, body,
                                 subresource=target.subresource, dry_run=_dry_run(request))
        return self._render_one(request, target.rt, stored)

    async def _patch(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        stored, created = self.api.patch(
            target.rt, target.namespace, target.name, request.headers.get("Content-Type", ""),
            await request.read(), subresource=target.subresource, dry_run=_dry_run(request),
            field_manager=request.query.get("fieldManager"))
        return self._render_one(request, target.rt, stored, 201 if created else 200)

    async def _delete_options(self, request: web.Request) -> tuple[dict[str, Any], bool, int | None]:
        dry_run = _dry_run(request)
        raw = await request.read()
        options: Any = {}
        if protobuf.is_protobuf(request.headers.get("Content-Type")) and raw:
            options = protobuf.decode_delete_options(raw)
        elif raw.strip():
            options = parse_body(raw)
        if not isinstance(options, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        if options.get("dryRun"):
            dry_run = True
        pre = options.get("preconditions")
        grace = options.get("gracePeriodSeconds", request.query.get("gracePeriodSeconds"))
        return (pre if isinstance(pre, dict) else {}), dry_run, None if grace is None else int(grace)

    def _deleted_response(self, request: web.Request, rt: ResourceType, deletion: Deletion) -> web.Response:
        status = 200 if deletion.finished else 202
        if rt.returns_deleted_object or not deletion.finished:
            return _encoded(request, deletion.obj.raw, status)
        meta = orjson.loads(deletion.obj.raw)["metadata"]
        details: dict[str, Any] = {"name": meta["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = meta.get("uid", "")
        doc = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        if protobuf.wants_protobuf(request.headers.get("Accept")):
            return web.Response(body=protobuf.encode_status(doc), status=status, content_type=protobuf.PROTOBUF)
        return _json(doc, status)

    async def _delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        preconditions, dry_run, grace = await self._delete_options(request)
        deletion = self.api.delete(target.rt, target.namespace, target.name, preconditions=preconditions,
                                   dry_run=dry_run, grace_period_seconds=grace)
        return self._deleted_response(request, target.rt, deletion)

    async def _deletecollection(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        try:
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(q.get("fieldSelector"), (target.rt.group, target.rt.kind))
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        _, dry_run, grace = await self._delete_options(request)
        rt = target.rt
        listed = self.api.list(rt, target.namespace, labels=labels, fields=fields)
        deleted = [self.api.delete(rt, s.key[0] or None, s.key[1], dry_run=dry_run, grace_period_seconds=grace).obj
                   for s in listed.items]
        rv = {"resourceVersion": str(self.api.store.resource_version)}
        if protobuf.wants_protobuf(request.headers.get("Accept")):
            return web.Response(body=protobuf.encode_list(rt.api_version, rt.list_kind, rv, [s.raw for s in deleted]),
                                content_type=protobuf.PROTOBUF)
        meta = orjson.dumps(rv)
        return _raw(b'{"kind":"' + rt.list_kind.encode() + b'","apiVersion":"' + rt.api_version.encode()
                    + b'","metadata":' + meta + b',"items":[' + b",".join(s.raw for s in deleted) + b"]}")
