"""Layers point one way: every import in ``apiserver`` goes down the table below, never up or sideways.

The walk reads every ``import`` statement of every module (also those inside functions and under
``TYPE_CHECKING``), so a lazy import cannot hide a cycle. A new module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import apiserver

ROOT = Path(apiserver.__file__).parent

# Bottom first. Packages of one row may not import each other (they are independent rooms);
# modules of the foundation row may import each other.
FOUNDATION = frozenset({
    "apiserver", "apiserver._logging", "apiserver.goflags", "apiserver.paths", "apiserver.clusterinfo",
    "apiserver._tasks", "apiserver._heap", "apiserver._tokenbucket", "apiserver.metrics",
    "apiserver.filewatch", "apiserver._backoff", "apiserver._lifecycle", "apiserver._extensions",
    "apiserver.runner", "apiserver.etcd_process",
})
LAYERS: tuple[frozenset[str], ...] = (
    FOUNDATION,
    frozenset({"apiserver.convert", "apiserver.kube", "apiserver.kvstore", "apiserver.server"}),
    frozenset({"apiserver.security"}),
    frozenset({"apiserver.clustermesh", "apiserver.kvstoremesh"}),
    frozenset({"apiserver.cli", "apiserver.ctl"}),
    frozenset({"apiserver.__main__"}),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    """The layer entry a module belongs to: a foundation module itself, else its sub-package."""
    if module in FOUNDATION:
        return module
    parts = module.split(".")
    return ".".join(parts[:2])


def _layer(room: str) -> int:
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError(f"{room} is in no layer of tests/test_layers.py: give it one")


def _imports(path: Path) -> list[tuple[int, str]]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # ``from apiserver import kvstore`` imports a package, not a name of the root.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if base == "apiserver" and (ROOT / alias.name).exists()]
    return found


MODULES = sorted(ROOT.rglob("*.py"))


def _is_module(name: str) -> bool:
    path = ROOT.parent / name.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").is_file()


def _violations(path: Path) -> list[str]:
    module = _module_name(path)
    room = _room(module)
    layer = _layer(room)
    bad = []
    for line, target in _imports(path):
        if target.split(".")[0] == "localmesh":
            bad.append(f"{module}:{line} imports {target}: the product never imports the local tooling")
            continue
        if target.split(".")[0] != "apiserver" or target == "apiserver":
            continue
        if not _is_module(target):
            target = target.rpartition(".")[0]  # ``from apiserver.x import name``
        target_room = _room(target)
        if target_room == room:
            continue
        target_layer = _layer(target_room)
        if target_layer > layer:
            bad.append(f"{module}:{line} imports {target} from a layer above it")
        elif target_layer == layer and layer != 0:
            bad.append(f"{module}:{line} imports {target}, a room of its own layer")
    return bad


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_imports_point_down(path: Path) -> None:
    assert _violations(path) == []


def _with_extra_lines(monkeypatch: pytest.MonkeyPatch, module: Path, extra: str) -> None:
    original = Path.read_text

    def patched(self: Path, *args: Any, **kwargs: Any) -> str:
        text = original(self, *args, **kwargs)
        return text + extra if self == module else text

    monkeypatch.setattr(Path, "read_text", patched)


def test_the_check_catches_upward_and_local_tooling_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    syncstore = ROOT / "kvstore" / "syncstore.py"
    _with_extra_lines(monkeypatch, syncstore, "\nfrom apiserver.kvstoremesh import KVStoreMesh\n"
                      "def f() -> None:\n    import localmesh.memory.kv\n")
    found = _violations(syncstore)
    assert any("imports apiserver.kvstoremesh from a layer above it" in v for v in found), found
    assert any("imports localmesh.memory.kv: the product never imports" in v for v in found), found


def test_the_check_catches_a_sideways_import(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = ROOT / "convert" / "nodes.py"
    _with_extra_lines(monkeypatch, nodes, "\nfrom apiserver.kvstore import Put\n")
    assert any("imports apiserver.kvstore, a room of its own layer" in v for v in _violations(nodes))

