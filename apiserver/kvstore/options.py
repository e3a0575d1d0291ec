"""``--kvstore-opt``, parsed once into ``KVStoreOptions``. Pure: no I/O.

Every process parses its option map here, once, at start; the etcd connection
(``EtcdConfig.from_options``), the rate limiter (``APILimiter.from_options`` /
``for_batched_writes``) and KVStoreMesh's page size all read the typed object, never the map.

What is accepted follows upstream's ``pkg/kvstore/etcd.go`` (``newEtcdModule``: the key table
and its validators; ``newClient``: the defaults): every given key must be known; ``etcd.qps``,
``etcd.bootstrapQps``, ``etcd.maxInflight`` and ``etcd.limit`` are Go ``strconv.Atoi`` integers
(``+5`` is 5, ``2.5`` and the empty string are refused), the keepalives Go durations. Upstream's
zero values keep their meaning: ``etcd.qps=0`` no token bucket, ``etcd.bootstrapQps=0`` no
bootstrap rate, ``etcd.maxInflight=0`` as many as ``etcd.qps``, ``etcd.limit=0`` lists unpaged.
Two refusals go beyond upstream, each because upstream would misbehave rather than fail: a
negative integer (a negative rate or page size has no meaning; upstream's limiter would refuse
every request), and a keepalive that is not positive (gRPC's keepalive needs an interval).
Errors use upstream's words (``unknown kvstore configuration key``, ``invalid value for key``),
all of them in one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from apiserver.goflags import go_atoi, go_duration, go_quote
from apiserver.kvstore._backend import KVStoreError

__all__ = ["InvalidKVStoreOptions", "KVStoreOptions"]

OPT_CONFIG = "etcd.config"
OPT_ADDRESS = "etcd.address"
OPT_QPS = "etcd.qps"
OPT_BOOTSTRAP_QPS = "etcd.bootstrapQps"
OPT_MAX_INFLIGHT = "etcd.maxInflight"
OPT_LIMIT = "etcd.limit"
OPT_KEEPALIVE_HEARTBEAT = "etcd.keepaliveHeartbeat"
OPT_KEEPALIVE_TIMEOUT = "etcd.keepaliveTimeout"

DEFAULT_QPS = 20  # upstream defaults.KVstoreQPS
DEFAULT_LIST_LIMIT = 256


class InvalidKVStoreOptions(KVStoreError, ValueError):
    """A ``--kvstore-opt`` key or value the process refuses to start with."""


def _count(raw: str) -> int:
    value = go_atoi(raw)
    if value < 0:
        raise ValueError(f"{go_quote(raw)} must not be negative")
    return value


def _interval(raw: str) -> float:
    try:
        value = go_duration(raw)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None
    if value <= 0:
        raise ValueError(f"{go_quote(raw)} must be a positive duration")
    return value


def _text(raw: str) -> str:
    return raw


# key -> (field, parser)
_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    OPT_CONFIG: ("config_file", _text),
    OPT_ADDRESS: ("address", _text),
    OPT_QPS: ("qps", _count),
    OPT_BOOTSTRAP_QPS: ("bootstrap_qps", _count),
    OPT_MAX_INFLIGHT: ("max_inflight", _count),
    OPT_LIMIT: ("list_limit", _count),
    OPT_KEEPALIVE_HEARTBEAT: ("keepalive_heartbeat", _interval),
    OPT_KEEPALIVE_TIMEOUT: ("keepalive_timeout", _interval),
}
KNOWN_KEYS = frozenset(_KEYS)


@dataclass(frozen=True, slots=True)
class KVStoreOptions:
    """The parsed ``--kvstore-opt`` map. Durations are seconds."""

    config_file: str = ""  # etcd.config: upstream's etcd client YAML
    address: str = ""  # etcd.address: one endpoint; replaces the file's endpoints
    qps: int | None = None  # etcd.qps; None: not given (upstream then uses DEFAULT_QPS); 0: no bucket
    bootstrap_qps: int = 0  # etcd.bootstrapQps; 0: no bootstrap rate
    max_inflight: int = 0  # etcd.maxInflight; 0: as many as qps (no cap when that is 0 too)
    list_limit: int = DEFAULT_LIST_LIMIT  # etcd.limit: list page size; 0: no limit
    keepalive_heartbeat: float | None = None  # etcd.keepaliveHeartbeat; None: the etcd config's
    keepalive_timeout: float | None = None  # etcd.keepaliveTimeout; None: the etcd config's

    @classmethod
    def parse(cls, opts: Mapping[str, str]) -> KVStoreOptions:
        """Every key and value checked, every problem named in one ``InvalidKVStoreOptions``."""
        problems: list[str] = []
        fields: dict[str, Any] = {}
        for key in sorted(opts):
            if key not in _KEYS:
                problems.append(f"unknown kvstore configuration key {go_quote(key)}")
                continue
            name, parse = _KEYS[key]
            try:
                fields[name] = parse(opts[key])
            except ValueError as exc:
                problems.append(f"invalid value for key {key}: {exc}")
        if not opts.get(OPT_CONFIG) and not opts.get(OPT_ADDRESS):
            problems.append(f"invalid etcd configuration, {OPT_CONFIG} or {OPT_ADDRESS} must be specified")
        if problems:
            raise InvalidKVStoreOptions(
                f"invalid kvstore configuration: {'; '.join(problems)} "
                f"(known keys: {', '.join(sorted(KNOWN_KEYS))})")
        return cls(**fields)

    @property
    def upstream_qps(self) -> int:
        """The steady rate upstream uses: ``etcd.qps``, or its default when not given."""
        return DEFAULT_QPS if self.qps is None else self.qps
