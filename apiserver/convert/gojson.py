"""Go ``encoding/json`` compatible serializer: what ``json.Marshal`` would write, byte for byte.

Rules reproduced: compact output, dicts in insertion order (build Go structs
in field order), Go maps sorted by key bytes (build them with :func:`go_map`), HTML-safe string
escaping (``<`` ``>`` ``&`` as ``\\u003c`` ``\\u003e`` ``\\u0026``), U+2028/U+2029 escaped, other
non-ASCII raw UTF-8, control characters as ``\\b \\f \\n \\r \\t`` or ``\\u00xx``.

orjson already writes compact JSON with Go's control-character escapes; the five HTML/line
separator escapes are added by a byte-level post-pass, which is safe because those bytes can
only occur inside string literals of a JSON document.

Supported values: ``dict`` (str keys), ``list``/``tuple``, ``str``, ``int`` (64-bit), ``bool``,
``None``. Floats are not supported (no wire type has one, and Go formats them differently).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

from ._errors import ConversionError

__all__ = ["ConversionError", "go_json", "go_map"]

V = TypeVar("V")

_LT, _GT, _AMP = b"<", b">", b"&"
_LS, _PS = "\u2028".encode(), "\u2029".encode()


def go_map(d: Mapping[str, V]) -> dict[str, V]:
    """A copy of ``d`` ordered like Go writes a map: keys sorted by their UTF-8 bytes.

    Python orders ``str`` by code point, which is the same order as UTF-8 bytes.
    """
    return dict(sorted(d.items()))


def go_json(value: Any) -> bytes:
    """Serialize ``value`` exactly as Go's ``json.Marshal`` would serialize the same structure."""
    try:
        out = orjson.dumps(value)
    except orjson.JSONEncodeError:
        # Lone surrogates cannot be encoded as UTF-8. Go never holds them: its decoder turns
        # them into U+FFFD when it reads the Kubernetes object, so do the same and retry.
        try:
            out = orjson.dumps(_replace_surrogates(value))
        except orjson.JSONEncodeError as exc:
            raise ConversionError(f"value cannot be encoded as JSON: {exc}") from None
    escaped = _go_escape(out)
    # orjson's result keeps its whole write buffer (4 KiB or more) allocated; the sync store keeps
    # values for the life of the process, so hand out an exact-size copy.
    return bytes(memoryview(escaped)) if escaped is out else escaped


def _go_escape(out: bytes) -> bytes:
    if _LT in out:
        out = out.replace(_LT, b"\\u003c")
    if _GT in out:
        out = out.replace(_GT, b"\\u003e")
    if _AMP in out:
        out = out.replace(_AMP, b"\\u0026")
    # U+2028/U+2029 are three-byte sequences: ASCII-only output (the usual case) holds neither,
    # and isascii() is ten times cheaper than the two substring searches.
    if not out.isascii():
        if _LS in out:
            out = out.replace(_LS, b"\\u2028")
        if _PS in out:
            out = out.replace(_PS, b"\\u2029")
    return out


def _fix_str(s: str) -> str:
    # A valid pair spelt as two code points is joined; a lone half becomes U+FFFD.
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _fix_str(value)
    if isinstance(value, Mapping):
        return {
            (_fix_str(k) if isinstance(k, str) else k): _replace_surrogates(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_replace_surrogates(v) for v in value]
    return value
