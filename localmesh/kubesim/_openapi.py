"""A minimal OpenAPI v3 surface (pure): just enough for kubectl to choose server-side validation.

kubectl validates manifests before create/apply. It reads ``/openapi/v3`` and, for the object's
group-version, looks for a PATCH operation tagged with the object's GVK that accepts the
``fieldValidation`` parameter; if it finds one it leaves validation to the server (which accepts
any fields here, like a CRD with ``x-kubernetes-preserve-unknown-fields``). Without these documents
kubectl refuses to create anything unless run with ``--validate=false``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from localmesh.kubesim._resources import Registry, ResourceType

Obj = dict[str, Any]
_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _item_path(rt: ResourceType) -> str:
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    return f"/{_gv_path(rt.group, rt.version)}{ns}/{rt.plural}/{{name}}"


def group_version_document(registry: Registry, group: str, version: str) -> bytes | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: Obj = {}
    for rt in types:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        params = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for p in _QUERY_PARAMS]
        op = {"operationId": f"patch{rt.kind}", "x-kubernetes-action": "patch",
              "x-kubernetes-group-version-kind": gvk, "parameters": params,
              "responses": {"200": {"description": "OK"}}}
        paths[_item_path(rt)] = {"patch": op}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths,
           "components": {"schemas": {}}}
    return orjson.dumps(doc)


def root_document(registry: Registry) -> bytes:
    """``/openapi/v3``: one entry per group-version, with a content hash so clients' caches stay right."""
    paths: Obj = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = group_version_document(registry, group, version)
            assert doc is not None
            digest = hashlib.sha256(doc).hexdigest().upper()
            gv = _gv_path(group, version)
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return orjson.dumps({"paths": paths})
