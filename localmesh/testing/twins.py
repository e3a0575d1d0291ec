"""Both twins of a compiled hot-path function under test (``apiserver._extensions``).

``twin(kind, ...)`` gives the compiled function or the pure one. A compiled twin that was not
built is skipped, unless ``CLUSTERMESH_REQUIRE_EXTENSIONS`` is set (the test script's full run),
where it fails: a run that should test both twins cannot silently test the pure one twice.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

COMPILED, PURE = "compiled", "pure"
KINDS = (COMPILED, PURE)


def require_extensions() -> bool:
    return bool(os.environ.get("CLUSTERMESH_REQUIRE_EXTENSIONS"))


def compiled_module(name: str) -> Any:
    """The compiled module ``name``; skips (or fails, see the module docstring) when not built."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if require_extensions():
            pytest.fail(f"compiled twin {name} is not built: {exc}")
        pytest.skip(f"compiled twin {name} is not built (python setup.py build_ext --inplace)")


def twin(kind: str, compiled_name: str, attr: str, pure: Any) -> Any:
    """The ``kind`` twin: ``compiled_name.attr``, or ``pure``."""
    return getattr(compiled_module(compiled_name), attr) if kind == COMPILED else pure
