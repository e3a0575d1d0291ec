"""What controllers read off Pods (readiness, ownership) and how they make Pods from a template (pure)."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from localmesh.kubesim._watch import Key
from localmesh.kubesim.controllers._base import Change, parse_rfc3339

Obj = dict[str, Any]

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand: no vowels


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Counts as a replica: not being deleted and not finished (controller.FilterActivePods)."""
    return not is_terminating(pod) and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (podutil.IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    cond = condition(pod, "Ready") or {}
    since = parse_rfc3339(cond.get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds <= now


def available_in(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until a ready pod becomes available, None if it is not ready or already available."""
    if not is_ready(pod) or min_ready_seconds <= 0:
        return None
    since = parse_rfc3339((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    if since is None:
        return None
    left = since + min_ready_seconds - now
    return left if left > 0 else None


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def owner_keys(change: Change, kind: str, api_group: str = "") -> list[Key]:
    """Keys of the ``kind`` objects (of ``api_group``, e.g. ``apps/``) controlling the changed object,
    before and after the change."""
    keys = []
    for obj in (change.obj, change.prev):
        ref = controller_of(obj) if obj is not None else None
        if ref is not None and ref.get("kind") == kind and str(ref.get("apiVersion", "")).startswith(api_group):
            keys.append((change.key[0], str(ref["name"])))
    return keys


def owner_reference(owner: Obj) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def owned_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


def selector_labels(owner: Obj) -> dict[str, str]:
    """The owner's ``matchLabels``: every pod it made carries them (its template must match)."""
    return dict(((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each byte mapped onto the vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def template_hash(template: Any) -> str:
    """The ``pod-template-hash`` of a pod template: FNV-32a, encoded as kube-controller-manager encodes it.
    Hashed over canonical JSON instead of Go's struct dump, so the values differ from a real cluster's."""
    return safe_encode(str(fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))))


def pod_from_template(owner: Obj, template: Obj, generate_name: str, labels: dict[str, str],
                      node_name: str | None = None) -> Obj:
    """A Pod of ``owner`` made from ``template`` (controller.GetPodFromTemplate)."""
    tmeta: Obj = template.get("metadata") or {}
    meta: Obj = {"generateName": generate_name, "namespace": owner["metadata"]["namespace"],
                 "labels": {**(tmeta.get("labels") or {}), **labels},
                 "ownerReferences": [owner_reference(owner)]}
    for kept in ("annotations", "finalizers"):
        if tmeta.get(kept):
            meta[kept] = copy.deepcopy(tmeta[kept])
    spec: Obj = copy.deepcopy(template.get("spec") or {})
    if node_name is not None:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def deletion_rank(pod: Obj) -> tuple[int, int, int, str]:
    """Sort key: pods to delete first come first (unscheduled, pending, not ready, newest),
    a simplified controller.ActivePods ordering."""
    status = pod.get("status") or {}
    scheduled = 1 if pod.get("spec", {}).get("nodeName") else 0
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(str(status.get("phase")), 0)
    ready = 1 if is_ready(pod) else 0
    created = str(pod["metadata"].get("creationTimestamp", ""))
    # Newest first: invert the timestamp's order by negating each character.
    return scheduled, phase, ready, "".join(chr(0x10FFFF - ord(c)) for c in created)
