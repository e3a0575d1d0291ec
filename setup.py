"""Build of the compiled twins of the hot path (the package's metadata is in pyproject.toml).

As aiohttp does: every ``.pyx`` listed here is compiled with Cython when a C compiler is there; when
it is not (or ``CLUSTERMESH_NO_EXTENSIONS`` is set) the build goes on without it, and the package
runs on the pure-Python twins (``apiserver/_extensions.py`` chooses at import time).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXTENSIONS = [
    "apiserver.kvstore.etcd._txn_c",
    "apiserver.convert._endpoints_c",
]


class OptionalBuildExt(build_ext):
    """``build_ext`` that warns instead of failing: the extensions are an optimisation."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (setuptools' CCompilerError and friends)
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc, ext.name)

    @staticmethod
    def _warn(exc: BaseException, name: str = "the compiled twins") -> None:
        print(f"WARNING: {name} not built ({exc}); the pure-Python twins will be used", file=sys.stderr)


def _extensions() -> list[Extension]:
    if os.environ.get("CLUSTERMESH_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("WARNING: Cython is not installed; the pure-Python twins will be used", file=sys.stderr)
        return []
    modules = [Extension(name, [name.replace(".", "/") + ".pyx"]) for name in EXTENSIONS]
    # The C output goes to build/ (an intermediate, not part of the package or the tree).
    return list(cythonize(modules, language_level=3, quiet=True, build_dir="build/cython"))


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
