"""Server-side printing: ``meta.k8s.io/v1`` Table responses, which ``kubectl get`` asks for (pure).

Columns are Name, the resource type's extra columns, and Age, as kube-apiserver's default table
convertor (plus a CRD's additionalPrinterColumns) produces them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson

from localmesh.kubesim._printers import NAMELESS, PRINTERS
from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import Stored

Obj = dict[str, Any]

_NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique within a namespace. Is required when creating resources, "
                               "although some resources may allow a client to request the generation of an "
                               "appropriate name automatically. Name is primarily intended for creation "
                               "idempotence and configuration definition. Cannot be updated."}
_AGE_COLUMN = {"name": "Age", "type": "date", "format": "", "priority": 0,
               "description": "CreationTimestamp is a timestamp representing the server time when this object "
                              "was created."}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_duration(seconds: float) -> str:
    """Go's ``duration.HumanDuration``, which kubectl's AGE column uses."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return f"{hours // (24 * 365)}y{(hours // 24) % 365}d"
    return f"{hours // (24 * 365)}y"


def _age(created: Any, now: dt.datetime) -> str:
    if not isinstance(created, str):
        return "<unknown>"
    try:
        then = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())


def _lookup(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def columns(rt: ResourceType) -> list[Obj]:
    printed = PRINTERS.get((rt.group, rt.kind))
    if printed is not None:
        lead = [] if (rt.group, rt.kind) in NAMELESS else [_NAME_COLUMN]
        return [*lead, *({"name": p.name, "type": p.type, "format": "", "description": p.name,
                          "priority": p.priority} for p in printed)]
    extra = [{"name": c.name, "type": c.type, "format": "", "description": c.name, "priority": c.priority}
             for c in rt.columns]
    return [_NAME_COLUMN, *extra, _AGE_COLUMN]


def _row(rt: ResourceType, obj: Obj, include: str, now: dt.datetime) -> Obj:
    meta = obj.get("metadata") or {}
    cells: list[Any] = [meta.get("name", "")]
    printed = PRINTERS.get((rt.group, rt.kind))
    if printed is not None:
        if (rt.group, rt.kind) in NAMELESS:
            cells.clear()
        cells.extend(p.cell(obj, now) for p in printed)
    else:
        for c in rt.columns:
            value = _lookup(obj, c.path)
            cells.append("<none>" if value is None and c.type == "string" else value)
        cells.append(_age(meta.get("creationTimestamp"), now))
    row: Obj = {"cells": cells}
    if include == "Object":
        row["object"] = obj
    elif include != "None":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    return row


def table(rt: ResourceType, items: Iterable[Stored], list_meta: Obj, include: str = "Metadata") -> bytes:
    now = dt.datetime.now(dt.UTC)
    rows = [_row(rt, orjson.loads(s.raw), include, now) for s in items]
    return orjson.dumps({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
                         "columnDefinitions": columns(rt), "rows": rows})


def table_event(rt: ResourceType, etype: str, obj: Stored, include: str = "Metadata") -> bytes:
    """One watch event whose object is a one-row Table."""
    meta = {"resourceVersion": str(obj.rv)}
    body = table(rt, (obj,), meta, include)
    return b'{"type":"' + etype.encode() + b'","object":' + body + b"}\n"
