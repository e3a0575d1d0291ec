"""Kubernetes client configuration: the ``--k8s-*`` flags and building the ``ApiClient``.

Where the API server comes from, in order (as upstream's client does):

1. ``--k8s-kubeconfig-path``: that kubeconfig's current context (``load_kube_config`` is a coroutine);
2. in a pod (``KUBERNETES_SERVICE_HOST``/``PORT`` set): the service account (token re-read when it
   rotates, via kubernetes-asyncio's refresh hook);
3. ``--k8s-api-server-urls`` alone: that URL with no credentials (e.g. a local insecure port).

``--k8s-api-server-urls`` also overrides the server URL of 1 and 2 (keeping their credentials).
Only the first URL is used. ``build_client`` raises ``KubeConfigError`` with a message naming the
flags when nothing is configured.

Rate limit: upstream defaults are ``--k8s-client-qps 10 --k8s-client-burst 20``. We default to
50/100 because our reflectors rate-limit every list *page*: 100k objects in pages of 500 are 200
requests, 9 s of waiting at 10 qps versus none at a burst of 100. A watch holds no token.
``--k8s-client-qps 0`` disables the limit.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from apiserver import __version__
from apiserver._logging import get_logger
from apiserver._tokenbucket import TokenBucket
from apiserver.goflags import CommaListAction, go_duration
from apiserver.kube._cache import KubeObject
from apiserver.kube._k8s_import import ConfigException, k8s_client, k8s_config
from apiserver.kube.reflector import (
    BatchHandler,
    CacheKind,
    ObjectHandler,
    Reflector,
    ReflectorMetrics,
    ReflectorOptions,
)
from apiserver.kube.resources import APIResource, label_selector_for

log = get_logger(__name__)

DEFAULT_QPS = 50.0
DEFAULT_BURST = 100
USER_AGENT = f"clustermesh-apiserver-py/{__version__}"


class KubeConfigError(Exception):
    """No usable Kubernetes API configuration."""


@dataclass(frozen=True, slots=True)
class KubeOptions:
    kubeconfig_path: str = ""
    api_server_urls: tuple[str, ...] = ()
    qps: float = DEFAULT_QPS
    burst: int = DEFAULT_BURST
    connection_timeout: float = 30.0
    # Accepted for compatibility; TCP keepalive is the kernel's, dead watches are caught by the
    # reflector's idle timeout.
    keep_alive: float = 30.0
    heartbeat_timeout: float = 30.0  # bound of one /version health check
    service_proxy_name: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> KubeOptions:
        return cls(
            kubeconfig_path=args.k8s_kubeconfig_path,
            api_server_urls=tuple(args.k8s_api_server_urls),
            qps=args.k8s_client_qps,
            burst=args.k8s_client_burst,
            connection_timeout=args.k8s_client_connection_timeout,
            keep_alive=args.k8s_client_connection_keep_alive,
            heartbeat_timeout=args.k8s_heartbeat_timeout,
            service_proxy_name=args.k8s_service_proxy_name,
        )


def add_kube_flags(parser: argparse.ArgumentParser) -> None:
    """The upstream Kubernetes client flags (``KubeOptions.from_args`` reads them back)."""
    parser.add_argument("--k8s-kubeconfig-path", default="", metavar="PATH",
                        help="Absolute path of the kubernetes kubeconfig file")
    parser.add_argument("--k8s-api-server-urls", action=CommaListAction, default=[], metavar="URLS",
                        help="Kubernetes API server URLs (the first one is used)")
    parser.add_argument("--k8s-client-qps", type=float, default=DEFAULT_QPS,
                        help=f"Queries per second limit for the K8s client (default {DEFAULT_QPS:g}; "
                             "0 disables the limit)")
    parser.add_argument("--k8s-client-burst", type=int, default=DEFAULT_BURST,
                        help=f"Burst value allowed for the K8s client (default {DEFAULT_BURST})")
    parser.add_argument("--k8s-client-connection-timeout", type=go_duration, default=30.0,
                        metavar="DURATION", help="Timeout of a connection to the API server (default 30s)")
    parser.add_argument("--k8s-client-connection-keep-alive", type=go_duration, default=30.0,
                        metavar="DURATION", help="Accepted for compatibility (default 30s)")
    parser.add_argument("--k8s-heartbeat-timeout", type=go_duration, default=30.0, metavar="DURATION",
                        help="Timeout of an API server health check (default 30s)")
    parser.add_argument("--k8s-service-proxy-name", default="",
                        help="Value of the service.kubernetes.io/service-proxy-name label of the "
                             "services we handle (empty: those without the label)")


@dataclass
class KubeClient:
    """An ``ApiClient`` plus what our reflectors share: the rate limiter and the options."""

    api_client: Any  # kubernetes_asyncio.client.ApiClient
    options: KubeOptions
    rate_limiter: TokenBucket = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limiter = TokenBucket(self.options.qps, self.options.burst)

    @property
    def host(self) -> str:
        host: str = self.api_client.configuration.host
        return host

    def reflector(self, resource: APIResource, handler: ObjectHandler | BatchHandler | None = None, *,
                  label_selector: str | None = None, options: ReflectorOptions | None = None,
                  metrics: ReflectorMetrics | None = None, cache: CacheKind = "objects",
                  transform: Callable[[KubeObject], KubeObject] | None = None) -> Reflector:
        """A reflector sharing this client's rate limiter and connection timeout; the label
        selector defaults to upstream's for the resource (service-proxy-name rule).
        ``cache`` and ``transform`` (when ``options`` is not given): see ``ReflectorOptions``."""
        if label_selector is None:
            label_selector = label_selector_for(resource, self.options.service_proxy_name)
        if options is None:
            options = ReflectorOptions(connect_timeout=self.options.connection_timeout,
                                       cache=cache, transform=transform)
        return Reflector(self.api_client, resource, handler, label_selector=label_selector,
                         options=options, rate_limiter=self.rate_limiter, metrics=metrics)

    async def close(self) -> None:
        await self.api_client.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise KubeConfigError(f"invalid --k8s-api-server-urls entry {url!r}: expected http(s)://host[:port]")
    return url.rstrip("/")


def _require_file(path: str) -> None:
    # The library's own message for a missing file ("no configuration found") hides the cause.
    if not os.path.isfile(path):
        raise KubeConfigError(f"--k8s-kubeconfig-path {path}: no such file")


def in_cluster(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST") and environ.get("KUBERNETES_SERVICE_PORT"))


async def load_configuration(options: KubeOptions, environ: Mapping[str, str] = os.environ) -> Any:
    """A ``kubernetes_asyncio.client.Configuration`` for ``options`` (see the module docstring)."""
    server = _check_url(options.api_server_urls[0]) if options.api_server_urls else ""
    if len(options.api_server_urls) > 1:
        log.info("Several API server URLs given, using the first", url=server,
                 ignored=",".join(options.api_server_urls[1:]))
    cfg = k8s_client.Configuration()
    if options.kubeconfig_path:
        _require_file(options.kubeconfig_path)
        try:
            # persist_config=False: never write refreshed credentials back into the user's file.
            await k8s_config.load_kube_config(config_file=options.kubeconfig_path,
                                              client_configuration=cfg, persist_config=False)
        except (ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
            raise KubeConfigError(f"--k8s-kubeconfig-path {options.kubeconfig_path}: {exc}") from exc
        source = "kubeconfig"
    elif in_cluster(environ):
        try:
            k8s_config.load_incluster_config(client_configuration=cfg, environ=environ)
        except ConfigException as exc:
            raise KubeConfigError(f"in-cluster Kubernetes configuration: {exc}") from exc
        source = "in-cluster"
    elif server:
        source = "api-server-url"
    else:
        raise KubeConfigError(
            "no Kubernetes API configured: pass --k8s-kubeconfig-path or --k8s-api-server-urls, "
            "or run in a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set)")
    if server:
        cfg.host = server
    log.info("Kubernetes client configured", source=source, host=cfg.host)
    return cfg


async def build_client(options: KubeOptions, environ: Mapping[str, str] = os.environ) -> KubeClient:
    """Load the configuration and open the client; close it with ``await client.close()``."""
    cfg = await load_configuration(options, environ)
    api = k8s_client.ApiClient(configuration=cfg)
    api.user_agent = USER_AGENT
    return KubeClient(api, options)
