"""A slow, obviously-correct model of Go's ``json.Marshal`` for the property tests.

Written from the Go rules (``encoding/json/encode.go``, Go >= 1.22, ``escapeHTML`` on), one
character at a time, independent of orjson and of the module under test.
"""

from __future__ import annotations

from typing import Any

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _runes(s: str) -> list[str]:
    """What Go's decoder made of the text: surrogate pairs joined, lone halves as U+FFFD."""
    runes: list[str] = []
    i = 0
    while i < len(s):
        code = ord(s[i])
        if 0xD800 <= code <= 0xDBFF and i + 1 < len(s) and 0xDC00 <= ord(s[i + 1]) <= 0xDFFF:
            runes.append(chr(0x10000 + ((code - 0xD800) << 10) + (ord(s[i + 1]) - 0xDC00)))
            i += 2
            continue
        runes.append("\ufffd" if 0xD800 <= code <= 0xDFFF else s[i])
        i += 1
    return runes


def go_string(s: str) -> str:
    out = ['"']
    for ch in _runes(s):
        code = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif code < 0x20 or ch in "<>&":
            out.append(f"\\u00{code:02x}")
        elif code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_marshal(value: Any) -> bytes:
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return go_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_string(k)}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(type(value))
