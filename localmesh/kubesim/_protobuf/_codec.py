"""Table-driven protobuf <-> JSON for Kubernetes types: bytes as gogo-generated Go code reads them,
turned into the JSON that Go's encoding/json writes for the decoded struct (and back).

Decoding reproduces Go's JSON exactly where it differs from the wire: ``omitempty`` drops zero scalars
and empty lists/maps but never a struct; a pointer is written when it was on the wire, even when zero;
a field without ``omitempty`` is written zero (``""``, ``0``, ``null`` for a nil slice or map); maps are
written with sorted keys; ``[]byte`` as base64; ``metav1.Time`` as RFC 3339 seconds in UTC (``null`` when
zero), ``MicroTime`` with microseconds; ``IntOrString`` as a number or a string; ``Quantity`` as its string
(``"0"`` when zero); ``FieldsV1`` as the JSON it carries.

Encoding writes what Go's generated marshallers write: every non-pointer field, zero or not, in field
number order, map entries by sorted key; for the same object the bytes equal Go's (checked against
kubectl's own request bodies).

A field number that the tables do not know is an error naming it: the tables cover the fields this
project's clients use, and a silently dropped field would be data loss. Encoding refuses, the same way,
a JSON key the tables do not know.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson

from localmesh.kubesim._protobuf import _wire as wire
from localmesh.kubesim._protobuf._schema import (
    ALWAYS,
    INLINE,
    OMITZERO,
    POINTER,
    POINTER_ALWAYS,
    SCALARS,
    Field,
    Message,
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_INT_RANGE = {"i32": (-(1 << 31), (1 << 31) - 1), "i64": (-(1 << 63), (1 << 63) - 1)}
_SCALAR_ZERO: dict[str, Any] = {"s": "", "b": False, "i32": 0, "i64": 0, "y": None}


class ProtobufError(ValueError):
    """A body that does not decode (or an object that does not encode); the text names the field."""


# -- decoding ---------------------------------------------------------------------------------------


def _scalar(f: Field, value: int | bytes, path: str) -> Any:
    if f.type == "s":
        assert isinstance(value, bytes)
        return value.decode("utf-8", errors="replace")  # Go's encoding/json writes U+FFFD for bad UTF-8
    if f.type == "y":
        assert isinstance(value, bytes)
        return base64.b64encode(value).decode("ascii")
    assert isinstance(value, int)
    if f.type == "b":
        return value != 0
    return wire.to_signed(value, 32 if f.type == "i32" else 64)


def _check_wire_type(f: Field, wire_type: int, owner: str, path: str) -> None:
    expected = wire.VARINT if f.type in ("b", "i32", "i64") and not f.map else wire.LEN
    if wire_type == expected or (f.repeated and expected == wire.VARINT and wire_type == wire.LEN):
        return
    raise ProtobufError(f"{path}: wrong wire type {wire_type} for field {f.json or f.type} "
                        f"({owner} field {f.number})")


def _timestamp(data: bytes, path: str) -> tuple[int, int] | None:
    """(seconds, nanos) of a metav1.Time/MicroTime; None for the zero time (an empty message)."""
    if not data:
        return None
    seconds = nanos = 0
    for number, wire_type, value in wire.fields(data):
        if wire_type != wire.VARINT or number not in (1, 2):
            raise ProtobufError(f"{path}: unknown field number {number} in message Timestamp")
        assert isinstance(value, int)
        if number == 1:
            seconds = wire.to_signed(value, 64)
        else:
            nanos = wire.to_signed(value, 32)
    return seconds, nanos


def _format_time(data: bytes, path: str, micro: bool) -> str | None:
    stamp = _timestamp(data, path)
    if stamp is None:
        return None
    try:
        moment = _EPOCH + dt.timedelta(seconds=stamp[0], microseconds=stamp[1] // 1000)
    except OverflowError:
        raise ProtobufError(f"{path}: time out of range ({stamp[0]} s)") from None
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(data: bytes, path: str) -> str:
    text = ""
    for number, wire_type, value in wire.fields(data):
        if number != 1 or wire_type != wire.LEN:
            raise ProtobufError(f"{path}: unknown field number {number} in message Quantity")
        assert isinstance(value, bytes)
        text = value.decode("utf-8", errors="replace")
    return text or "0"


def _int_or_string(data: bytes, path: str) -> int | str:
    kind, number_value, text = 0, 0, ""
    for number, wire_type, value in wire.fields(data):
        if (number, wire_type) == (1, wire.VARINT):
            assert isinstance(value, int)
            kind = wire.to_signed(value, 64)
        elif (number, wire_type) == (2, wire.VARINT):
            assert isinstance(value, int)
            number_value = wire.to_signed(value, 32)
        elif (number, wire_type) == (3, wire.LEN):
            assert isinstance(value, bytes)
            text = value.decode("utf-8", errors="replace")
        else:
            raise ProtobufError(f"{path}: unknown field number {number} in message IntOrString")
    return text if kind == 1 else number_value


def _fields_v1(data: bytes, path: str) -> Any:
    raw = b""
    for number, wire_type, value in wire.fields(data):
        if number != 1 or wire_type != wire.LEN:
            raise ProtobufError(f"{path}: unknown field number {number} in message FieldsV1")
        assert isinstance(value, bytes)
        raw = value
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtobufError(f"{path}: FieldsV1 does not hold JSON: {exc}") from None


_WELL_KNOWN_DECODE: dict[str, Callable[[bytes, str], Any]] = {
    "Time": lambda data, path: _format_time(data, path, micro=False),
    "MicroTime": lambda data, path: _format_time(data, path, micro=True),
    "Quantity": _quantity,
    "IntOrString": _int_or_string,
    "FieldsV1": _fields_v1,
}


class Codec:
    """Decodes and encodes the messages of one schema (name -> Message)."""

    def __init__(self, messages: dict[str, Message]) -> None:
        self.messages = messages
        self._json_names: dict[str, frozenset[str]] = {}

    # -- decode -----------------------------------------------------------------------------------

    def decode(self, name: str, data: bytes, path: str | None = None) -> Any:
        """The JSON value of message ``name`` held in ``data``."""
        try:
            return self._decode(name, data, path or name)
        except wire.WireError as exc:
            raise ProtobufError(f"{path or name}: {exc}") from None

    def _decode(self, name: str, data: bytes, path: str) -> Any:
        special = _WELL_KNOWN_DECODE.get(name)
        if special is not None:
            return special(data, path)
        msg = self.messages[name]
        seen: dict[int, list[int | bytes]] = {}
        try:
            for number, wire_type, value in wire.fields(data):
                f = msg.by_number.get(number)
                if f is None:
                    raise ProtobufError(f"{path}: unknown field number {number} in message {msg.name} "
                                        f"(not in the emulator's protobuf tables)")
                _check_wire_type(f, wire_type, msg.name, f"{path}.{f.json}" if f.json else path)
                seen.setdefault(number, []).append(value)
        except wire.WireError as exc:
            raise ProtobufError(f"{path}: {exc}") from None
        out: dict[str, Any] = {}
        for f in msg.fields:
            values = seen.get(f.number)
            if f.presence == INLINE:
                inner = self._decode(f.type, b"".join(_as_bytes(v) for v in values or ()), path)
                out.update(inner)
                continue
            child = f"{path}.{f.json}"
            if f.map:
                self._decode_map(f, values, child, out)
            elif f.repeated:
                items = self._decode_list(f, values or [], child)
                if items or f.presence == ALWAYS:
                    out[f.json] = items or None
            elif f.type in SCALARS:
                self._decode_scalar(f, values, child, out)
            else:
                self._decode_single_message(f, values, child, out)
        return out

    def _decode_scalar(self, f: Field, values: list[int | bytes] | None, path: str, out: dict[str, Any]) -> None:
        if values is None:
            if f.presence in (ALWAYS, POINTER_ALWAYS):
                out[f.json] = None if f.presence == POINTER_ALWAYS else _SCALAR_ZERO[f.type]
            return
        value = _scalar(f, values[-1], path)
        if f.presence in (POINTER, POINTER_ALWAYS, ALWAYS) or value not in ("", 0, False):
            out[f.json] = value

    def _decode_single_message(self, f: Field, values: list[int | bytes] | None, path: str,
                               out: dict[str, Any]) -> None:
        if values is None and f.presence in (POINTER, OMITZERO):
            return
        if values is None and f.presence == POINTER_ALWAYS:
            out[f.json] = None
            return
        data = b"".join(_as_bytes(v) for v in values or ())
        value = self._decode(f.type, data, path)
        if f.presence == OMITZERO and value == self._decode(f.type, b"", path):
            return
        out[f.json] = value

    def _decode_list(self, f: Field, values: list[int | bytes], path: str) -> list[Any]:
        items: list[Any] = []
        for index, value in enumerate(values):
            if f.type in SCALARS:
                if isinstance(value, bytes) and f.type in ("b", "i32", "i64"):
                    items.extend(_scalar(f, v, path) for v in wire.packed_varints(value))
                else:
                    items.append(_scalar(f, value, path))
            else:
                items.append(self._decode(f.type, _as_bytes(value), f"{path}[{index}]"))
        return items

    def _decode_map(self, f: Field, values: list[int | bytes] | None, path: str, out: dict[str, Any]) -> None:
        entries: dict[str, Any] = {}
        for value in values or ():
            key, item = "", None
            item_seen = False
            for number, wire_type, part in wire.fields(_as_bytes(value)):
                if (number, wire_type) == (1, wire.LEN):
                    key = _as_bytes(part).decode("utf-8", errors="replace")
                elif number == 2:
                    item, item_seen = part, True
                else:
                    raise ProtobufError(f"{path}: unknown field number {number} in a map entry")
            entries[key] = self._map_value(f, item if item_seen else None, f"{path}[{key}]")
        if entries or f.presence == ALWAYS:
            out[f.json] = dict(sorted(entries.items())) if entries else None

    def _map_value(self, f: Field, item: int | bytes | None, path: str) -> Any:
        if f.type in SCALARS:
            if item is None:
                return "" if f.type in ("s", "y") else _SCALAR_ZERO[f.type]
            return _scalar(f, item, path)
        return self._decode(f.type, _as_bytes(item) if item is not None else b"", path)

    # -- encode -----------------------------------------------------------------------------------

    def encode(self, name: str, doc: Any, path: str | None = None) -> bytes:
        """The protobuf bytes of message ``name`` for the JSON value ``doc``."""
        return self._encode(name, doc, path or name)

    def _encode(self, name: str, doc: Any, path: str) -> bytes:
        special = _WELL_KNOWN_ENCODE.get(name)
        if special is not None:
            return special(doc, path)
        msg = self.messages[name]
        if not isinstance(doc, dict):
            raise ProtobufError(f"{path}: expected a JSON object, got {type(doc).__name__}")
        unknown = set(doc) - self._known_json(msg)
        if unknown:
            raise ProtobufError(f"{path}: field {sorted(unknown)[0]!r} has no protobuf encoding in the "
                                f"emulator's tables ({msg.name})")
        return self._encode_fields(msg, doc, path)

    def _known_json(self, msg: Message) -> frozenset[str]:
        names = self._json_names.get(msg.name)
        if names is None:
            collected = set(msg.by_json)
            for f in msg.fields:
                if f.presence == INLINE:
                    collected |= self._known_json(self.messages[f.type])
            names = self._json_names[msg.name] = frozenset(collected)
        return names

    def _encode_fields(self, msg: Message, doc: dict[str, Any], path: str) -> bytes:
        out = bytearray()
        for f in sorted(msg.fields, key=lambda f: f.number):
            if f.presence == INLINE:
                out += wire.length_delimited(f.number, self._encode_fields(self.messages[f.type], doc, path))
                continue
            value = doc.get(f.json)
            child = f"{path}.{f.json}"
            if f.map:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise ProtobufError(f"{child}: expected a JSON object, got {type(value).__name__}")
                for key in sorted(value):
                    entry = wire.length_delimited(1, str(key).encode())
                    entry += self._encode_value(f, 2, value[key], f"{child}[{key}]")
                    out += wire.length_delimited(f.number, entry)
            elif f.repeated:
                if value is None:
                    continue
                if not isinstance(value, list):
                    raise ProtobufError(f"{child}: expected a JSON array, got {type(value).__name__}")
                for index, item in enumerate(value):
                    out += self._encode_value(f, f.number, item, f"{child}[{index}]")
            elif value is None and f.presence in (POINTER, POINTER_ALWAYS):
                continue
            elif value is None and f.type in SCALARS:
                out += self._encode_value(f, f.number, _SCALAR_ZERO[f.type] if f.type != "y" else "", child)
            else:
                # gogo writes every non-pointer field, zero or not, and a struct even when empty.
                out += self._encode_value(f, f.number, value, child)
        return bytes(out)

    def _encode_value(self, f: Field, number: int, value: Any, path: str) -> bytes:
        kind = f.type
        if kind not in SCALARS:
            if value is None and kind not in _WELL_KNOWN_ENCODE:
                value = {}
            return wire.length_delimited(number, self._encode(kind, value, path))
        if kind == "s":
            if not isinstance(value, str):
                raise ProtobufError(f"{path}: expected a string, got {type(value).__name__}")
            return wire.length_delimited(number, value.encode())
        if kind == "y":
            if not isinstance(value, str):
                raise ProtobufError(f"{path}: expected a base64 string, got {type(value).__name__}")
            try:
                raw = base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ProtobufError(f"{path}: illegal base64 data: {exc}") from None
            return wire.length_delimited(number, raw)
        if kind == "b":
            if not isinstance(value, bool):
                raise ProtobufError(f"{path}: expected a boolean, got {type(value).__name__}")
            return wire.tag(number, wire.VARINT) + wire.varint(int(value))
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtobufError(f"{path}: expected an integer, got {type(value).__name__}")
        low, high = _INT_RANGE[kind]
        if not low <= value <= high:
            raise ProtobufError(f"{path}: {value} overflows {'int32' if kind == 'i32' else 'int64'}")
        return wire.tag(number, wire.VARINT) + wire.varint(value)


def _as_bytes(value: int | bytes) -> bytes:
    assert isinstance(value, bytes)
    return value


def _encode_time(value: Any, path: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ProtobufError(f"{path}: expected an RFC 3339 time string, got {type(value).__name__}")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ProtobufError(f"{path}: cannot parse {value!r} as RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ProtobufError(f"{path}: {value!r} has no time zone")
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    nanos = delta.microseconds * 1000
    return wire.tag(1, wire.VARINT) + wire.varint(seconds) + wire.tag(2, wire.VARINT) + wire.varint(nanos)


def _encode_quantity(value: Any, path: str) -> bytes:
    if value is None:
        value = "0"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ProtobufError(f"{path}: expected a quantity, got {type(value).__name__}")
    return wire.length_delimited(1, str(value).encode())


def _encode_int_or_string(value: Any, path: str) -> bytes:
    if value is None:
        value = 0
    if isinstance(value, str):
        kind, number, text = 1, 0, value
    elif isinstance(value, int) and not isinstance(value, bool):
        kind, number, text = 0, value, ""
    else:
        raise ProtobufError(f"{path}: expected an integer or a string, got {type(value).__name__}")
    return (wire.tag(1, wire.VARINT) + wire.varint(kind) + wire.tag(2, wire.VARINT) + wire.varint(number)
            + wire.length_delimited(3, text.encode()))


def _encode_fields_v1(value: Any, path: str) -> bytes:
    return b"" if value is None else wire.length_delimited(1, orjson.dumps(value))


_WELL_KNOWN_ENCODE: dict[str, Callable[[Any, str], bytes]] = {
    "Time": _encode_time,
    "MicroTime": _encode_time,
    "Quantity": _encode_quantity,
    "IntOrString": _encode_int_or_string,
    "FieldsV1": _encode_fields_v1,
}
