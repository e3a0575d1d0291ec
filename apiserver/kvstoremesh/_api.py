"""KVStoreMesh REST API (``--api-serve-addr``): ``GET /v1/cluster`` -> JSON array of ``RemoteCluster``.

It only reads the status the mesh publishes; ``kvstoremesh-dbg status`` and ``cilium clustermesh
status`` consume it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
from aiohttp import web

from apiserver.kvstoremesh._status import RemoteClusterStatus, status_to_json
from apiserver.server import HttpServer, parse_listen_address

CLUSTER_PATH = "/v1/cluster"

StatusSource = Callable[[], Sequence[RemoteClusterStatus]]


def render_clusters(clusters: Sequence[RemoteClusterStatus]) -> bytes:
    return orjson.dumps([status_to_json(c) for c in clusters])


class APIServer(HttpServer):
    def __init__(self, addr: str, status: StatusSource) -> None:
        self._status = status
        app = web.Application()
        app.router.add_get(CLUSTER_PATH, self._handle_cluster)
        host, port = parse_listen_address(addr)
        super().__init__(app, host, port, "kvstoremesh-api")

    async def _handle_cluster(self, request: web.Request) -> web.Response:
        return web.Response(body=render_clusters(self._status()), content_type="application/json")
