"""Prometheus ``GET /metrics`` for one registry (``--prometheus-serve-addr``)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from apiserver.server._http import HttpServer, parse_listen_address


class MetricsServer(HttpServer):
    def __init__(self, addr: str, registry: CollectorRegistry) -> None:
        self._registry = registry
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        host, port = parse_listen_address(addr)
        super().__init__(app, host, port, "metrics")

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
