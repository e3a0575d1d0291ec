"""CiliumEndpoint / CiliumEndpointSlice -> ``IPIdentityPair`` JSON under
``cilium/state/ip/v1/default``. Pure.

One entry per non-empty ``ipv4``/``ipv6`` of every ``networking.addressing[]`` item, keyed by
the address in Go ``net.IP`` text form. Field order and ``omitempty`` follow the 1.19
``identity.IPIdentityPair``: ``Mask`` is always ``null`` (host entries), ``Metadata`` always
``""``, the ``K8s*`` fields are left out when empty, ``NamedPorts`` is never populated.
An endpoint without identity still yields entries with ``"ID":0``, as upstream does.

Deliberate deviation: an address Go cannot parse would give the key ``<nil>`` and ``"IP":""``
upstream; it is skipped here (and reported through ``skipped`` when the caller asks).

Which object owns a key claimed by several objects is decided by :class:`IPOwnership`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from apiserver._extensions import compiled

from . import _access as a
from ._endpoint_plain import entry_tail, plain_networking
from ._errors import ConversionError
from ._ip import canonical_net_ip, net_ip_string
from .gojson import go_json
from .ipownership import IPOwnership

__all__ = [
    "IPOwnership",
    "cilium_endpoint_ip_entries",
    "cilium_endpoint_owner",
    "cilium_endpoint_slice_ip_entries",
    "cilium_endpoint_slice_owner",
]

_UINT8, _UINT32 = 0xFF, 0xFFFFFFFF
_ADDRESS_FIELDS = ("ipv4", "ipv6")
_FIELD_PATHS = {field: f"addressing[].{field}" for field in _ADDRESS_FIELDS}


def cilium_endpoint_owner(obj: Mapping[str, Any]) -> str:
    """The ownership key of a CiliumEndpoint: ``<namespace>/<name>``."""
    meta = a.metadata(obj)
    return f"{a.namespace_of(meta)}/{a.name_of(meta)}"


def cilium_endpoint_slice_owner(obj: Mapping[str, Any]) -> str:
    """The ownership key of a (cluster-scoped) CiliumEndpointSlice: its name."""
    return a.name_of(a.metadata(obj))


def cilium_endpoint_ip_entries(obj: Mapping[str, Any], skipped: list[str] | None = None) -> dict[str, bytes]:
    """All ``{ip: value}`` entries of a CiliumEndpoint (``status.*`` fields)."""
    entries = _plain_entries(obj)
    return entries if entries is not None else _checked_endpoint_entries(obj, skipped)


# Names with only these characters need neither JSON escaping nor the name checks' slow paths.
_PLAIN_NAMES = re.compile(r"[-.0-9A-Za-z_]*")
_PLAIN_NAME_MAX = 253  # a DNS subdomain
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _plain_endpoint_entries(obj: Any) -> dict[str, bytes] | None:
    """The usual CiliumEndpoint, at a third of the checked path's cost (100k of them per list).

    ``None`` when anything is unusual (a wrong type, an odd name, an invalid address): the checked
    path then gives the same result or the precise error. Each condition below is one under which
    the checked path reads the same values and raises nothing.
    """
    if type(obj) is not dict:
        return None
    meta, status = obj.get("metadata"), obj.get("status")
    if type(meta) is not dict or type(status) is not dict:
        return None
    name, namespace = meta.get("name"), meta.get("namespace")
    identity, encryption = status.get("identity"), status.get("encryption")
    account, networking = status.get("service-account"), status.get("networking")
    if account is None:
        account = ""
    if (type(name) is not str or type(namespace) is not str or type(account) is not str
            or not name or not namespace or len(name) > _PLAIN_NAME_MAX or len(namespace) > _PLAIN_NAME_MAX
            or len(account) > _PLAIN_NAME_MAX or _PLAIN_NAMES.fullmatch(f"{name}{namespace}{account}") is None):
        return None
    identity_id = 0 if identity is None else identity.get("id", 0) if type(identity) is dict else None
    key = 0 if encryption is None else encryption.get("key", 0) if type(encryption) is dict else None
    if identity_id is None:
        identity_id = 0 if type(identity) is dict else None
    if key is None:
        key = 0 if type(encryption) is dict else None
    if (type(identity_id) is not int or type(key) is not int or not _INT64_MIN <= identity_id <= _INT64_MAX
            or not _INT64_MIN <= key <= _INT64_MAX):
        return None
    found = plain_networking(networking)
    if not isinstance(found, tuple):
        return found
    node, addresses = found
    tail = entry_tail(node, identity_id, key, namespace, name, account)
    out: dict[str, bytes] = {}
    for pair in addresses:
        if type(pair) is not dict:
            return None
        for field in _ADDRESS_FIELDS:
            text = pair.get(field)
            if text is None or text == "":
                continue
            if type(text) is not str:
                return None
            ip = net_ip_string(text)
            if ip is None:
                return None
            out[ip] = b'{"IP":"' + ip.encode() + tail
    return out


# The compiled twin (``_endpoints_c.pyx``) when it was built and CLUSTERMESH_NO_EXTENSIONS is unset.
_compiled = compiled("apiserver.convert._endpoints_c")
_plain_entries: Callable[[Any], dict[str, bytes] | None] = (
    _compiled.plain_endpoint_entries if _compiled is not None else _plain_endpoint_entries)


def _checked_endpoint_entries(obj: Mapping[str, Any], skipped: list[str] | None) -> dict[str, bytes]:
    meta = a.metadata(obj)
    name = a.name_of(meta)
    namespace = a.namespace_of(meta)
    status = a.mapping(obj.get("status"), "status")
    # Every field is read (and type-checked) before deciding there is nothing to export: Go
    # fails to decode a malformed object whether or not it has addresses.
    identity = a.opt_mapping(status.get("identity"), "status.identity")
    identity_id = 0 if identity is None else a.integer(identity.get("id"), "status.identity.id")
    encryption = a.mapping(status.get("encryption"), "status.encryption")
    key = a.integer(encryption.get("key"), "status.encryption.key")
    service_account = a.string(status.get("service-account"), "status.service-account")
    networking = a.opt_mapping(status.get("networking"), "status.networking")
    if networking is None:
        return {}
    return _entries(
        networking,
        "status.networking",
        identity_id=identity_id,
        key=key,
        namespace=namespace,
        pod_name=name,
        service_account=service_account,
        skipped=skipped,
    )


def cilium_endpoint_slice_ip_entries(
    obj: Mapping[str, Any], skipped: list[str] | None = None
) -> dict[str, bytes]:
    """All ``{ip: value}`` entries of a CiliumEndpointSlice; a later endpoint wins a shared IP."""
    a.name_of(a.metadata(obj))
    namespace = a.checked_name(obj.get("namespace"), "namespace", required=False)
    out: dict[str, bytes] = {}
    for i, item in enumerate(a.array(obj.get("endpoints"), "endpoints")):
        what = f"endpoints[{i}]"
        endpoint = a.mapping(item, what)
        identity_id = a.integer(endpoint.get("id"), f"{what}.id")
        encryption = a.mapping(endpoint.get("encryption"), f"{what}.encryption")
        key = a.integer(encryption.get("key"), f"{what}.encryption.key")
        pod_name = a.string(endpoint.get("name"), f"{what}.name")
        service_account = a.string(endpoint.get("service-account"), f"{what}.service-account")
        networking = a.opt_mapping(endpoint.get("networking"), f"{what}.networking")
        if networking is None:
            continue
        out.update(
            _entries(
                networking,
                f"{what}.networking",
                identity_id=identity_id,
                key=key,
                namespace=namespace,
                pod_name=pod_name,
                service_account=service_account,
                skipped=skipped,
            )
        )
    return out


def _entries(
    networking: Mapping[str, Any],
    what: str,
    *,
    identity_id: int,
    key: int,
    namespace: str,
    pod_name: str,
    service_account: str,
    skipped: list[str] | None,
) -> dict[str, bytes]:
    # Field paths in errors are constants, prefixed with ``what`` only when an error happens:
    # formatting them for every endpoint would cost more than the conversion itself.
    try:
        host_ip = canonical_net_ip(a.string(networking.get("node"), "node")) or ""
        addresses = a.array(networking.get("addressing"), "addressing")
        if not addresses:
            return {}
        # Every entry of the endpoint shares all fields but the first: encode them once.
        rest: dict[str, Any] = {
            "Mask": None,
            "HostIP": host_ip,
            # Go converts with NumericIdentity()/uint8(): out-of-range values wrap.
            "ID": identity_id & _UINT32,
            "Key": key & _UINT8,
            "Metadata": "",
        }
        if namespace:
            rest["K8sNamespace"] = namespace
        if pod_name:
            rest["K8sPodName"] = pod_name
        if service_account:
            rest["K8sServiceAccount"] = service_account
        tail = go_json(rest)[1:]
        out: dict[str, bytes] = {}
        for i, item in enumerate(addresses):
            pair = a.mapping(item, "addressing[]")
            for field in _ADDRESS_FIELDS:
                text = a.string(pair.get(field), _FIELD_PATHS[field])
                if not text:
                    continue
                # Uncached: endpoint addresses are unique, a cache would only miss and evict.
                ip = net_ip_string(text)
                if ip is None:
                    if skipped is not None:
                        skipped.append(f"{what}.addressing[{i}].{field}: invalid IP {text[:64]!r}")
                    continue
                # The canonical text is digits, hex, '.' and ':' only: it needs no JSON escaping.
                out[ip] = b'{"IP":"' + ip.encode() + b'",' + tail
        return out
    except ConversionError as exc:
        raise ConversionError(f"{what}.{exc.reason}") from None
