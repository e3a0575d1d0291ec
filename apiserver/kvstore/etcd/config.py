"""``EtcdConfig``: where etcd is and how to authenticate, from the etcd client YAML or ``--kvstore-opt``.

The YAML is the file upstream mounts as ``etcd.config`` (``endpoints``, ``trusted-ca-file``,
``cert-file``, ``key-file``, ...); ``from_options`` adds what ``--kvstore-opt`` says about the
connection (``apiserver.kvstore.options`` parses it).

Pure parsing plus file reads; certificate files are *not* read here (see ``tls``), so that
rotated Secrets are picked up whenever a connection is made.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from apiserver.goflags import go_bool, go_duration
from apiserver.kvstore._backend import KVStoreError
from apiserver.kvstore.options import KVStoreOptions

__all__ = ["EtcdConfig", "EtcdConfigError"]

# etcd's server refuses client pings more frequent than this (--grpc-keepalive-min-time): GOAWAY.
MIN_KEEPALIVE_INTERVAL = 5.0


class EtcdConfigError(KVStoreError, ValueError):
    """The etcd configuration (file, option or TLS material) is missing or invalid."""


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    """Connection settings. Durations are seconds."""

    endpoints: tuple[str, ...]
    trusted_ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    insecure_skip_tls_verify: bool = False
    dial_timeout: float = 5.0
    request_timeout: float = 30.0
    keepalive_heartbeat: float = 15.0
    keepalive_timeout: float = 25.0
    # ``cilium-host-aliases``: hostname -> IPs dialed instead of resolving it (the certificate is
    # still checked against the hostname), as Cilium's dialer does for ``<peer>.mesh.cilium.io``.
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    config_file: str | None = None  # where this came from, for messages

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise EtcdConfigError(f"no etcd endpoints configured{self._origin()}")
        if (self.cert_file is None) != (self.key_file is None):
            raise EtcdConfigError(f"cert-file and key-file must be set together{self._origin()}")
        if self.insecure_skip_tls_verify:
            # grpc-python cannot switch off certificate verification; refusing is safer than
            # silently verifying (and failing) or silently trusting.
            raise EtcdConfigError(f"insecure-skip-tls-verify is not supported; set trusted-ca-file{self._origin()}")
        for name in ("dial_timeout", "request_timeout", "keepalive_heartbeat", "keepalive_timeout"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise EtcdConfigError(f"{name} must be a positive number, got {value!r}{self._origin()}")

    def _origin(self) -> str:
        return f" (in {self.config_file})" if self.config_file else ""

    @property
    def uses_client_cert(self) -> bool:
        return self.cert_file is not None

    @property
    def grpc_keepalive_interval(self) -> float:
        """The keepalive ping interval actually used (never below etcd's enforcement minimum)."""
        return max(self.keepalive_heartbeat, MIN_KEEPALIVE_INTERVAL)

    def replace(self, **changes: Any) -> EtcdConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> EtcdConfig:
        """Load the etcd client YAML at ``path``; keyword ``overrides`` replace parsed fields."""
        source = str(path)
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise EtcdConfigError(f"etcd config file {source} does not exist") from None
        except OSError as exc:
            raise EtcdConfigError(f"cannot read etcd config file {source}: {exc.strerror or exc}") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise EtcdConfigError(f"etcd config file {source} is not valid YAML: {exc}") from None
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise EtcdConfigError(f"etcd config file {source} must be a YAML mapping")
        fields = _fields_from_yaml(doc, source)
        fields.update(overrides)
        fields["config_file"] = source
        return cls(**fields)

    @classmethod
    def from_options(cls, options: KVStoreOptions) -> EtcdConfig:
        """From the parsed ``--kvstore-opt``: the file of ``etcd.config`` (read here), with
        ``etcd.address`` replacing its endpoints and the keepalive options its keepalives."""
        overrides: dict[str, Any] = {}
        if options.address:
            overrides["endpoints"] = (options.address,)
        if options.keepalive_heartbeat is not None:
            overrides["keepalive_heartbeat"] = options.keepalive_heartbeat
        if options.keepalive_timeout is not None:
            overrides["keepalive_timeout"] = options.keepalive_timeout
        if options.config_file:
            return cls.from_yaml(options.config_file, **overrides)
        return cls(**overrides)


def _yaml_duration(value: object, key: str, source: str) -> float:
    # Go's etcd client YAML decodes time.Duration from an integer number of nanoseconds;
    # accept that and the human "5s" form.
    if isinstance(value, bool):
        raise EtcdConfigError(f"{key} in {source}: invalid duration {value!r}")
    if isinstance(value, int | float):
        return float(value) / 1e9
    try:
        return go_duration(str(value))
    except argparse.ArgumentTypeError as exc:
        raise EtcdConfigError(f"{key} in {source}: {exc}") from None


def _yaml_str(doc: Mapping[str, object], key: str, source: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EtcdConfigError(f"{key} in {source} must be a string, got {value!r}")
    return value


def _fields_from_yaml(doc: Mapping[str, object], source: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    endpoints = doc.get("endpoints")
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    if not isinstance(endpoints, list) or not endpoints or not all(isinstance(e, str) and e for e in endpoints):
        raise EtcdConfigError(f"endpoints in {source} must be a non-empty list of URLs")
    fields["endpoints"] = tuple(endpoints)
    # ``ca-file`` is the older spelling still found in Cilium examples.
    ca = _yaml_str(doc, "trusted-ca-file", source) or _yaml_str(doc, "ca-file", source)
    fields["trusted_ca_file"] = ca
    fields["cert_file"] = _yaml_str(doc, "cert-file", source)
    fields["key_file"] = _yaml_str(doc, "key-file", source)
    fields["username"] = _yaml_str(doc, "username", source)
    fields["password"] = _yaml_str(doc, "password", source)
    fields["host_aliases"] = _host_aliases(doc.get("cilium-host-aliases"), source)
    skip = doc.get("insecure-skip-tls-verify")
    if skip is not None:
        try:
            fields["insecure_skip_tls_verify"] = skip if isinstance(skip, bool) else go_bool(str(skip))
        except argparse.ArgumentTypeError as exc:
            raise EtcdConfigError(f"insecure-skip-tls-verify in {source}: {exc}") from None
    for key, name in (("dial-timeout", "dial_timeout"), ("dial-keep-alive-time", "keepalive_heartbeat"),
                      ("dial-keep-alive-timeout", "keepalive_timeout")):
        if doc.get(key) is not None:
            value = _yaml_duration(doc[key], key, source)
            if value:  # Go's zero value means "use the default"
                fields[name] = value
    return fields


def _host_aliases(raw: object, source: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``cilium-host-aliases`` in the Helm chart's form (``{<hostname>: {ips: [...]}}``) or as a list
    of ``{hostname, ips}``; hostnames and IPs non-empty, IPs valid, no hostname twice."""
    if raw is None:
        return ()
    if isinstance(raw, dict):
        entries = [(name, (value or {}).get("ips") if isinstance(value, dict) else None) for name, value in raw.items()]
    elif isinstance(raw, list):
        entries = [(e.get("hostname"), e.get("ips")) if isinstance(e, dict) else (None, None) for e in raw]
    else:
        raise EtcdConfigError(f"cilium-host-aliases in {source} must be a mapping of hostname to ips")
    result: dict[str, tuple[str, ...]] = {}
    for name, ips in entries:
        if not isinstance(name, str) or not name:
            raise EtcdConfigError(f"cilium-host-aliases in {source}: empty hostname")
        if not isinstance(ips, list) or not ips:
            raise EtcdConfigError(f"cilium-host-aliases in {source}: no ips for {name!r}")
        for ip in ips:
            try:
                ipaddress.ip_address(str(ip))
            except ValueError:
                raise EtcdConfigError(f"cilium-host-aliases in {source}: invalid IP {ip!r} for {name!r}") from None
        if name in result:
            raise EtcdConfigError(f"cilium-host-aliases in {source}: {name!r} is listed twice")
        result[name] = tuple(dict.fromkeys(str(ip) for ip in ips))
    return tuple(result.items())
