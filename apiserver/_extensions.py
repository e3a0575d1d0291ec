"""Which twin of the hot path runs: the compiled one (Cython, built with the package) or its
pure-Python twin.

As in aiohttp (``AIOHTTP_NO_EXTENSIONS``), ``CLUSTERMESH_NO_EXTENSIONS`` set to anything but
empty forces the pure-Python twins at import time; without it, each compiled module is used when it
imports (it is missing where the package was installed without a C compiler). Both twins give
the same bytes (tested against each other).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

NO_EXTENSIONS = bool(os.environ.get("CLUSTERMESH_NO_EXTENSIONS"))


def compiled(name: str) -> ModuleType | None:
    """The compiled module ``name``, or None when extensions are off or it was not built."""
    if NO_EXTENSIONS:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
