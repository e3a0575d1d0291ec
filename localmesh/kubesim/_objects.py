"""Object validation, defaulting and metadata stamping, as kube-apiserver's generic registry does it.

Pure functions over plain dicts: they raise ``KubeError`` for bad input and never touch the store.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from typing import Any

from localmesh.kubesim import _errors as errors
from localmesh.kubesim._resources import ResourceType

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                  "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                  "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
# Fields that are not the object's desired state: changing them does not bump metadata.generation.
_NOT_SPEC = frozenset(("apiVersion", "kind", "metadata", "status"))


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_shape(rt: ResourceType, obj: Any) -> Obj:
    """The body must be a JSON object of this resource's apiVersion/kind with a metadata mapping."""
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version not in (None, "", rt.api_version) or kind not in (None, "", rt.kind):
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                 f"API version ({rt.api_version})" if api_version not in (None, "", rt.api_version)
                                 else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise errors.invalid(rt, "", "metadata", "FieldValueInvalid", "Invalid value: must be an object")
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
    return obj


def _check_string_map(rt: ResourceType, name: str, meta: Obj, field: str) -> None:
    value = meta.get(field)
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise errors.invalid(rt, name, f"metadata.{field}", "FieldValueInvalid",
                             "Invalid value: must be a map of string to string")


def validate(rt: ResourceType, obj: Obj, namespace: str | None) -> None:
    """Name, namespace and string maps; ``namespace`` is the one of the request URL (if any)."""
    meta: Obj = obj["metadata"]
    name = meta.get("name")
    if not name:
        raise errors.invalid(rt, "", "metadata.name", "FieldValueRequired",
                             "Required value: name or generateName is required")
    if not isinstance(name, str):
        raise errors.invalid(rt, "", "metadata.name", "FieldValueInvalid", "Invalid value: must be a string")
    pattern, msg, limit = ((_LABEL, _LABEL_MSG, 63) if rt.kind == "Namespace"
                           else (_SUBDOMAIN, _SUBDOMAIN_MSG, 253))
    if len(name) > limit or not pattern.match(name):
        raise errors.invalid(rt, name, "metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {msg}')
    body_ns = meta.get("namespace")
    if rt.namespaced:
        if namespace and body_ns and body_ns != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                     "on the request")
        ns = namespace or body_ns
        if not ns:
            raise errors.invalid(rt, name, "metadata.namespace", "FieldValueRequired", "Required value")
        meta["namespace"] = ns
    else:
        meta.pop("namespace", None)
    _check_string_map(rt, name, meta, "labels")
    _check_string_map(rt, name, meta, "annotations")
    finalizers = meta.get("finalizers")
    if finalizers is not None and (not isinstance(finalizers, list)
                                   or not all(isinstance(f, str) for f in finalizers)):
        raise errors.invalid(rt, name, "metadata.finalizers", "FieldValueInvalid",
                             "Invalid value: must be a list of strings")


def resolve_generate_name(obj: Obj) -> None:
    meta: Obj = obj["metadata"]
    prefix = meta.get("generateName")
    if not meta.get("name") and isinstance(prefix, str) and prefix:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"  # kube's: no vowels, no ambiguous digits
        meta["name"] = prefix[:58] + "".join(secrets.choice(alphabet) for _ in range(5))


def key_of(rt: ResourceType, obj: Obj) -> tuple[str, str]:
    meta: Obj = obj["metadata"]
    return (meta.get("namespace") or "" if rt.namespaced else "", meta["name"])


def stamp_new(obj: Obj) -> None:
    """Fields a create sets: uid, creationTimestamp, generation."""
    meta: Obj = obj["metadata"]
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    meta["generation"] = 1
    for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
        meta.pop(transient, None)


def spec_changed(old: Obj, new: Obj) -> bool:
    keys = (old.keys() | new.keys()) - _NOT_SPEC
    return any(old.get(k) != new.get(k) for k in keys)


def stamp_update(old: Obj, new: Obj) -> None:
    """Carry over what a client cannot change, and bump the generation when the spec changed."""
    old_meta: Obj = old["metadata"]
    meta: Obj = new["metadata"]
    for kept in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if kept in old_meta:
            meta[kept] = old_meta[kept]
        else:
            meta.pop(kept, None)
    generation = old_meta.get("generation", 1)
    meta["generation"] = generation + 1 if spec_changed(old, new) else generation


def graceful_pod_deletion(pod: Obj, grace_period_seconds: int | None) -> tuple[Obj, bool] | None:
    """kube-apiserver's graceful deletion of a pod (``pkg/registry/core/pod/strategy.go``
    ``CheckGracefulDelete``): a pod bound to a node and not yet terminal is only marked, with
    ``deletionTimestamp`` = now + grace and ``deletionGracePeriodSeconds``, for its kubelet to stop it.
    Returns (pod, whether the mark changed; an earlier, shorter one stands), or None to delete at once
    (grace 0, unbound or terminal pod)."""
    spec = pod.get("spec") or {}
    grace = grace_period_seconds
    if grace is None:
        grace = int(spec.get("terminationGracePeriodSeconds", 30))
    phase = (pod.get("status") or {}).get("phase")
    if grace <= 0 or not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return None
    meta = pod["metadata"]
    current = meta.get("deletionGracePeriodSeconds")
    if meta.get("deletionTimestamp") and current is not None and current <= grace:
        return pod, False
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=grace)
    meta["deletionTimestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    meta["deletionGracePeriodSeconds"] = grace
    return pod, True
