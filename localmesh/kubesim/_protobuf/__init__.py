"""Kubernetes' protobuf wire format for the emulator: the ``k8s\\0`` envelope, a table-driven codec for
the built-in kinds this project's clients write (Namespace, ConfigMap, Secret, Service, Endpoints, Node,
Pod, Event, Deployment, ReplicaSet, DaemonSet, EndpointSlice, Lease and their lists), and content
negotiation. The tables (``_meta``, ``_core``, ``_workloads``) are the schema; ``_codec`` interprets them.
"""

from localmesh.kubesim._protobuf._codec import Codec, ProtobufError
from localmesh.kubesim._protobuf._kinds import CODEC, KINDS, MAGIC, MESSAGES, OBJECT_KINDS, unwrap, wrap
from localmesh.kubesim._protobuf._media import (
    PROTOBUF,
    PROTOBUF_WATCH,
    decode_delete_options,
    decode_object,
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
