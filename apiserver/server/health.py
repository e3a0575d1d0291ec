"""Kubelet probes: ``GET /readyz`` (200 ``Ready`` / 500 ``NotReady``) and ``GET /healthz``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from apiserver.server._http import HttpServer

ReadyCheck = Callable[[], bool]
HealthCheck = Callable[[], Awaitable[str | None]]  # None when healthy, else the reason

HEALTH_CHECK_TIMEOUT = 5.0


class HealthServer(HttpServer):
    def __init__(self, port: int, ready: ReadyCheck, healthy: HealthCheck | None = None,
                 host: str = "") -> None:
        self._ready = ready
        self._healthy = healthy
        app = web.Application()
        app.router.add_get("/readyz", self._handle_readyz)
        app.router.add_get("/healthz", self._handle_healthz)
        super().__init__(app, host, port, "health")

    async def _handle_readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="Ready")
        return web.Response(status=500, text="NotReady")

    async def _handle_healthz(self, request: web.Request) -> web.Response:
        if self._healthy is None:
            return web.Response(text="ok")
        try:
            async with asyncio.timeout(HEALTH_CHECK_TIMEOUT):
                reason = await self._healthy()
        except TimeoutError:
            reason = f"health check timed out after {HEALTH_CHECK_TIMEOUT:g}s"
        except Exception as exc:  # the probe reports any failure; it must never crash
            reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            return web.Response(text="ok")
        return web.Response(status=500, text=reason)
