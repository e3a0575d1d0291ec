"""The API server as a pod reaches it: ``127.0.0.1:<port>`` inside the pod's network namespace,
forwarded to the API server's address on the host.

The listening socket is created by a short-lived thread that first enters the pod's network namespace
(network namespaces are per thread), so it belongs to the pod while the kubelet serves it from its own
event loop. Pods thus use the API server's own URL host and port, and its certificate (issued for
127.0.0.1) verifies. Kubernetes gives pods the ``kubernetes`` Service's ClusterIP instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading

from localmesh.kubelet._sys import CLONE_NEWNET, setns


def _listen_in(pid: int, port: int) -> socket.socket:
    result: list[socket.socket | BaseException] = []

    def target() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            sock.setblocking(False)
            result.append(sock)
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{pid}")
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class ApiProxy:
    def __init__(self, pid: int, upstream: tuple[str, int]) -> None:
        self._pid = pid
        self._upstream = upstream
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        sock = await asyncio.to_thread(_listen_in, self._pid, self._upstream[1])
        self._server = await asyncio.start_server(self._handle, sock=sock)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._tasks.discard(task)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()
