"""Reading seed manifests: multi-document YAML, with ``kind: List`` documents flattened (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]


def _flatten(doc: Any, source: str) -> Iterator[Obj]:
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: a manifest document must be a mapping, got {type(doc).__name__}")
    if doc.get("kind") == "List" or (str(doc.get("kind", "")).endswith("List") and "items" in doc):
        for item in doc.get("items") or []:
            yield from _flatten(item, source)
        return
    if not doc.get("apiVersion") or not doc.get("kind"):
        raise ValueError(f"{source}: a manifest needs apiVersion and kind")
    yield doc


def parse_manifests(text: str, source: str = "<string>") -> list[Obj]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [obj for doc in yaml.load_all(text, Loader=loader) for obj in _flatten(doc, source)]


def load_manifests(path: str | Path) -> list[Obj]:
    p = Path(path)
    return parse_manifests(p.read_text(), str(p))
