"""``pods/log`` and ``pods/exec``: what kube-apiserver proxies to the kubelet of a pod's node, answered here
through the attached ``NodeRuntime`` (``_node``).

Logs: ``container``, ``previous``, ``follow``, ``tailLines``, ``limitBytes``; plain text, streamed while
the container runs when following. Exec: WebSocket subprotocols ``v5.channel.k8s.io`` (what kubectl and
client-go speak) and ``v4.channel.k8s.io``: binary messages whose first byte is the channel (0 stdin,
1 stdout, 2 stderr, 3 the final ``Status``, 4 resize; v5's 255 closes a channel, i.e. stdin). SPDY is
not served: a non-WebSocket exec request gets the API server's ``Upgrade request required``.
Checks (pod, container, node) and their messages follow ``pkg/registry/core/pod/strategy.go``; with no
runtime attached the answer is the API server's when the kubelet cannot be dialed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from apiserver._logging import get_logger
from localmesh.kubesim import _errors as errors
from localmesh.kubesim._api import Api
from localmesh.kubesim._node import ContainerNotFoundError, NodeRuntime
from localmesh.kubesim._routing import Target

log = get_logger(__name__)

Obj = dict[str, Any]
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_KUBELET_PORT = 10250
# How often a followed log file is checked for growth.
_FOLLOW_POLL = 0.1
_TRUE = ("1", "t", "T", "true", "TRUE", "True")


def _flag(query: Any, name: str) -> bool:
    return query.get(name, "") in _TRUE


def _container(pod: Obj, name: str | None) -> str:
    """validateContainer: the named container, or the only one."""
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    others = [str(c.get("name")) for group in ("initContainers", "ephemeralContainers")
              for c in spec.get(group) or []]
    pod_name = pod["metadata"]["name"]
    if not name:
        if len(names) == 1:
            return names[0]
        choices = " ".join(names)
        if others:
            raise errors.bad_request(f"a container name must be specified for pod {pod_name}, choose one of: "
                                     f"[{choices}] or one of the init containers: [{' '.join(others)}]")
        raise errors.bad_request(f"a container name must be specified for pod {pod_name}, choose one of: "
                                 f"[{choices}]")
    if name not in names and name not in others:
        raise errors.bad_request(f"container {name} is not valid for pod {pod_name}")
    return name


def _unreachable(pod: Obj, path: str) -> errors.KubeError:
    node = pod["spec"].get("nodeName", "")
    return errors.KubeError(500, "", f'Get "https://{node}:{_KUBELET_PORT}/{path}": dial tcp {node}:'
                                     f'{_KUBELET_PORT}: connect: connection refused')


def _tail(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b"" if lines == 0 else data
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def _size(path: Path) -> int:
    return path.stat().st_size


def _read_from(path: Path, offset: int) -> bytes:
    """What the file holds after ``offset`` (nothing if it is gone)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def exit_status(code: int, argv: list[str]) -> Obj:
    """The Status kubelet sends on the error channel when a command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(argv)}], exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


class PodIO:
    """Serves the two subresources for one emulator; ``runtime`` returns the attached node runtime."""

    def __init__(self, api: Api, runtime: Callable[[], NodeRuntime | None]) -> None:
        self.api = api
        self.runtime = runtime

    def _pod(self, target: Target) -> Obj:
        assert target.name is not None
        pod: Obj = orjson.loads(self.api.get(target.rt, target.namespace, target.name).raw)
        return pod

    async def handle(self, request: web.Request, target: Target) -> web.StreamResponse:
        if target.subresource == "log":
            if request.method != "GET":
                raise errors.method_not_allowed(request.method)
            return await self.logs(request, target)
        if request.method not in ("GET", "POST"):
            raise errors.method_not_allowed(request.method)
        return await self.exec(request, target)

    # -- logs -----------------------------------------------------------------------------------------

    async def logs(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        pod = self._pod(target)
        container = _container(pod, q.get("container"))
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        runtime = self.runtime()
        if not pod["spec"].get("nodeName"):
            return web.Response(body=b"", content_type="text/plain")  # no host yet: an empty log
        if runtime is None:
            raise _unreachable(pod, f"containerLogs/{namespace}/{name}/{container}")
        previous = _flag(q, "previous")
        try:
            path = runtime.log_file(namespace, name, container, previous=previous)
        except ContainerNotFoundError as exc:
            raise errors.bad_request(str(exc)) from None
        tail = int(q["tailLines"]) if q.get("tailLines", "").lstrip("-").isdigit() else -1
        limit = int(q["limitBytes"]) if q.get("limitBytes", "").isdigit() else 0
        data = await asyncio.to_thread(path.read_bytes)
        data = _tail(data, tail)
        if limit:
            data = data[:limit]
        if not _flag(q, "follow") or previous:
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain", "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(data)
            await self._follow(request, response, runtime, path, (namespace, name, container), limit - len(data)
                               if limit else 0)
            await response.write_eof()
        return response

    async def _follow(self, request: web.Request, response: web.StreamResponse, runtime: NodeRuntime,
                      path: Path, where: tuple[str, str, str], budget: int) -> None:
        """Send what is appended to ``path`` until the container stops (then drain) or the client goes;
        ``budget`` > 0: at most that many more bytes (limitBytes)."""
        limited = budget > 0
        offset = await asyncio.to_thread(_size, path)
        while not (limited and budget <= 0):
            running = runtime.is_running(*where)
            chunk = await asyncio.to_thread(_read_from, path, offset)
            if chunk:
                offset += len(chunk)
                if limited:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                await response.write(chunk)
                continue
            if not running:
                return
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(_FOLLOW_POLL)

    # -- exec -----------------------------------------------------------------------------------------

    async def exec(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        pod = self._pod(target)
        container = _container(pod, q.get("container"))
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if not pod["spec"].get("nodeName"):
            raise errors.bad_request(f"pod {name} does not have a host assigned")
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise errors.bad_request(f"cannot exec into a container in a completed pod; current phase is {phase}")
        argv = q.getall("command", [])
        runtime = self.runtime()
        if runtime is None:
            node = pod["spec"]["nodeName"]
            raise errors.KubeError(500, "", f"error dialing backend: dial tcp {node}:{_KUBELET_PORT}: connect: "
                                            f"connection refused")
        ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, max_msg_size=0)
        ready = ws.can_prepare(request)
        if not ready.ok:
            # A SPDY request (kubectl's fallback after a refused WebSocket): it gets the reason the
            # WebSocket was refused for, else that only WebSockets are served.
            if not runtime.is_running(namespace, name, container):
                raise errors.bad_request(f'container not found ("{container}")')
            raise errors.bad_request("Upgrade request required")
        if ready.protocol is None:
            offered = request.headers.get("Sec-WebSocket-Protocol", "")
            raise errors.bad_request(f"unable to upgrade: unsupported subprotocols {offered!r}; supported: "
                                     f"{', '.join(PROTOCOLS)}")
        if not argv:
            raise errors.bad_request("you must specify at least 1 command")
        stdin, tty = _flag(q, "stdin"), _flag(q, "tty")
        try:
            proc = await runtime.exec(namespace, name, container, argv, stdin=stdin, tty=tty)
        except ContainerNotFoundError as exc:
            raise errors.bad_request(str(exc)) from None
        except (FileNotFoundError, PermissionError) as exc:
            failure = (f"Internal error occurred: error executing command in container: failed to exec in "
                       f"container: exec: \"{argv[0]}\": {exc.strerror or exc}")
            await ws.prepare(request)
            await ws.send_bytes(bytes([ERROR]) + orjson.dumps(
                {"metadata": {}, "status": "Failure", "message": failure, "reason": "InternalError",
                 "code": 500}))
            await ws.close()
            return ws
        await ws.prepare(request)
        await self._stream(ws, proc, argv, v5=ws.ws_protocol == PROTOCOLS[0],
                           want_stdout=_flag(q, "stdout"), want_stderr=_flag(q, "stderr"))
        return ws

    async def _stream(self, ws: web.WebSocketResponse, proc: asyncio.subprocess.Process, argv: list[str], *,
                      v5: bool, want_stdout: bool, want_stderr: bool) -> None:
        send_lock = asyncio.Lock()

        async def pump(reader: asyncio.StreamReader | None, channel: int, wanted: bool) -> None:
            if reader is None:
                return
            while chunk := await reader.read(65536):
                if wanted and not ws.closed:
                    async with send_lock:
                        await ws.send_bytes(bytes([channel]) + chunk)

        async def feed() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                data: bytes = msg.data
                if v5 and data[0] == CLOSE and len(data) == 2 and data[1] == STDIN:
                    if proc.stdin is not None:
                        proc.stdin.close()
                elif data[0] == STDIN and proc.stdin is not None and not proc.stdin.is_closing():
                    proc.stdin.write(data[1:])
                    with contextlib.suppress(ConnectionError):
                        await proc.stdin.drain()
                # RESIZE: no terminal to resize (tty is passed to the runtime as asked).

        reader = asyncio.create_task(feed())
        try:
            await asyncio.gather(pump(proc.stdout, STDOUT, want_stdout), pump(proc.stderr, STDERR, want_stderr))
            code = await proc.wait()
            if not ws.closed:
                async with send_lock:
                    await ws.send_bytes(bytes([ERROR]) + orjson.dumps(exit_status(code, argv)))
                await ws.close()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await reader
            if proc.returncode is None:  # the client went away first
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
