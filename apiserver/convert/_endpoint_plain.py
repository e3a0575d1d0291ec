"""What both twins of the CiliumEndpoint fast path share (``endpoints._plain_endpoint_entries`` and
``_endpoints_c.pyx``): reading the usual ``status.networking`` and the value all its entries end
with. Pure."""

from __future__ import annotations

from typing import Any

from ._ip import canonical_net_ip

_UINT8, _UINT32 = 0xFF, 0xFFFFFFFF


def plain_networking(networking: Any) -> tuple[str, list[Any]] | dict[str, bytes] | None:
    """``(node, addresses)`` of a usual ``status.networking``; ``{}`` when it yields no entry, None
    when anything is unusual (the checked path then decides)."""
    if networking is None:
        return {}
    if type(networking) is not dict:
        return None
    node, addresses = networking.get("node"), networking.get("addressing")
    if node is None:
        node = ""
    elif type(node) is not str:
        return None
    if not addresses:
        return {} if addresses is None or type(addresses) is list else None
    if type(addresses) is not list:
        return None
    return node, addresses


def entry_tail(node: str, identity_id: int, key: int, namespace: str, name: str, account: str) -> bytes:
    """Every field of an entry after its ``"IP"`` (names need no JSON escaping: checked plain)."""
    # Go converts with NumericIdentity()/uint8(): out-of-range values wrap.
    prefix = (f'","Mask":null,"HostIP":"{canonical_net_ip(node) or ""}","ID":{identity_id & _UINT32},'
              f'"Key":{key & _UINT8},"Metadata":"","K8sNamespace":"{namespace}","K8sPodName":"{name}"')
    return (f'{prefix},"K8sServiceAccount":"{account}"}}' if account else prefix + "}").encode()
