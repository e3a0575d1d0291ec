"""The protobuf wire format (varints, tags, length-delimited fields), as k8s.io's gogo-generated code
writes and reads it. Pure functions over bytes; nothing here knows a Kubernetes type.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT = 0
I64 = 1
LEN = 2
I32 = 5
_MASK64 = (1 << 64) - 1


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message; the text says where and why."""


def read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise WireError("unexpected EOF")
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise WireError("integer overflow")
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def to_signed(value: int, bits: int) -> int:
    """A varint's value as Go reads it into int32/int64 (two's complement, truncated to ``bits``)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def varint(value: int) -> bytes:
    """A varint; negative numbers are written as 10-byte two's complement, as Go writes int32/int64."""
    value &= _MASK64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + varint(len(payload)) + payload


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for every field of one message, in wire order.

    A varint's value is its unsigned integer; a length-delimited value is its bytes. Fixed-width
    values are returned as raw bytes too (no Kubernetes type uses them; the caller refuses them).
    """
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError(f"illegal tag 0 (wire type {wire_type})")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
            yield number, wire_type, value
        elif wire_type == LEN:
            size, pos = read_varint(data, pos)
            if size > end - pos:
                raise WireError("unexpected EOF")
            yield number, wire_type, bytes(data[pos:pos + size])
            pos += size
        elif wire_type in (I64, I32):
            size = 8 if wire_type == I64 else 4
            if size > end - pos:
                raise WireError("unexpected EOF")
            yield number, wire_type, bytes(data[pos:pos + size])
            pos += size
        else:
            raise WireError(f"illegal wireType {wire_type} for field {number}")


def packed_varints(data: bytes) -> list[int]:
    """The values of a packed repeated varint field."""
    out: list[int] = []
    pos = 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        out.append(value)
    return out
