"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch over plain JSON (pure).

The strategic merge patch needs no schema: kubectl's patches carry ``$setElementOrder/<list>``
directives (and ``$patch: delete`` entries) whose elements name each list's merge key, which is all
the merge needs. Lists without such a hint are replaced, as atomic lists are.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """The patch could not be applied (the HTTP layer answers 422)."""


class PatchTestFailed(PatchError):
    """A ``test`` operation did not hold (the HTTP layer answers 409 Conflict)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    return [_unescape(t) for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not allow_end):
        raise PatchError(f"array index {idx} out of bounds")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path component {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"cannot descend into {type(node).__name__} at {token!r}")
    return node


def _get(doc: Any, pointer: str) -> Any:
    tokens = _split(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    raise PatchError(f"path {pointer!r} does not exist")


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _split(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {pointer!r}")
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    tokens = _split(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer!r} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, allow_end=False))
    raise PatchError(f"cannot remove at {pointer!r}")


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 over a deep copy of ``doc``; the input is never modified."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise PatchError(f"invalid JSON patch operation {op!r}")
        kind, path = op.get("op"), op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {kind!r} needs a value")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path) if _split(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {kind!r} needs 'from'")
            if kind == "move":
                doc, value = _remove(doc, source)
            else:
                value = copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchTestFailed(f"testing value {path} failed")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc


_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def _merge_key(elements: list[Any]) -> str | None:
    """The merge key a directive's elements show: the one non-directive key they all carry."""
    for element in elements:
        if isinstance(element, dict):
            keys = [k for k in element if not k.startswith("$")]
            if len(keys) == 1:
                return str(keys[0])
    return None


def _ordered(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    ident = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    rank = {repr(v): i for i, v in enumerate(ident)}

    def position(item: Any) -> int:
        value = item.get(key) if key and isinstance(item, dict) else item
        return rank.get(repr(value), len(rank))

    return sorted(items, key=position)  # stable: items the order does not name keep their place, last


def _merge_list(current: Any, patch: list[Any], order: list[Any] | None,
                delete_primitives: list[Any] | None) -> list[Any]:
    base = list(current) if isinstance(current, list) else []
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [e for e in patch if not (isinstance(e, dict) and e.get("$patch") == "replace")]
    directive_elements = [e for e in patch if isinstance(e, dict) and "$patch" in e] + list(order or [])
    key = _merge_key(directive_elements)
    if key is None:
        primitives = all(not isinstance(e, dict) for e in patch)
        if not primitives or (order is None and delete_primitives is None):
            return copy.deepcopy(patch)  # no merge hint: an atomic list, replaced
        # A set of primitives (e.g. finalizers): union, minus the explicit deletions.
        merged = base + [e for e in patch if e not in base]
        merged = [e for e in merged if e not in (delete_primitives or [])]
        return _ordered(merged, order, None) if order else merged
    result = list(base)
    for element in patch:
        if not isinstance(element, dict):
            continue
        ident = element.get(key)
        match = next((i for i, e in enumerate(result) if isinstance(e, dict) and e.get(key) == ident), None)
        if element.get("$patch") == "delete":
            result = [e for e in result if not (isinstance(e, dict) and e.get(key) == ident)]
        elif match is None:
            result.append(strategic_merge_patch({}, element))
        else:
            result[match] = strategic_merge_patch(result[match], element)
    return _ordered(result, order, key) if order else result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch, schema-free (see the module docstring)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    orders = {k[len(_ORDER):]: v for k, v in patch.items() if k.startswith(_ORDER) and isinstance(v, list)}
    deletions = {k[len(_DELETE_PRIMITIVES):]: v for k, v in patch.items()
                 if k.startswith(_DELETE_PRIMITIVES) and isinstance(v, list)}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, orders.get(key), deletions.get(key))
        else:
            result[key] = value
    # Directives for lists the patch does not otherwise touch: reorder, or drop primitives.
    for key in (orders.keys() | deletions.keys()) - patch.keys():
        if isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], [], orders.get(key), deletions.get(key))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result
