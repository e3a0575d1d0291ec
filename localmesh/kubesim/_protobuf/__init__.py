"""Kubernetes' protobuf wire format for the emulator: the ``k8s\\0`` envelope, a table-driven codec for
the built-in kinds this project's clients write (Namespace, ConfigMap, Secret, Service, Endpoints, Node,
Pod, Event, Deployment, ReplicaSet, DaemonSet, EndpointSlice, Lease and their lists), and content
negotiation. The tables (``_meta``, ``_core``, ``_workloads``, ``_access``) are the schema; ``_codec``
interprets them.

Where it differs from kube-apiserver, on purpose:

- A field number the tables do not know is a 400 naming it (kube-apiserver's generated code skips
  unknown fields: it knows every field, the tables do not, and a skipped field would be lost data).
  Volume sources of storage back-ends, and fields newer than the tables, are such fields.
- A client that lists JSON in ``Accept`` gets JSON, even when it prefers protobuf; protobuf is written
  only for clients that accept nothing else (see ``_media``). A stored object with a field the tables
  cannot carry is then a 406 naming the field, never a silently shortened object.
- Quantities are kept as the client wrote them (Go clients send the canonical form); kube-apiserver
  re-canonicalizes them.
- Only ``contentEncoding: ""`` is accepted in the envelope (kube-apiserver writes no other).
"""

from localmesh.kubesim._protobuf._codec import Codec, ProtobufError
from localmesh.kubesim._protobuf._kinds import CODEC, KINDS, MAGIC, MESSAGES, OBJECT_KINDS, unwrap, wrap
from localmesh.kubesim._protobuf._media import (
    PROTOBUF,
    PROTOBUF_WATCH,
    decode_delete_options,
    decode_object,
    decode_scale,
    encode_document,
    encode_list,
    encode_object,
    encode_status,
    has_schema,
    is_protobuf,
    not_acceptable,
    wants_protobuf,
    watch_frame,
)

__all__ = [
    "CODEC",
    "KINDS",
    "MAGIC",
    "MESSAGES",
    "OBJECT_KINDS",
    "PROTOBUF",
    "PROTOBUF_WATCH",
    "Codec",
    "ProtobufError",
    "decode_delete_options",
    "decode_object",
    "decode_scale",
    "encode_document",
    "encode_list",
    "encode_object",
    "encode_status",
    "has_schema",
    "is_protobuf",
    "not_acceptable",
    "unwrap",
    "wants_protobuf",
    "watch_frame",
    "wrap",
]
