"""gRPC channels to etcd: endpoint parsing, channel options, upstream method paths, and switching to
a fresh channel (next endpoint, freshly read TLS files) after a connection failure.

The protobuf package of our generated messages is not upstream's (see ``proto/etcd_rpc.proto``),
so method paths are built here from the service descriptors with upstream's package name.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.kvstore._backend import UnavailableError
from apiserver.kvstore.etcd.config import EtcdConfig, EtcdConfigError
from apiserver.kvstore.etcd.tls import load_tls_material
from apiserver.kvstore.proto import etcd_rpc_pb2 as pb

log = get_logger(__name__)

UPSTREAM_PACKAGE = "etcdserverpb"
DEFAULT_PORT = 2379
# In-flight calls on a replaced channel get this long to finish before the channel is closed.
_RETIRE_GRACE = 2.0


@dataclass(frozen=True, slots=True)
class Method:
    path: str
    response: Any  # the generated response message class


def _method_table() -> dict[str, Method]:
    table = {}
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            response = getattr(pb, method.output_type.name)
            table[f"{service.name}.{method.name}"] = Method(
                f"/{UPSTREAM_PACKAGE}.{service.name}/{method.name}", response)
    return table


METHODS = _method_table()


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    target: str  # what grpc dials
    secure: bool
    server_name: str = ""  # set when ``target`` is a host alias' IP: the name the certificate must carry


def parse_endpoint(url: str, *, tls_configured: bool) -> Endpoint:
    """``http(s)://host[:port]``, ``unix(s)://path`` or a bare ``host:port`` (TLS if TLS files are set).
    As in etcd's Go client, the scheme decides: ``http://`` stays plaintext even with TLS files."""
    default_scheme = "https" if tls_configured else "http"
    parts = urlsplit(url if "://" in url else f"{default_scheme}://{url}")
    scheme = parts.scheme.lower()
    if scheme in ("unix", "unixs"):
        return Endpoint(url, f"unix:{parts.netloc}{parts.path}", scheme == "unixs")
    if scheme not in ("http", "https"):
        raise EtcdConfigError(f"etcd endpoint {url!r}: unsupported scheme {parts.scheme!r}")
    if not parts.hostname:
        raise EtcdConfigError(f"etcd endpoint {url!r}: missing host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise EtcdConfigError(f"etcd endpoint {url!r}: invalid port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Endpoint(url, f"{host}:{port}", scheme == "https")


def resolve_aliases(endpoint: Endpoint, aliases: Mapping[str, Sequence[str]]) -> list[Endpoint]:
    """One endpoint per IP of the endpoint host's alias (in order), or the endpoint itself."""
    host = urlsplit(endpoint.url if "://" in endpoint.url else f"https://{endpoint.url}").hostname or ""
    ips = aliases.get(host)
    if not ips or endpoint.target.startswith("unix:"):
        return [endpoint]
    port = endpoint.target.rsplit(":", 1)[1]
    return [Endpoint(endpoint.url, f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}", endpoint.secure, host)
            for ip in ips]


def channel_options(config: EtcdConfig) -> list[tuple[str, Any]]:
    return [
        ("grpc.keepalive_time_ms", int(config.grpc_keepalive_interval * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout * 1000)),
        # grpc core closes a transport whose ping stays unanswered after this long (default one
        # minute); the keepalive timeout alone does not close a connection to a peer that accepts
        # but never answers (a partition) while calls are in flight: they would wait for their
        # deadline instead of failing over.
        ("grpc.http2.ping_timeout_ms", int(config.keepalive_timeout * 1000)),
        # etcd sends GOAWAY (too_many_pings) for pings without an open stream...
        ("grpc.keepalive_permit_without_calls", 0),
        # ...but an idle watch stream must keep being probed, or a dead peer goes unnoticed.
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1),
        ("grpc.enable_retries", 0),  # retries are ours: only idempotent calls may be resent
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000),
        ("grpc.min_reconnect_backoff_ms", int(config.dial_timeout * 1000)),  # also the connect timeout
        # A private subchannel pool: a replacement channel must really dial again (new TLS files).
        ("grpc.use_local_subchannel_pool", 1),
    ]


