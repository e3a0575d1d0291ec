"""Translate between the kvstore types (``Put``, ``Compare``, ``KeyValue`` ...) and etcd's protobufs.

Txn requests are the exporter's and KVStoreMesh's hot path (one per 128 keys written): their puts
and deletes are encoded to protobuf bytes directly (``_txn_c.pyx``, compiled, or its pure-Python
twin ``_txn_py.py``), not through upb messages; the bytes are what ``TxnRequest.SerializeToString()``
gives (tested against it).
Compares (rare) still go through upb. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from apiserver._extensions import compiled
from apiserver.kvstore._backend import Compare, EventType, KeyValue, KVStoreError, Op, WatchEvent
from apiserver.kvstore.etcd import _txn_py
from apiserver.kvstore.etcd._txn_py import encode_varint, prefix_end, prefix_range
from apiserver.kvstore.proto import etcd_rpc_pb2 as pb

__all__ = ["encode_txn", "encode_varint", "fill_compare", "prefix_end", "prefix_range", "to_events",
           "to_key_value"]

# The compiled twin when it was built (and CLUSTERMESH_NO_EXTENSIONS is unset), else the pure one.
_txn = compiled("apiserver.kvstore.etcd._txn_c") or _txn_py
encode_branch = _txn.encode_branch
_TAG_TXN_SUCCESS, _TAG_TXN_FAILURE = b"\x12", b"\x1a"  # TxnRequest.success = 2, .failure = 3

_RESULTS = {"=": pb.Compare.EQUAL, "!=": pb.Compare.NOT_EQUAL, "<": pb.Compare.LESS, ">": pb.Compare.GREATER}
# target name -> (protobuf enum, oneof field, value kind)
_TARGETS: dict[str, tuple[int, str, type]] = {
    "mod": (pb.Compare.MOD, "mod_revision", int),
    "create": (pb.Compare.CREATE, "create_revision", int),
    "version": (pb.Compare.VERSION, "version", int),
    "value": (pb.Compare.VALUE, "value", bytes),
    "lease": (pb.Compare.LEASE, "lease", int),
}
_PUT = 0  # etcd Event.EventType.PUT


def fill_compare(target: Any, cmp: Compare) -> None:
    try:
        enum, field, kind = _TARGETS[cmp.target]
    except KeyError:
        raise KVStoreError(f"unsupported compare target {cmp.target!r}") from None
    result = _RESULTS.get(cmp.result)
    if result is None:
        raise KVStoreError(f"unsupported compare result {cmp.result!r}")
    if not isinstance(cmp.value, kind) or isinstance(cmp.value, bool):
        raise KVStoreError(f"compare on {cmp.target!r} needs a {kind.__name__} value, got {cmp.value!r}")
    target.key = cmp.key.encode()
    target.target = enum
    target.result = result
    setattr(target, field, cmp.value)


def encode_txn(compares: Iterable[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> bytes:
    """A serialized ``TxnRequest``: fields in number order, as upb writes them (compares first)."""
    parts: list[bytes] = []
    compares = list(compares)
    if compares:
        request = pb.TxnRequest()
        for cmp in compares:
            fill_compare(request.compare.add(), cmp)
        parts.append(request.SerializeToString())
    encode_branch(_TAG_TXN_SUCCESS, success, parts)
    encode_branch(_TAG_TXN_FAILURE, failure, parts)
    return b"".join(parts)


def to_key_value(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision, kv.lease)


def to_events(events: Iterable[Any]) -> list[WatchEvent]:
    put, delete = EventType.PUT, EventType.DELETE
    out = []
    for ev in events:
        kv = ev.kv
        if ev.type == _PUT:
            out.append(WatchEvent(put, kv.key.decode(), kv.value, kv.mod_revision))
        else:
            out.append(WatchEvent(delete, kv.key.decode(), b"", kv.mod_revision))
    return out
