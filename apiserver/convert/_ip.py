"""IP addresses and CIDRs as Go parses and prints them. Pure.

Two Go text forms matter and differ only for IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``):

- ``net.IP`` (node addresses, IP-cache keys): printed as plain dotted IPv4;
- ``netip.Addr`` (service backends): printed as ``::ffff:a.b.c.d``.

Both accept what Go's ``netip.ParseAddr`` accepts (strict dotted quads without leading zeros,
RFC 4291 IPv6 text, embedded IPv4 tail) and both print IPv6 per RFC 5952 (lower case, no
leading zeros, the first longest run of two or more zero groups as ``::``). Parsing goes
through the C ``inet_pton``, whose accepted language matches Go's for zone-less addresses.
"""

from __future__ import annotations

import base64
import socket
import struct
from functools import lru_cache

_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_inet_pton = socket.inet_pton
_inet_ntop = socket.inet_ntop
_ZERO12 = b"\x00" * 12
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_unpack8 = struct.Struct("!8H").unpack
# Longest textual address Go accepts: a full IPv6 with an embedded IPv4 tail is 45 characters.
_MAX_ADDR_TEXT = 64


def parse_addr(text: str) -> bytes | None:
    """4 bytes for IPv4 text, 16 for IPv6 text (mapped or not), ``None`` if Go would reject it.

    Zones (``fe80::1%eth0``) are refused: ``net.ParseIP`` refuses them and Cilium readers
    reject zoned addresses anywhere in the wire format.
    """
    if not text or len(text) > _MAX_ADDR_TEXT:
        return None
    try:
        if ":" in text:
            return _inet_pton(_AF_INET6, text)
        return _inet_pton(_AF_INET, text)
    except (OSError, ValueError):  # ValueError: NUL byte or unencodable text
        return None


def _v4_text(b: bytes) -> str:
    return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"


def _v6_text(b: bytes) -> str:
    if b[:12] != _ZERO12:
        # glibc's inet_ntop follows RFC 5952 exactly as Go does (lower case, no leading zeros, the
        # first longest run of two or more zero groups as "::"); it differs only by printing an
        # IPv4 tail for ::a.b.c.d and ::ffff:a.b.c.d, which never reach this branch (callers
        # handle mapped addresses). Five times faster than formatting the groups in Python.
        return _inet_ntop(_AF_INET6, b)
    groups = _unpack8(b)
    best_start, best_len = -1, 1
    i = 0
    while i < 8:
        if groups[i]:
            i += 1
            continue
        j = i
        while j < 8 and not groups[j]:
            j += 1
        if j - i > best_len:  # strictly longer: the first of equally long runs wins
            best_start, best_len = i, j - i
        i = j
    if best_start < 0:
        return ":".join([format(g, "x") for g in groups])
    head = ":".join([format(g, "x") for g in groups[:best_start]])
    tail = ":".join([format(g, "x") for g in groups[best_start + best_len :]])
    return f"{head}::{tail}"


def net_ip_text(b: bytes) -> str:
    """Go ``net.IP.String()`` of a 4- or 16-byte address."""
    if len(b) == 4:
        return _v4_text(b)
    if b[:12] == _V4_MAPPED:
        return _v4_text(b[12:])
    return _v6_text(b)


def netip_text(b: bytes) -> str:
    """Go ``netip.Addr.String()`` of a 4- or 16-byte address."""
    if len(b) == 4:
        return _v4_text(b)
    if b[:12] == _V4_MAPPED:
        return "::ffff:" + _v4_text(b[12:])
    return _v6_text(b)


def net_ip_string(text: str) -> str | None:
    """``net.ParseIP(text).String()``, or ``None`` where Go would yield a nil IP. Uncached: for
    values that rarely repeat (endpoint addresses), where a cache would only miss and evict."""
    raw = parse_addr(text)
    if raw is None:
        return None
    if len(raw) == 4:
        return text  # inet_pton accepted a strict dotted quad: it is already canonical
    return net_ip_text(raw)


# Cached for node IPs, which repeat across every endpoint. Small on purpose: a cache sized for
# unique values would hold megabytes of strings for hardly any hits.
canonical_net_ip = lru_cache(maxsize=1 << 12)(net_ip_string)


@lru_cache(maxsize=1 << 16)
def canonical_addr_cluster(text: str) -> str | None:
    """``cmtypes.ParseAddrCluster(text).Addr().String()`` (``ip`` or ``ip@clusterID``)."""
    at = text.rfind("@")
    if at >= 0:
        cluster_id = text[at + 1 :]
        if not (cluster_id.isascii() and cluster_id.isdigit()) or len(cluster_id.lstrip("0")) > 10:
            return None
        if int(cluster_id) > 0xFFFFFFFF:
            return None
        text = text[:at]
    raw = parse_addr(text)
    return None if raw is None else netip_text(raw)


def is_ipv4(b: bytes) -> bool:
    """Go ``ip.To4() != nil``: 4-byte, or 16-byte IPv4-mapped."""
    return len(b) == 4 or b[:12] == _V4_MAPPED


@lru_cache(maxsize=1024)
def _mask(bits: int, ones: int) -> tuple[int, bytes]:
    mask = ((1 << ones) - 1) << (bits - ones)
    return mask, mask.to_bytes(bits // 8, "big")


def parse_cidr(text: str) -> tuple[bytes, bytes] | None:
    """Go ``net.ParseCIDR``: (network address with host bits cleared, mask bytes), or ``None``.

    IPv4 text gives 4-byte address and mask; IPv6 text (IPv4-mapped too) gives 16 bytes each.
    The prefix length is decimal digits (leading zeros allowed) not above the address width.
    """
    addr, sep, length = text.partition("/")
    if not sep:
        return None
    raw = parse_addr(addr)
    if raw is None:
        return None
    if not (length.isascii() and length.isdigit()):
        return None
    length = length.lstrip("0") or "0"
    if len(length) > 3:
        return None
    ones, bits = int(length), len(raw) * 8
    if ones > bits:
        return None
    mask, mask_bytes = _mask(bits, ones)
    network = (int.from_bytes(raw, "big") & mask).to_bytes(len(raw), "big")
    return network, mask_bytes


def b64(data: bytes) -> str:
    """Go's encoding of a ``[]byte`` field (``net.IPMask``): standard, padded base64."""
    return base64.b64encode(data).decode("ascii")
