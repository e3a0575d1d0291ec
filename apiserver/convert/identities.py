"""CiliumIdentity -> label list under ``cilium/state/identities/v1/id``. Pure.

The value is not JSON: it is upstream ``labels.Map2Labels(securityLabels, "").SortedList()``,
``source:key=value;`` for every label, sorted by the key without its source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _access as a

__all__ = ["POD_NAMESPACE_LABEL", "convert_cilium_identity", "identity_key", "identity_namespace"]

POD_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"

_SOURCE_UNSPEC = "unspec"
_SOURCE_RESERVED = "reserved"
_RESERVED_KEY_PREFIX = "reserved."


def identity_key(obj: Mapping[str, Any]) -> str:
    """Key relative to ``cilium/state/identities/v1/id``: the identity's name (its number)."""
    return a.name_of(a.metadata(obj))


def identity_namespace(obj: Mapping[str, Any]) -> str | None:
    """The pod namespace the identity belongs to, ``None`` if it carries no such label."""
    labels = _security_labels(obj)
    return (labels.get(POD_NAMESPACE_LABEL) or None) if labels else None


def convert_cilium_identity(obj: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """``(relative key, value)``, or ``None`` for an identity without security labels.

    Upstream ignores such identities (no upsert, no delete); so must the caller.
    """
    name = identity_key(obj)
    labels = _security_labels(obj)
    if not labels:
        return None
    return name, sorted_label_list(labels).encode()


def sorted_label_list(labels: Mapping[str, str]) -> str:
    by_key: dict[str, str] = {}
    # Two map keys may name the same label key with different sources; Go keeps whichever its
    # random map order visits last. Visit in sorted order so that our choice is stable.
    for raw_key in sorted(labels):
        source, key = _parse_source(raw_key)
        value = labels[raw_key]
        if source == _SOURCE_RESERVED and key == "":
            key, value = value, ""
        by_key[key] = f"{source or _SOURCE_UNSPEC}:{key}={value};"
    return "".join([by_key[k] for k in sorted(by_key)])


def _parse_source(text: str) -> tuple[str, str]:
    """Upstream ``parseSource(str, ':')``: split ``source:key``; ``$key`` is a reserved label."""
    if not text:
        return "", ""
    if text[0] == "$":
        return _SOURCE_RESERVED, text[1:]
    source, sep, key = text.partition(":")
    if sep:
        return source, key
    if text.startswith(_RESERVED_KEY_PREFIX):
        return _SOURCE_RESERVED, text[len(_RESERVED_KEY_PREFIX) :]
    return "", text


def _security_labels(obj: Mapping[str, Any]) -> Mapping[str, str] | None:
    a.metadata(obj)  # rejects a non-object before .get() is used on it
    return a.str_map(obj.get("security-labels"), "security-labels")
