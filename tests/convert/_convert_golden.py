"""Loading the upstream golden cases kept in ``testdata/*.txtar``.

A txtar file is a free-text header followed by ``-- name --`` sections. ``*.yaml`` sections
are Kubernetes objects; ``*.expected`` sections are ``kvstore/list`` listings: ``# <key>``
lines, each followed by the value -- pretty-printed JSON upstream, compacted here exactly
(whitespace outside strings removed, nothing else touched), since etcd holds compact bytes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TESTDATA = Path(__file__).parent / "testdata"


@cache
def sections(name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    current: str | None = None
    for line in (TESTDATA / name).read_text().splitlines(keepends=True):
        if line.startswith("-- ") and line.rstrip().endswith(" --"):
            current = line.strip()[3:-3]
            out[current] = ""
        elif current is not None:
            out[current] += line
    return out


def k8s_object(txtar: str, section: str) -> dict[str, Any]:
    obj = yaml.safe_load(sections(txtar)[section])
    assert isinstance(obj, dict)
    return obj


def compact(pretty: str) -> bytes:
    """Drop the whitespace between JSON tokens; string contents stay byte for byte."""
    out: list[str] = []
    in_string = escaped = False
    for ch in pretty:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in " \t\r\n":
            out.append(ch)
    return "".join(out).encode()


def listing(txtar: str, section: str, *, prefix: str, json_values: bool = True) -> dict[str, bytes]:
    """``{key relative to prefix: value bytes}`` of an expected ``kvstore/list`` output."""
    entries: dict[str, list[str]] = {}
    key: str | None = None
    for line in sections(txtar)[section].splitlines():
        if line.startswith("# "):
            full = line[2:]
            assert full.startswith(prefix + "/"), full
            key = full[len(prefix) + 1 :]
            entries[key] = []
        elif line.strip():
            assert key is not None
            entries[key].append(line)
    if json_values:
        return {k: compact("\n".join(v)) for k, v in entries.items()}
    return {k: "\n".join(v).encode() for k, v in entries.items()}


def insert_after(value: bytes, field: str, new_field: str, new_value: Any) -> bytes:
    """Insert ``"new_field":new_value`` right after top-level ``field`` of a compact object.

    Used to express a documented per-version delta (e.g. 1.19 still writes ``"Mask":null``)
    on a newer golden without editing it by hand.
    """
    pairs = json.loads(value, object_pairs_hook=list)
    out: list[tuple[str, Any]] = []
    for k, v in pairs:
        out.append((k, v))
        if k == field:
            out.append((new_field, new_value))
    body = ",".join(f"{json.dumps(k)}:{json.dumps(v, separators=(',', ':'))}" for k, v in out)
    return ("{" + body + "}").encode()
