"""``TcpProxy``: a loopback TCP proxy for network faults between a client and a server (etcd, its peers).

Faults, each switchable while connections are open:
- ``latency(up=, down=)``: every chunk is delivered that many seconds after it arrived, per direction
  (``up``: client to server, ``down``: server to client); order is kept, throughput is not limited;
- ``blackhole()``: a partition. Connections are still accepted, but nothing is forwarded either way,
  on new and established connections alike (unread bytes stay in the kernel's buffers, so the
  sender sees no acknowledgement beyond them, as across a lost link); ``heal()`` resumes forwarding.
  ``blackhole(matching=b"...")`` holds only the connections on which the client has sent those
  bytes (an HTTP header naming the dialer: every client connects from 127.0.0.1), from the
  chunk that carries them on (a kept-alive connection may carry an unnamed request first);
- ``refuse()``: new connections are closed at once (a port nobody listens on, to the client);
- ``reset()``: every established connection is aborted (both sides see a reset).

It never touches a socket it did not open. ``stop()`` (or leaving ``async with``) closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

__all__ = ["TcpProxy"]

_CHUNK = 65536
_RECENT = 2 * _CHUNK  # what ``blackhole(matching=...)`` looks at: the chunk read and the one before


class _Link:
    """One accepted connection and its upstream connection; two pumps, one per direction."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.recent = b""  # the last bytes the client sent, for ``blackhole(matching=...)``
        self.matched = False
        self.forwarding = asyncio.Event()

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``; see the module docstring."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay = {"up": 0.0, "down": 0.0}
        self.accepted = 0
        self._refusing = False
        self._held: bytes | None = None  # None: forward; b"": hold every link; else links whose head has it
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> TcpProxy:
        assert self._server is None, "proxy already started"
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        return self

    async def stop(self) -> None:
        self.reset()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "proxy not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._links)

    # ------------------------------------------------------------------ faults

    def latency(self, up: float = 0.0, down: float = 0.0) -> None:
        self.delay = {"up": up, "down": down}

    def blackhole(self, matching: bytes = b"") -> None:
        self._held = matching
        for link in self._links:
            self._gate(link)

    def heal(self) -> None:
        """Forward again, accept again, no added latency."""
        self._held = None
        self._refusing = False
        self.latency()
        for link in self._links:
            self._gate(link)

    def refuse(self) -> None:
        self._refusing = True

    def reset(self) -> None:
        for link in list(self._links):
            link.abort()
        self._links.clear()

    def cut(self) -> None:
        """Reset every connection and refuse new ones (the server went away)."""
        self.refuse()
        self.reset()

    def restore(self) -> None:
        self.heal()

    # ------------------------------------------------------------------ forwarding

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        self._gate(link)
        try:
            await link.forwarding.wait()  # a partition accepts, but nothing reaches the server
            up_reader, link.upstream = await asyncio.open_connection(self.target_host, self.target_port)
        except (OSError, asyncio.CancelledError):
            self._drop(link)
            return
        for direction, src, dst in (("up", reader, link.upstream), ("down", up_reader, writer)):
            task = asyncio.create_task(self._pump(link, direction, src, dst))
            link.tasks.add(task)

    async def _pump(self, link: _Link, direction: str, src: asyncio.StreamReader,
                    dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(link, queue, dst))
        try:
            while True:
                await link.forwarding.wait()
                data = await src.read(_CHUNK)
                if direction == "up":
                    link.recent = (link.recent + data)[-_RECENT:]
                    self._gate(link)
                await queue.put((loop.time() + self.delay[direction], data))
                if not data:
                    break
            await sender
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            self._drop(link)

    async def _send(self, link: _Link, queue: asyncio.Queue[tuple[float, bytes]],
                    dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if not data:
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await link.forwarding.wait()
            dst.write(data)
            await dst.drain()

    def _gate(self, link: _Link) -> None:
        if self._held is None:
            link.matched = False
        elif self._held and self._held in link.recent:
            link.matched = True
        if self._held == b"" or link.matched:
            link.forwarding.clear()
        else:
            link.forwarding.set()

    def _drop(self, link: _Link) -> None:
        """One side closed or failed: close both sides of the link."""
        if link in self._links:
            self._links.discard(link)
            for writer in (link.client, link.upstream):
                if writer is not None:
                    writer.close()
            current = asyncio.current_task()
            for task in link.tasks:
                if task is not current:
                    task.cancel()
