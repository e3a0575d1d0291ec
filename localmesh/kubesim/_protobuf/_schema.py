"""The schema language of the codec: one line per Go struct field, grouped under a message name.

    = ConfigMapKeySelector
    1 ~ LocalObjectReference        inline (Go embedding with `json:",inline"`)
    2 key s!                        string, `json:"key"` (no omitempty: always written)
    3 optional b*                   *bool (pointer: written exactly when set)

A line is ``<field number> <json name> <type><marks>``. Types: ``s`` string, ``b`` bool, ``i32``/``i64``,
``y`` []byte (base64 in JSON), the well-known messages ``Time``, ``MicroTime``, ``Quantity``,
``IntOrString``, ``FieldsV1``, any message name, ``[T]`` a repeated field and ``{T}`` a map from
string to T. Marks: none = a value with ``omitempty`` (structs are never omitted by encoding/json),
``!`` = no ``omitempty`` (zero values and nil slices/maps are written: ``""``, ``0``, ``null``),
``*`` = a Go pointer (``*!``: a pointer without ``omitempty``, ``null`` when unset), ``0`` = ``omitzero``.

The facts (field numbers, JSON names, Go types and tags) come from k8s.io/api's and k8s.io/apimachinery's
``types.go`` / ``generated.proto``; the tables only state them. Parsing happens once, at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCALARS = frozenset({"s", "b", "i32", "i64", "y"})
# Messages with their own JSON form (apimachinery's MarshalJSON methods), handled by the codec.
WELL_KNOWN = frozenset({"Time", "MicroTime", "Quantity", "IntOrString", "FieldsV1"})

OMITEMPTY, ALWAYS, POINTER, POINTER_ALWAYS, OMITZERO, INLINE = (
    "omitempty", "always", "pointer", "pointer-always", "omitzero", "inline")
_MARKS = {"": OMITEMPTY, "!": ALWAYS, "*": POINTER, "*!": POINTER_ALWAYS, "0": OMITZERO}


@dataclass(frozen=True, slots=True)
class Field:
    number: int
    json: str  # "" for an inline field
    type: str  # a scalar code, a well-known or a message name (the element type for lists and maps)
    repeated: bool = False
    map: bool = False
    presence: str = OMITEMPTY

    @property
    def is_message(self) -> bool:
        return self.type not in SCALARS


@dataclass(slots=True)
class Message:
    name: str
    fields: list[Field] = field(default_factory=list)
    by_number: dict[int, Field] = field(default_factory=dict)
    by_json: dict[str, Field] = field(default_factory=dict)

    def add(self, f: Field) -> None:
        if f.number in self.by_number:
            raise ValueError(f"{self.name}: field number {f.number} defined twice")
        self.fields.append(f)
        self.by_number[f.number] = f
        if f.json:
            self.by_json[f.json] = f


def _field(message: str, line: str) -> Field:
    parts = line.split()
    if len(parts) != 3:
        raise ValueError(f"{message}: cannot parse {line!r}")
    number, name, spec = int(parts[0]), parts[1], parts[2]
    if name == "~":
        return Field(number, "", spec, presence=INLINE)
    body = spec.rstrip("!*0")
    marks = spec[len(body):]
    if marks not in _MARKS:
        raise ValueError(f"{message}.{name}: unknown marks {marks!r}")
    repeated = body.startswith("[") and body.endswith("]")
    is_map = body.startswith("{") and body.endswith("}")
    element = body[1:-1] if repeated or is_map else body
    return Field(number, name, element, repeated, is_map, _MARKS[marks])


def parse(text: str, into: dict[str, Message]) -> None:
    """Add the messages written in ``text`` to ``into``. A heading may name several messages
    (``= PodAffinity, PodAntiAffinity``): Go structs with the same fields, each its own message."""
    current: list[Message] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("="):
            current = []
            for name in (n.strip() for n in line[1:].split(",")):
                if name in into:
                    raise ValueError(f"message {name} defined twice")
                into[name] = Message(name)
                current.append(into[name])
            continue
        if not current:
            raise ValueError(f"field outside a message: {line!r}")
        for message in current:
            message.add(_field(message.name, line))


def check(messages: dict[str, Message]) -> None:
    """Every referenced type exists (a typo in a table fails at import, not on a request)."""
    for message in messages.values():
        for f in message.fields:
            if f.type not in SCALARS and f.type not in WELL_KNOWN and f.type not in messages:
                raise ValueError(f"{message.name}.{f.json or '~'}: unknown type {f.type}")
