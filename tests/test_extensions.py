"""The compiled twins are the ones in use when built; CLUSTERMESH_NO_EXTENSIONS forces the pure ones."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apiserver import _extensions
from localmesh.testing.twins import compiled_module

ROOT = Path(__file__).resolve().parent.parent
# compiled module -> (module choosing, attribute it uses, attribute of the compiled module)
CHOICES = {
    "apiserver.kvstore.etcd._txn_c": ("apiserver.kvstore.etcd._codec", "encode_branch", "encode_branch"),
    "apiserver.convert._endpoints_c": ("apiserver.convert.endpoints", "_plain_entries", "plain_endpoint_entries"),
}
PROBE = ("import importlib, sys; m = importlib.import_module(sys.argv[1]); "
         "print(type(getattr(m, sys.argv[2])).__name__)")


def _setup_extensions() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EXTENSIONS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no EXTENSIONS list")


def test_every_compiled_twin_is_built_and_has_a_stub() -> None:
    pyx = ROOT.glob("apiserver/**/*.pyx")
    sources = sorted(str(p.relative_to(ROOT).with_suffix("")).replace("/", ".") for p in pyx)
    assert sorted(_setup_extensions()) == sources == sorted(CHOICES)
    for name in sources:
        assert (ROOT / (name.replace(".", "/") + ".pyi")).is_file(), name


@pytest.mark.skipif(_extensions.NO_EXTENSIONS, reason="CLUSTERMESH_NO_EXTENSIONS is set")
@pytest.mark.parametrize("name", sorted(CHOICES))
def test_a_built_compiled_twin_is_the_one_in_use(name: str) -> None:
    module = compiled_module(name)  # skipped when not built, failed when the run requires it
    chooser, attr, compiled_attr = CHOICES[name]
    assert getattr(importlib.import_module(chooser), attr) is getattr(module, compiled_attr)
    assert Path(module.__file__ or "").suffix == ".so"


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_no_extensions_forces_the_pure_twin(name: str) -> None:
    chooser, attr, _ = CHOICES[name]
    env = {**os.environ, "CLUSTERMESH_NO_EXTENSIONS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, chooser, attr], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "function"  # a pure-Python function; the compiled one is a cython_function_or_method