class Connection:
    """One grpc.aio channel to one endpoint, with lazily bound method callables."""

    def __init__(self, endpoint: Endpoint, channel: grpc.aio.Channel, generation: int) -> None:
        self.endpoint = endpoint
        self.channel = channel
        self.generation = generation
        self.retired = False
        self.was_ready = False
        self._unary: dict[str, Any] = {}
        self._stream: dict[str, Any] = {}

    def unary(self, name: str) -> Any:
        return self._callable(self._unary, self.channel.unary_unary, name)

    def stream(self, name: str) -> Any:
        return self._callable(self._stream, self.channel.stream_stream, name)

    @staticmethod
    def _callable(cache: dict[str, Any], make: Callable[..., Any], name: str) -> Any:
        call = cache.get(name)
        if call is None:
            method = METHODS[name]
            # Requests are serialized by the caller (bytes pass through unchanged).
            call = cache[name] = make(method.path, request_serializer=None,
                                      response_deserializer=method.response.FromString)
        return call


def closed_under_call(conn: Connection) -> bool:
    """Whether a ``CancelledError`` just raised by a call on ``conn`` came from grpc because the
    channel was closed (replaced or client closed), rather than from cancelling our own task."""
    task = asyncio.current_task()
    return conn.retired and (task is None or task.cancelling() == 0)


class Transport:
    """The current connection, and its replacement after failures. Endpoints are tried in order."""

    def __init__(self, config: EtcdConfig) -> None:
        tls = config.trusted_ca_file is not None or config.cert_file is not None
        self.config = config
        aliases = dict(config.host_aliases)
        self.endpoints: Sequence[Endpoint] = [
            resolved for u in config.endpoints
            for resolved in resolve_aliases(parse_endpoint(u, tls_configured=tls), aliases)]
        self._index = 0
        self._generations = itertools.count(1)
        self._current: Connection | None = None
        self._retiring: dict[asyncio.Task[None], grpc.aio.Channel] = {}
        self._closed = False

    @property
    def endpoint(self) -> Endpoint:
        return self.endpoints[self._index]

    def _open(self) -> Connection:
        endpoint = self.endpoint
        options = channel_options(self.config)
        if endpoint.server_name:
            options += [("grpc.ssl_target_name_override", endpoint.server_name),
                        ("grpc.default_authority", endpoint.server_name)]
        if endpoint.secure:
            # Read from disk on every new channel: rotated certificates apply on reconnect.
            creds = load_tls_material(self.config).credentials()
            channel = grpc.aio.secure_channel(endpoint.target, creds, options=options)
        else:
            channel = grpc.aio.insecure_channel(endpoint.target, options=options)
        return Connection(endpoint, channel, next(self._generations))

    def current(self) -> Connection:
        if self._closed:
            raise UnavailableError("etcd client is closed")
        conn = self._current
        if conn is not None:
            # grpc reconnects a dropped connection by itself, with the credentials it was built
            # with. Replace the channel instead, so that the new connection reads fresh TLS files.
            if conn.channel.get_state(False) is grpc.ChannelConnectivity.READY:
                conn.was_ready = True
            elif conn.was_ready:
                log.info("etcd connection lost, dialing again", endpoint=conn.endpoint.url)
                self._replace()
                conn = None
        if conn is None:
            conn = self._current = self._open()
        return conn

    def use_endpoint(self, index: int) -> Connection:
        """Switch to ``endpoints[index]`` (used while connecting, to try them in order)."""
        if index != self._index or self._current is None:
            self._index = index
            self._replace()
        return self.current()

    def failed(self, conn: Connection) -> None:
        """``conn`` saw a connection failure: the next call uses a fresh channel to the next endpoint.
        Only the first report per connection counts, so a burst of failures switches once."""
        if conn is not self._current or self._closed:
            return
        self._index = (self._index + 1) % len(self.endpoints)
        log.info("Reconnecting to etcd", failed=conn.endpoint.url, next=self.endpoint.url)
        self._replace()

    def _replace(self) -> None:
        old, self._current = self._current, None
        if old is not None:
            old.retired = True
            task = asyncio.get_running_loop().create_task(old.channel.close(_RETIRE_GRACE))
            self._retiring[task] = old.channel
            task.add_done_callback(lambda t: self._retiring.pop(t, None))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        current, self._current = self._current, None
        if current is not None:
            current.retired = True
            await current.channel.close(None)
        retiring, self._retiring = dict(self._retiring), {}
        await cancel_and_wait(*retiring)
        for channel in retiring.values():
            await channel.close(None)
