"""The ``scale`` subresource of Deployments (``autoscaling/v1`` ``Scale``), which ``kubectl scale`` reads
and patches: ``spec.replicas`` in, ``status.replicas`` and the selector out. No I/O here."""

from __future__ import annotations

from typing import Any

import orjson

from localmesh.kubesim import _errors as errors
from localmesh.kubesim._api import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, Api, parse_body
from localmesh.kubesim._patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from localmesh.kubesim._resources import ResourceType
from localmesh.kubesim._watch import Stored

Obj = dict[str, Any]

def _selector(obj: Obj) -> str:
    match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(match.items()))


def scale_of(stored: Stored) -> Obj:
    obj = orjson.loads(stored.raw)
    meta = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": _selector(obj)}}


def update_scale(api: Api, rt: ResourceType, namespace: str | None, name: str, method: str, content_type: str,
                 body: bytes) -> Obj:
    """PUT or PATCH of the Scale: the owner's ``spec.replicas`` changes; returns the new Scale."""
    current = api.get(rt, namespace, name)
    scale = scale_of(current)
    if method == "PUT":
        new = parse_body(body)
    else:
        ctype = content_type.split(";", 1)[0].strip().lower()
        patch = parse_body(body)
        try:
            if ctype == JSON_PATCH and isinstance(patch, list):
                new = json_patch(scale, patch)
            elif ctype == STRATEGIC_PATCH and isinstance(patch, dict):
                new = strategic_merge_patch(scale, patch)
            elif ctype == MERGE_PATCH and isinstance(patch, dict):
                new = merge_patch(scale, patch)
            else:
                raise errors.unsupported_media_type(content_type)
        except PatchError as exc:
            raise errors.KubeError(422, "Invalid", str(exc)) from None
    # ScaleSpec.replicas is `json:"replicas,omitempty"`: absent means 0, as Go decodes it.
    replicas = (new.get("spec") or {}).get("replicas", 0) if isinstance(new, dict) else None
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.invalid(rt, name, "spec.replicas", "FieldValueInvalid",
                             f"Invalid value: {replicas}: must be greater than or equal to 0")
    expected = (new.get("metadata") or {}).get("resourceVersion")
    obj = orjson.loads(current.raw)
    obj["spec"]["replicas"] = replicas
    if not expected:
        obj["metadata"].pop("resourceVersion", None)
    elif str(expected) != str(current.rv):
        raise errors.conflict(rt, name)
    return scale_of(api.update(rt, namespace, name, obj))
