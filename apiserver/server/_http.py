"""A small aiohttp server with an explicit lifecycle: ``start()`` -> serving -> ``stop()``."""

from __future__ import annotations

from aiohttp import web

from apiserver._lifecycle import StartStop
from apiserver._logging import get_logger

log = get_logger(__name__)


def parse_listen_address(addr: str, default_host: str = "") -> tuple[str, int]:
    """``":9962"`` -> ("", 9962) (all addresses); ``"localhost:9889"``; ``"[::1]:80"``."""
    host, sep, port_text = addr.rpartition(":")
    if not sep:
        raise ValueError(f"invalid listen address {addr!r}: expected [host]:port")
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"invalid listen address {addr!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid listen address {addr!r}: port out of range")
    return host, port


class HttpServer(StartStop):
    """Serves one aiohttp application on one address until stopped.

    ``host=""`` listens on every address (IPv4 and IPv6), like Go's ``:port``.
    """

    def __init__(self, app: web.Application, host: str, port: int, name: str) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._name = name
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self._name} server is not started")
        return self._port

    @property
    def url(self) -> str:
        host = self._host or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError(f"{self._name} server already started")
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host or None, self._requested_port, reuse_address=True)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"{self._name} server cannot listen on "
                                     f"{self._host or '*'}:{self._requested_port}: {exc.strerror}") from exc
        self._runner = runner
        # The runner's public view of its listening sockets: (host, port[, flow, scope]) for TCP.
        ports = [address[1] for address in runner.addresses if isinstance(address, tuple)]
        self._port = ports[0] if ports else self._requested_port
        log.info("HTTP server started", server=self._name, address=f"{self._host or '*'}:{self._port}")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("HTTP server stopped", server=self._name)
