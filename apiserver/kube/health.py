"""API server reachability check for ``/healthz`` (a GET of ``/version``)."""

from __future__ import annotations

from typing import Any

from apiserver.kube._http import KubeAPIError, KubeHTTP


async def check_api(api_client: Any, *, request_timeout: float = 30.0) -> None:
    """Return if the API server answers ``GET /version`` with a version document, else raise
    (``KubeAPIError`` for an HTTP error, ``TimeoutError``/``aiohttp.ClientError`` for transport
    trouble). Not rate-limited: a health probe must not queue behind a relist."""
    doc = await KubeHTTP(api_client, connect_timeout=request_timeout).get_json(
        "/version", read_timeout=request_timeout)
    if not isinstance(doc, dict) or "gitVersion" not in doc:
        raise KubeAPIError(0, "InvalidResponse", f"/version returned no gitVersion: {str(doc)[:200]}")
