"""Raw HTTP GETs against the Kubernetes API through a kubernetes-asyncio ``ApiClient``.

The ApiClient supplies the server URL, TLS (CA, client certificates, server name), proxy and bearer
token (including the in-cluster token refresh hook); we send the request with ``call_api`` and
``_preload_content=False`` and read the aiohttp response ourselves, so no generated model is ever
built. Non-2xx answers become ``KubeAPIError`` carrying the ``Status`` reason and message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from apiserver._tokenbucket import TokenBucket
from apiserver.kube._gc import gc_paused

Query = Sequence[tuple[str, str]]
_AUTH = ["BearerToken"]
_HEADERS = {"Accept": "application/json"}


class KubeAPIError(Exception):
    """The API server answered with an error ``Status`` (HTTP error or watch ``ERROR`` event)."""

    def __init__(self, code: int, reason: str = "", message: str = "") -> None:
        super().__init__(f"{code} {reason}: {message}" if message else f"{code} {reason}")
        self.code = code
        self.reason = reason
        self.message = message

    @property
    def expired(self) -> bool:
        """410 Gone / ``Expired``: the resourceVersion or continue token is too old; relist."""
        return self.code == 410 or self.reason in ("Expired", "Gone")

    @property
    def too_large_resource_version(self) -> bool:
        """The server has not reached the resourceVersion we asked for (client-go's
        ``isTooLargeResourceVersionError``): it was restored or replaced and its versions went
        back; only a relist from its current state helps."""
        return "too large resource version" in self.message.lower()

    @classmethod
    def from_status(cls, status: Any, default_code: int = 0) -> KubeAPIError:
        """From a decoded ``Status`` object (anything else gives a generic error)."""
        if not isinstance(status, dict):
            return cls(default_code, "Unknown", repr(status)[:200])
        code = status.get("code")
        return cls(code if isinstance(code, int) else default_code,
                   str(status.get("reason") or ""), str(status.get("message") or ""))

    @classmethod
    def from_body(cls, code: int, body: bytes) -> KubeAPIError:
        try:
            status = orjson.loads(body)
        except orjson.JSONDecodeError:
            return cls(code, "", body[:200].decode("utf-8", "replace").strip())
        err = cls.from_status(status, code)
        # The HTTP status is authoritative; a Status body may omit or disagree on its code.
        err.code = code
        return err


def _timeout(connect: float, read: float | None) -> aiohttp.ClientTimeout:
    # ``connect`` also bounds waiting for a pooled connection; ``sock_read`` is per read, so it
    # works as an idle watchdog on a long stream without limiting the stream's total length.
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=read)


class KubeHTTP:
    """GET requests for one ApiClient; cheap to create, holds no connection of its own."""

    __slots__ = ("_api", "_connect_timeout", "_limiter")

    def __init__(self, api_client: Any, *, connect_timeout: float = 30.0,
                 rate_limiter: TokenBucket | None = None) -> None:
        self._api = api_client
        self._connect_timeout = connect_timeout
        self._limiter = rate_limiter

    async def _get(self, path: str, query: Query, read_timeout: float | None) -> aiohttp.ClientResponse:
        if self._limiter is not None:
            await self._limiter.acquire()
        resp: aiohttp.ClientResponse = await self._api.call_api(
            path, "GET", query_params=list(query), header_params=dict(_HEADERS),
            auth_settings=_AUTH, _preload_content=False,
            _request_timeout=_timeout(self._connect_timeout, read_timeout))
        return resp

    async def get_json(self, path: str, query: Query = (), *, read_timeout: float = 60.0) -> Any:
        """GET and decode a JSON document (a list page, ``/version``)."""
        resp = await self._get(path, query, read_timeout)
        try:
            body = await resp.read()
            if not 200 <= resp.status < 300:
                raise KubeAPIError.from_body(resp.status, body)
            with gc_paused():
                return orjson.loads(body)
        finally:
            resp.release()

    @asynccontextmanager
    async def stream(self, path: str, query: Query, *, idle_timeout: float) -> AsyncIterator[
            aiohttp.StreamReader]:
        """GET a streaming response (a watch); yields the body stream once the status is 2xx.

        Leaving the context closes the connection: a half-read watch cannot go back to the pool.
        """
        resp = await self._get(path, query, idle_timeout)
        try:
            if not 200 <= resp.status < 300:
                raise KubeAPIError.from_body(resp.status, await resp.read())
            yield resp.content
        finally:
            resp.close()
