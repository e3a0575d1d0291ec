"""Whether a Namespace is *global*, i.e. its objects are exported to the mesh. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _access as a

__all__ = ["GLOBAL_NAMESPACE_ANNOTATION", "namespace_is_global"]

GLOBAL_NAMESPACE_ANNOTATION = "clustermesh.cilium.io/global"


def namespace_is_global(ns_obj: Mapping[str, Any], default_global: bool = True) -> bool:
    """The annotation decides when present (``"true"``, any case); else ``default_global``
    (``--clustermesh-default-global-namespace``)."""
    value = a.annotation(a.metadata(ns_obj), GLOBAL_NAMESPACE_ANNOTATION)
    if value is None:
        return default_global
    return value.lower() == "true"
