"""Which message a (apiVersion, kind) is, the list messages derived from them, and the ``k8s\\0``
envelope (a ``runtime.Unknown``) that carries them on the wire.

runtime.Unknown (k8s.io/apimachinery ``pkg/runtime/generated.proto``): 1 typeMeta {1 apiVersion, 2 kind},
2 raw, 3 contentEncoding, 4 contentType. The 4-byte prefix is ``k8s`` and a zero byte
(``pkg/runtime/serializer/protobuf/protobuf.go``).
"""

from __future__ import annotations

from dataclasses import dataclass

from localmesh.kubesim._protobuf import _wire as wire
from localmesh.kubesim._protobuf._access import ACCESS
from localmesh.kubesim._protobuf._codec import Codec
from localmesh.kubesim._protobuf._core import CORE, POD
from localmesh.kubesim._protobuf._meta import META
from localmesh.kubesim._protobuf._schema import Message, check, parse
from localmesh.kubesim._protobuf._workloads import APPS, AUTOSCALING, COORDINATION, DISCOVERY, EVENTS

MAGIC = b"k8s\x00"
# How Go prints the prefix in kube-apiserver's error ("expected prefix [107 56 115 0]").
_MAGIC_TEXT = "[" + " ".join(str(b) for b in MAGIC) + "]"

# (apiVersion, kind) of every object kind the emulator can carry as protobuf -> its message.
OBJECT_KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Service"): "Service",
    ("v1", "Endpoints"): "Endpoints",
    ("v1", "Node"): "Node",
    ("v1", "Pod"): "Pod",
    ("v1", "Event"): "Event",
    ("apps/v1", "Deployment"): "Deployment",
    ("apps/v1", "ReplicaSet"): "ReplicaSet",
    ("apps/v1", "DaemonSet"): "DaemonSet",
    ("discovery.k8s.io/v1", "EndpointSlice"): "EndpointSlice",
    ("coordination.k8s.io/v1", "Lease"): "Lease",
    ("events.k8s.io/v1", "Event"): "EventsV1Event",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "NetworkPolicy",
}


def _build() -> tuple[dict[str, Message], dict[tuple[str, str], str]]:
    messages: dict[str, Message] = {}
    for text in (META, CORE, POD, APPS, AUTOSCALING, DISCOVERY, COORDINATION, EVENTS, ACCESS):
        parse(text, messages)
    kinds = dict(OBJECT_KINDS)
    for (api_version, kind), name in OBJECT_KINDS.items():
        # Every <Kind>List is {1 metadata ListMeta, 2 items [<Kind>]} with `json:"items"` (no omitempty).
        parse(f"= {name}List\n1 metadata ListMeta\n2 items [{name}]!\n", messages)
        kinds[(api_version, kind + "List")] = name + "List"
    kinds[("v1", "Status")] = "Status"
    kinds[("autoscaling/v1", "Scale")] = "Scale"
    check(messages)
    return messages, kinds


MESSAGES, KINDS = _build()
CODEC = Codec(MESSAGES)


def message_for(api_version: str, kind: str) -> str | None:
    """The message of this apiVersion/kind; DeleteOptions is accepted under any group version, as
    apimachinery registers it in each one."""
    if kind == "DeleteOptions":
        return "DeleteOptions"
    return KINDS.get((api_version, kind))


class EnvelopeError(ValueError):
    """The bytes are not a ``k8s\\0`` runtime.Unknown."""


@dataclass(frozen=True, slots=True)
class Envelope:
    api_version: str
    kind: str
    raw: bytes


def unwrap(body: bytes) -> Envelope:
    if not body:
        raise EnvelopeError("empty data")
    if not body.startswith(MAGIC):
        raise EnvelopeError(f"provided data does not appear to be a protobuf message, expected prefix {_MAGIC_TEXT}")
    api_version = kind = encoding = ""
    raw = b""
    try:
        for number, wire_type, value in wire.fields(memoryview(body)[len(MAGIC):]):
            if wire_type != wire.LEN or not isinstance(value, bytes) or number not in (1, 2, 3, 4):
                raise EnvelopeError(f"unknown field number {number} in message runtime.Unknown")
            if number == 1:
                for sub, sub_type, text in wire.fields(value):
                    if sub_type != wire.LEN or not isinstance(text, bytes) or sub not in (1, 2):
                        raise EnvelopeError(f"unknown field number {sub} in message runtime.TypeMeta")
                    if sub == 1:
                        api_version = text.decode("utf-8", errors="replace")
                    else:
                        kind = text.decode("utf-8", errors="replace")
            elif number == 2:
                raw = value
            elif number == 3:
                encoding = value.decode("utf-8", errors="replace")
    except wire.WireError as exc:
        raise EnvelopeError(str(exc)) from None
    if encoding:
        raise EnvelopeError(f"contentEncoding {encoding!r} is not supported")
    return Envelope(api_version, kind, raw)


def wrap(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = wire.length_delimited(1, api_version.encode()) + wire.length_delimited(2, kind.encode())
    # kube-apiserver writes contentEncoding and contentType too, both empty.
    return (MAGIC + wire.length_delimited(1, type_meta) + wire.length_delimited(2, raw)
            + wire.length_delimited(3, b"") + wire.length_delimited(4, b""))
