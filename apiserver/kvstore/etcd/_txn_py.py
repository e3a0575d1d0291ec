"""Txn request branches encoded to protobuf bytes by hand (pure-Python twin of ``_txn_c.pyx``).

The bytes are what ``TxnRequest.SerializeToString()`` gives for the same operations (tested
against upb, and the compiled twin against this one). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from apiserver.kvstore._backend import MAX_TXN_OPS, Delete, KVStoreError, Op, Put


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's prefix range end);
    ``b"\\0"`` (to the end of the key space) when there is none."""
    for i in range(len(prefix) - 1, -1, -1):
        if prefix[i] < 0xFF:
            return prefix[:i] + bytes([prefix[i] + 1])
    return b"\0"


def prefix_range(prefix: str) -> tuple[bytes, bytes]:
    """``(key, range_end)`` covering every key under ``prefix``; all keys for ``""``."""
    raw = prefix.encode()
    if not raw:
        return b"\0", b"\0"
    return raw, prefix_end(raw)


# Field tags (field number << 3 | wire type 2) of the messages encoded by hand.
_TAG_OP_PUT, _TAG_OP_DELETE = b"\x12", b"\x1a"  # RequestOp.request_put = 2, .request_delete_range = 3
_TAG_KEY, _TAG_VALUE, _TAG_RANGE_END = b"\x0a", b"\x12", b"\x12"  # Put/DeleteRange key = 1, value/range_end = 2
_TAG_LEASE = b"\x18"  # PutRequest.lease = 3, varint
_VARINTS_CACHED = 4096  # lengths below this (nearly all keys and values) come from a table
_VARINTS = [varint.to_bytes(1, "little") if varint < 0x80 else bytes((varint & 0x7F | 0x80, varint >> 7))
            for varint in range(_VARINTS_CACHED)]


def encode_varint(n: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as their 64-bit two's complement (10 bytes)."""
    if 0 <= n < _VARINTS_CACHED:
        return _VARINTS[n]
    n &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + encode_varint(len(payload)) + payload if payload else b""


def _encode_put(tag: bytes, key: bytes, value: bytes, lease_field: bytes, parts: list[bytes]) -> None:
    """Any put: empty fields left out (as proto3 serialization does), any length."""
    key_field = _field(_TAG_KEY, key)
    value_field = _field(_TAG_VALUE, value)
    put_len = len(key_field) + len(value_field) + len(lease_field)
    put_header = encode_varint(put_len)
    parts += (tag, encode_varint(1 + len(put_header) + put_len), _TAG_OP_PUT, put_header, key_field, value_field,
              lease_field)


def encode_branch(tag: bytes, ops: Sequence[Op], parts: list[bytes]) -> None:
    """Append the ``RequestOp`` fields of ``ops`` (field ``tag`` of ``TxnRequest``) to ``parts``."""
    if len(ops) > MAX_TXN_OPS:
        raise KVStoreError(f"a txn branch may hold at most {MAX_TXN_OPS} operations, got {len(ops)}")
    varints, cached = _VARINTS, _VARINTS_CACHED
    lease_fields: dict[int, bytes] = {}  # a batch shares one or two leases
    extend = parts.extend
    for op in ops:
        if type(op) is Put:
            key, value = op.key.encode(), op.value
            lease_field = lease_fields.get(op.lease)
            if lease_field is None:
                lease_field = lease_fields[op.lease] = _TAG_LEASE + encode_varint(op.lease) if op.lease else b""
            key_len, value_len = len(key), len(value)
            if 0 < key_len < cached and 0 < value_len < cached:
                # The usual put: lengths computed from the table, not measured on joined pieces,
                # so that every byte is copied once, by the final join.
                key_header, value_header = varints[key_len], varints[value_len]
                put_len = 2 + len(key_header) + key_len + len(value_header) + value_len + len(lease_field)
                if put_len + 3 < cached:  # then the RequestOp's length is in the table too
                    put_header = varints[put_len]
                    extend((tag, varints[1 + len(put_header) + put_len], _TAG_OP_PUT, put_header,
                            _TAG_KEY, key_header, key, _TAG_VALUE, value_header, value, lease_field))
                    continue
            _encode_put(tag, key, value, lease_field, parts)
        elif type(op) is Delete:
            key, range_end = prefix_range(op.key) if op.prefix else (op.key.encode(), b"")
            delete = _field(_TAG_KEY, key) + _field(_TAG_RANGE_END, range_end)
            parts.append(_field(tag, _TAG_OP_DELETE + encode_varint(len(delete)) + delete))
        else:
            raise KVStoreError(f"unsupported txn operation {op!r}")
