"""Label and field selectors as kube-apiserver parses them (pure).

Label selectors support ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``
and ``k>n``/``k<n``. Field selectors support ``metadata.name``, ``metadata.namespace`` and, per kind, the fields
kube-apiserver allows (``KIND_FIELDS``: a pod's ``spec.nodeName``, an event's ``involvedObject.*``...)
with ``=``, ``==`` and ``!=``. Parse errors raise ``ValueError`` (the HTTP layer answers 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
# One requirement: key, operator, then the value or "(set)". Keys never contain spaces or operators.
_TOKEN = re.compile(r"\s*(?P<neg>!)?\s*(?P<key>[^\s!=<>(),]+)\s*"
                    r"(?:(?P<op>==|=|!=|<|>|\bin\b|\bnotin\b)\s*"
                    r"(?:\((?P<set>[^)]*)\)|(?P<val>[^\s,()]*)))?\s*")

Matcher = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "<", ">"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        op = self.op
        if op == "=":
            return value is not None and value in self.values
        if op == "!=":
            return value is None or value not in self.values
        if op == "in":
            return value is not None and value in self.values
        if op == "notin":
            return value is None or value not in self.values
        if op == "exists":
            return value is not None
        if op == "!":
            return value is None
        if value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(next(iter(self.values)))
        return number < bound if op == "<" else number > bound


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if not self.requirements:
            return True
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def _check_key(key: str, text: str) -> None:
    if not _KEY.match(key) or len(key) > 317:
        raise ValueError(f"unable to parse requirement: invalid label key {key!r} in selector {text!r}")


def _check_value(value: str, text: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise ValueError(f"unable to parse requirement: invalid label value {value!r} in selector {text!r}")


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector()
    reqs: list[Requirement] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unable to parse requirement: found {text[pos:]!r} in selector {text!r}")
        key, op, neg = m.group("key"), m.group("op"), m.group("neg")
        _check_key(key, text)
        if neg:
            if op:
                raise ValueError(f"unable to parse requirement: '!' cannot be combined with {op!r}")
            reqs.append(Requirement(key, "!"))
        elif not op:
            reqs.append(Requirement(key, "exists"))
        elif op in ("in", "notin"):
            if m.group("set") is None:
                raise ValueError(f"unable to parse requirement: expected '(' after {op!r} in {text!r}")
            values = [v.strip() for v in m.group("set").split(",")]
            for v in values:
                _check_value(v, text)
            reqs.append(Requirement(key, op, frozenset(values)))
        else:
            value = m.group("val") or ""
            if op in ("<", ">"):
                try:
                    int(value)
                except ValueError:
                    raise ValueError(f"unable to parse requirement: for 'Gt', 'Lt' operators, the value "
                                     f"must be an integer, got {value!r}") from None
            else:
                _check_value(value, text)
            reqs.append(Requirement(key, "!=" if op == "!=" else op if op in "<>" else "=",
                                    frozenset((value,))))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"unable to parse requirement: found {text[pos:]!r} in selector {text!r}")
            pos += 1
            if pos == len(text):
                raise ValueError(f"unable to parse requirement: trailing ',' in selector {text!r}")
    return LabelSelector(tuple(reqs))


FIELDS = ("metadata.name", "metadata.namespace")
# Beyond metadata, the fields kube-apiserver's registries accept in field selectors, per (group, kind)
# (``pkg/registry/core/pod/strategy.go`` ToSelectableFields, ``pkg/apis/core/v1/conversion.go``).
KIND_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                  "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    ("", "Secret"): ("type",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "Namespace"): ("status.phase",),
    ("", "ReplicationController"): ("status.replicas",),
}


def _field_value(obj: Mapping[str, object], path: str) -> str:
    """A field's value as field selectors compare it: a string; missing is empty, booleans lower case."""
    node: object = obj
    for part in (path.split(".") if path != "source" else ("source", "component")):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    # (field, must_equal, value): must_equal False means "!=".
    terms: tuple[tuple[str, bool, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    @property
    def on_object(self) -> bool:
        """Whether a term reads beyond metadata (``matches_object`` must be asked too)."""
        return any(field not in FIELDS for field, _, _ in self.terms)

    def exact_name(self) -> str | None:
        """The name an ``metadata.name=x`` term pins the result to, so a list can look up one key."""
        for field, eq, value in self.terms:
            if field == "metadata.name" and eq:
                return value
        return None

    def matches(self, namespace: str, name: str) -> bool:
        """The metadata terms (the others hold here; see ``matches_object``)."""
        for field, eq, value in self.terms:
            if field not in FIELDS:
                continue
            actual = name if field == "metadata.name" else namespace
            if (actual == value) != eq:
                return False
        return True

    def matches_object(self, obj: Mapping[str, object]) -> bool:
        for field, eq, value in self.terms:
            if field not in FIELDS and (_field_value(obj, field) == value) != eq:
                return False
        return True


def parse_field_selector(text: str | None, kind: tuple[str, str] | None = None) -> FieldSelector:
    """``kind`` (group, kind) allows that kind's extra fields (``KIND_FIELDS``)."""
    if not text or not text.strip():
        return FieldSelector()
    allowed = FIELDS + KIND_FIELDS.get(kind, ()) if kind is not None else FIELDS
    terms: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        part = part.strip()
        if "!=" in part:
            field, value = part.split("!=", 1)
            eq = False
        elif "==" in part:
            field, value = part.split("==", 1)
            eq = True
        elif "=" in part:
            field, value = part.split("=", 1)
            eq = True
        else:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
        field = field.strip()
        if field not in allowed:
            raise ValueError(f'field label not supported: {field}')
        terms.append((field, eq, value.strip()))
    return FieldSelector(tuple(terms))
