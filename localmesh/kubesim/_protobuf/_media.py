"""Content negotiation and the request/response bodies of ``application/vnd.kubernetes.protobuf``.

kube-apiserver picks the response type from ``Accept`` in order of preference (client-go sends
``application/vnd.kubernetes.protobuf,application/json`` and gets protobuf back). The emulator answers
protobuf only when the client accepts nothing JSON (``application/json``, ``application/*``, ``*/*``):
every client that lists JSON reads it, and JSON is what the emulator stores, so it is sent unchanged.

Request bodies are decoded into the JSON kube-apiserver would hold, with its error texts
(``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go``, ``transformDecodeError``).
No HTTP happens here: the HTTP layer calls these functions with header values and bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from localmesh.kubesim import _errors as errors
from localmesh.kubesim._protobuf._codec import ProtobufError
from localmesh.kubesim._protobuf._kinds import CODEC, OBJECT_KINDS, EnvelopeError, message_for, unwrap, wrap
from localmesh.kubesim._protobuf._wire import length_delimited
from localmesh.kubesim._resources import ResourceType

PROTOBUF = "application/vnd.kubernetes.protobuf"
PROTOBUF_WATCH = PROTOBUF + ";stream=watch"
_JSON_LIKE = frozenset({"application/json", "application/*", "*/*"})
_SCHEME = "pkg/api/legacyscheme/scheme.go:30"


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def is_protobuf(content_type: str | None) -> bool:
    return content_type is not None and _media_type(content_type) == PROTOBUF


def wants_protobuf(accept: str | None) -> bool:
    """Whether the response must be protobuf: the client accepts it and accepts no JSON."""
    if not accept:
        return False
    protobuf = False
    for clause in accept.split(","):
        media, _, params = clause.partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media in _JSON_LIKE:
            return False
        if media == PROTOBUF:
            protobuf = True
    return protobuf


def has_schema(rt: ResourceType) -> bool:
    return (rt.api_version, rt.kind) in OBJECT_KINDS


def _summary(body: bytes) -> str:
    # rest.go summarizeData: the first 30 bytes, hex unless the body looks like JSON.
    if not body:
        return "<empty>"
    head = body[:30]
    text = head.decode("utf-8", errors="replace") if body[:1] == b"{" else head.hex()
    return text + " ..." if len(body) > 30 else text


def unsupported_body(rt: ResourceType) -> errors.KubeError:
    return errors.KubeError(415, "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media types include: "
                            f"application/json, application/yaml (the emulator has no protobuf schema for "
                            f"{rt.group_kind})")


def decode_object(rt: ResourceType, body: bytes) -> dict[str, Any]:
    """A protobuf create/update body as the JSON object kube-apiserver would hold; 400 when it does not
    decode, 415 for a resource type without a protobuf form here."""
    if not has_schema(rt):
        raise unsupported_body(rt)
    return _decode(rt.kind, body)


def decode_delete_options(body: bytes) -> dict[str, Any]:
    return _decode("DeleteOptions", body)


def decode_scale(body: bytes) -> dict[str, Any]:
    """A PUT body of the scale subresource (autoscaling/v1 Scale)."""
    return _decode("Scale", body)


def _decode(expected_kind: str, body: bytes) -> dict[str, Any]:
    try:
        envelope = unwrap(body)
    except EnvelopeError as exc:
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {expected_kind}): "
                                 f"{exc} ({_summary(body)})") from None
    version = envelope.api_version.rpartition("/")[2]
    prefix = f'{envelope.kind} in version "{version}" cannot be handled as a {expected_kind}'
    name = message_for(envelope.api_version, envelope.kind)
    if name is None:
        raise errors.bad_request(f'{prefix}: no kind "{envelope.kind}" is registered for version '
                                 f'"{envelope.api_version}" in scheme "{_SCHEME}"')
    try:
        doc = CODEC.decode(name, envelope.raw, envelope.kind)
    except ProtobufError as exc:
        raise errors.bad_request(f"{prefix}: {exc}") from None
    return {"kind": envelope.kind, "apiVersion": envelope.api_version, **doc}


def not_acceptable(detail: str) -> errors.KubeError:
    return errors.KubeError(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                            f"application/yaml ({detail})")


def _encode(api_version: str, kind: str, doc: dict[str, Any]) -> bytes:
    name = message_for(api_version, kind)
    if name is None:
        raise not_acceptable(f"the emulator has no protobuf schema for {kind} in {api_version}")
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    try:
        return CODEC.encode(name, body, kind)
    except ProtobufError as exc:
        raise not_acceptable(str(exc)) from None


def encode_object(raw_json: bytes) -> bytes:
    """A stored object (JSON) as a protobuf response body; 406 when it has no protobuf form here."""
    return encode_document(orjson.loads(raw_json))


def encode_document(doc: dict[str, Any]) -> bytes:
    """A JSON document with apiVersion and kind as a protobuf response body."""
    return wrap(doc["apiVersion"], doc["kind"], _encode(doc["apiVersion"], doc["kind"], doc))


def encode_list(api_version: str, list_kind: str, meta: dict[str, Any], items: list[bytes]) -> bytes:
    """A list response: ListMeta and the items, each encoded from its stored JSON."""
    if message_for(api_version, list_kind) is None:
        raise not_acceptable(f"the emulator has no protobuf schema for {list_kind} in {api_version}")
    out = bytearray(length_delimited(1, CODEC.encode("ListMeta", meta)))
    for raw in items:
        doc = orjson.loads(raw)
        out += length_delimited(2, _encode(doc["apiVersion"], doc["kind"], doc))
    return wrap(api_version, list_kind, bytes(out))


def encode_status(doc: dict[str, Any]) -> bytes:
    return wrap("v1", "Status", _encode("v1", "Status", doc))


def watch_frame(event_type: str, object_body: bytes) -> bytes:
    """One event of a protobuf watch stream: a 4-byte big-endian length, then a metav1.WatchEvent
    {1 type, 2 object RawExtension{1 raw}} without envelope, whose raw is the enveloped object
    (apimachinery ``pkg/runtime/serializer/protobuf`` RawSerializer with a length-delimited framer)."""
    event = length_delimited(1, event_type.encode()) + length_delimited(2, length_delimited(1, object_body))
    return struct.pack(">I", len(event)) + event
