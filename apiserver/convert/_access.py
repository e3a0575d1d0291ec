"""Typed reads from raw Kubernetes JSON objects, with Go decoding semantics. Pure.

Each helper mirrors what Go's ``encoding/json`` does when the informer decodes the object into
its typed struct: ``null`` or a missing field reads as the zero value, a value of the wrong
type makes the whole object undecodable -- here a :class:`ConversionError` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ._errors import ConversionError

# Names are DNS subdomains (<= 253 bytes); anything near this limit is garbage, not a name.
MAX_NAME_BYTES = 64 * 1024

INT32 = (-(1 << 31), (1 << 31) - 1)
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64 = (0, (1 << 64) - 1)

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _kind(value: Any) -> str:
    return type(value).__name__


def mapping(value: Any, what: str) -> Mapping[str, Any]:
    """An object field; ``null``/missing reads as an empty object."""
    if type(value) is dict:  # the common case, without the slower ABC check
        return value
    if value is None:
        return EMPTY
    if isinstance(value, Mapping):
        return value
    raise ConversionError(f"{what}: expected an object, got {_kind(value)}")


def opt_mapping(value: Any, what: str) -> Mapping[str, Any] | None:
    """A pointer-to-struct field: ``None`` when missing or ``null``."""
    if value is None or type(value) is dict:
        return value
    if isinstance(value, Mapping):
        return value
    raise ConversionError(f"{what}: expected an object, got {_kind(value)}")


def array(value: Any, what: str) -> Sequence[Any]:
    if type(value) is list:
        return value
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    raise ConversionError(f"{what}: expected an array, got {_kind(value)}")


def objects(value: Any, what: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The objects of an array, each with its own ``what`` (``spec.ports[2]``) for error messages."""
    for i, item in enumerate(array(value, what)):
        where = f"{what}[{i}]"
        yield where, mapping(item, where)


def string(value: Any, what: str) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ConversionError(f"{what}: expected a string, got {_kind(value)}")


def integer(value: Any, what: str, bounds: tuple[int, int] = INT64) -> int:
    if type(value) is int and bounds[0] <= value <= bounds[1]:
        return value
    if value is None:
        return 0
    # bool is an int subclass in Python, but JSON true/false never decodes into a Go integer.
    if isinstance(value, int) and not isinstance(value, bool):
        if bounds[0] <= value <= bounds[1]:
            return value
        raise ConversionError(f"{what}: {value} out of range")
    raise ConversionError(f"{what}: expected an integer, got {_kind(value)}")


def opt_bool(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConversionError(f"{what}: expected a boolean, got {_kind(value)}")


def str_map(value: Any, what: str) -> Mapping[str, str] | None:
    """A ``map[string]string``: ``None`` when missing/``null`` (Go's nil map), else the map.

    A ``null`` element decodes to ``""`` in Go; any other non-string element is an error.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConversionError(f"{what}: expected an object, got {_kind(value)}")
    if all(type(v) is str for v in value.values()):
        return value
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            out[k] = ""
        elif isinstance(v, str):
            out[k] = v
        else:
            raise ConversionError(f"{what}[{k!r}]: expected a string, got {_kind(v)}")
    return out


def _object_name(value: Any, what: str, *, required: bool) -> str:
    name = string(value, what)
    if not name:
        if required:
            raise ConversionError(f"{what} is missing")
        return name
    if len(name) > MAX_NAME_BYTES // 4 and len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ConversionError(f"{what} is longer than {MAX_NAME_BYTES} bytes")
    if "/" in name:
        # Names are path segments of etcd keys; a slash would silently change the key layout.
        raise ConversionError(f"{what} {name!r} contains '/'")
    return name


def metadata(obj: Any) -> Mapping[str, Any]:
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise ConversionError(f"object: expected an object, got {_kind(obj)}")
    return mapping(obj.get("metadata"), "metadata")


def name_of(meta: Mapping[str, Any]) -> str:
    return _object_name(meta.get("name"), "metadata.name", required=True)


def namespace_of(meta: Mapping[str, Any], *, required: bool = True) -> str:
    return _object_name(meta.get("namespace"), "metadata.namespace", required=required)


def checked_name(value: Any, what: str, *, required: bool) -> str:
    """A name or namespace held outside ``metadata`` (CiliumEndpointSlice fields)."""
    return _object_name(value, what, required=required)


def annotation(meta: Mapping[str, Any], *keys: str) -> str | None:
    """Upstream ``annotation.Get``: the first of ``keys`` present, aliases after the main key."""
    annotations = str_map(meta.get("annotations"), "metadata.annotations")
    if annotations:
        for key in keys:
            value = annotations.get(key)
            if value is not None:
                return value
    return None


def labels_of(meta: Mapping[str, Any]) -> Mapping[str, str]:
    return str_map(meta.get("labels"), "metadata.labels") or EMPTY
