"""Verb semantics of kube-apiserver's generic registry over the store: create, update, patch, delete,
list (snapshots, paging, resourceVersion rules) and watch registration.

Both the HTTP layer and ``KubeSim``'s direct methods go through here, so a test that seeds objects
with ``sim.apply`` sees exactly what a client writing over HTTP would. Failures raise ``KubeError``.
No I/O happens here.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from localmesh.kubesim import _errors as errors
from localmesh.kubesim import _objects as objects
from localmesh.kubesim._defaults import apply_defaults
from localmesh.kubesim._discovery import resource_types_from_crd
from localmesh.kubesim._patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from localmesh.kubesim._resources import Registry, ResourceType
from localmesh.kubesim._selectors import FieldSelector, LabelSelector
from localmesh.kubesim._service_alloc import ServiceAllocator
from localmesh.kubesim._store import Event, Page, Store
from localmesh.kubesim._watch import Key, Stored, Watcher

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

_CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list.")


@dataclass(slots=True)
class ListResult:
    items: list[Stored]
    resource_version: int
    continue_token: str | None
    remaining: int | None


@dataclass(slots=True)
class Deletion:
    obj: Stored
    finished: bool  # False: finalizers hold the object (202 Accepted)


def encode_continue(rt: ResourceType, rv: int, key: Key) -> str:
    start = f"{key[0]}/{key[1]}" if rt.namespaced else key[1]
    doc = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"})
    return base64.urlsafe_b64encode(doc).rstrip(b"=").decode()


def decode_continue(rt: ResourceType, token: str) -> tuple[int, Key]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        rv, start = int(doc["rv"]), str(doc["start"])
        if doc.get("v") != "meta.k8s.io/v1" or not start.endswith("\x00") or rv <= 0:
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.bad_request(f"continue key is not valid: {token!r}") from None
    start = start[:-1]
    if rt.namespaced:
        ns, _, name = start.partition("/")
        return rv, (ns, name)
    return rv, ("", start)


def parse_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # kube-apiserver answers an undecodable body with 400 BadRequest.
        raise errors.bad_request(f"the object provided is unrecognized (invalid JSON: {exc})") from None


def _parse_rv(text: str) -> int:
    if not text.isdigit():
        raise errors.bad_request(f'resourceVersion: Invalid value: "{text}": must be a non-negative integer')
    return int(text)


class Api:
    def __init__(self, store: Store, registry: Registry, services: ServiceAllocator | None = None) -> None:
        self.store = store
        self.registry = registry
        self.services = services or ServiceAllocator()
        store.listeners.append(self._observe_services)
        # With a kubelet attached, deleting a running pod is graceful, as in kube-apiserver: the pod gets
        # a deletionTimestamp and stays until its kubelet stopped it and deletes it with grace 0.
        self.graceful_pods = False

    def _observe_services(self, rt: ResourceType, event: Event) -> None:
        if rt.kind == "Service" and rt.group == "":
            self.services.observe(rt, event.type, event.obj.key, orjson.loads(event.obj.raw),
                                  orjson.loads(event.prev.raw) if event.prev is not None else None)

    # -- helpers -----------------------------------------------------------------------------------

    def _require(self, rt: ResourceType, namespace: str | None, name: str) -> Stored:
        stored = self.store.get(rt, (namespace or "" if rt.namespaced else "", name))
        if stored is None:
            raise errors.not_found(rt, name)
        return stored

    def _namespace_exists(self, namespace: str) -> bool:
        ns_rt = self.registry.by_kind("v1", "Namespace")
        return ns_rt is None or self.store.get(ns_rt, ("", namespace)) is not None

    def _default(self, rt: ResourceType, obj: Obj, old: Obj | None, *, strict: bool = True) -> None:
        apply_defaults(rt, obj, old, self.services.allocate_cluster_ip)
        if rt.kind == "Service" and rt.group == "":
            self.services.admit(rt, objects.key_of(rt, obj), obj, old, strict=strict)

    def _committed(self, rt: ResourceType, stored: Stored) -> Stored:
        if rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition":
            for served in resource_types_from_crd(orjson.loads(stored.raw)):
                self.registry.add(served)
        return stored

    # -- reads -------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Stored:
        return self._require(rt, namespace, name)

    def snapshot_rv(self, rt: ResourceType, rv: str | None, match: str | None, limit: int,
                    continue_token: str | None) -> tuple[int, Key | None]:
        """The snapshot a list reads, and where it resumes: kube-apiserver's resourceVersion rules."""
        store, bucket = self.store, self.store.bucket(rt)
        if continue_token:
            if rv:
                raise errors.bad_request("specifying resource version is not allowed when using continue")
            snap, after = decode_continue(rt, continue_token)
            if snap < bucket.oldest_valid_rv():
                raise errors.expired(_CONTINUE_TOO_OLD)
            return snap, after
        if match and match not in ("Exact", "NotOlderThan"):
            raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                                     f'"Exact", "NotOlderThan"')
        if match and not rv:
            raise errors.bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
                                     "unless resourceVersion is provided")
        if not rv or rv == "0":
            if match == "Exact":
                raise errors.bad_request('resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is '
                                         'forbidden for resourceVersion "0"')
            return store.resource_version, None
        wanted = _parse_rv(rv)
        if wanted > store.resource_version:
            raise errors.too_large_resource_version(wanted, store.resource_version)
        # Legacy rule: a paged list at a given version is served at exactly that version.
        if match == "Exact" or (not match and limit > 0):
            if wanted < bucket.oldest_valid_rv():
                raise errors.too_old_resource_version(wanted, bucket.oldest_valid_rv())
            return wanted, None
        return store.resource_version, None

    def list(self, rt: ResourceType, namespace: str | None = None, *, rv: str | None = None,
             match: str | None = None, limit: int = 0, continue_token: str | None = None,
             labels: LabelSelector | None = None, fields: FieldSelector | None = None) -> ListResult:
        snap, after = self.snapshot_rv(rt, rv, match, limit, continue_token)
        page: Page = self.store.page(rt, snap, namespace=namespace, after=after, limit=limit,
                                     labels=labels, fields=fields)
        token = encode_continue(rt, snap, page.last_key) if page.last_key is not None else None
        return ListResult(page.items, snap, token, page.remaining)

    def watch(self, rt: ResourceType, watcher: Watcher, rv: str | None) -> None:
        """Start ``watcher`` at ``rv`` (unset/"0": current state as ADDED events, then live)."""
        if not rv or rv == "0":
            self.store.subscribe(rt, watcher, None)
            return
        since = _parse_rv(rv)
        oldest = self.store.bucket(rt).oldest_valid_rv()
        if since < oldest:
            raise errors.too_old_resource_version(since, oldest)
        if since > self.store.resource_version:
            raise errors.too_large_resource_version(since, self.store.resource_version)
        self.store.subscribe(rt, watcher, since)

    # -- writes ------------------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str | None, body: Any, *, dry_run: bool = False,
               require_namespace: bool = True) -> Stored:
        obj = objects.check_shape(rt, body)
        objects.resolve_generate_name(obj)
        objects.validate(rt, obj, namespace)
        key = objects.key_of(rt, obj)
        if require_namespace and rt.namespaced and not self._namespace_exists(key[0]):
            raise errors.namespace_not_found(key[0])
        if self.store.get(rt, key) is not None:
            raise errors.already_exists(rt, key[1])
        self._default(rt, obj, None)
        objects.stamp_new(obj)
        if dry_run:
            return self._dry(rt, obj, key, rv=self.store.resource_version)
        return self._committed(rt, self.store.write(rt, obj))

    @staticmethod
    def _dry(rt: ResourceType, obj: Obj, key: Key, rv: int) -> Stored:
        obj["metadata"]["resourceVersion"] = str(rv) if rv else ""
        if not rv:
            del obj["metadata"]["resourceVersion"]
        labels = obj["metadata"].get("labels") or None
        return Stored(orjson.dumps(obj), rv, key, labels)

    def update(self, rt: ResourceType, namespace: str | None, name: str, body: Any, *,
               subresource: str | None = None, dry_run: bool = False) -> Stored:
        """PUT: replace; metadata.resourceVersion, when given, must be the current one."""
        current = self._require(rt, namespace, name)
        obj = objects.check_shape(rt, body)
        if obj["metadata"].get("name") not in (None, "", name):
            raise errors.bad_request(f"the name of the object ({obj['metadata']['name']}) does not match the "
                                     f"name on the URL ({name})")
        obj["metadata"]["name"] = name
        if not obj["metadata"].get("resourceVersion") and not rt.unconditional_update:
            raise errors.invalid(rt, name, "metadata.resourceVersion", "FieldValueInvalid",
                                 "Invalid value: 0x0: must be specified for an update")
        return self._replace(rt, namespace, current, obj, subresource, dry_run)

    def patch(self, rt: ResourceType, namespace: str | None, name: str, content_type: str, body: bytes, *,
              subresource: str | None = None, dry_run: bool = False,
              field_manager: str | None = None) -> tuple[Stored, bool]:
        """PATCH in any supported flavour; returns (object, created). Apply may create."""
        ctype = content_type.split(";", 1)[0].strip().lower()
        if ctype not in PATCH_TYPES:
            raise errors.unsupported_media_type(content_type)
        if ctype == APPLY_PATCH:
            if not field_manager:
                raise errors.KubeError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                       'Required value: is required for apply patch')
            try:
                patch = yaml.safe_load(body)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from None
        else:
            patch = parse_body(body)
        key = (namespace or "" if rt.namespaced else "", name)
        current = self.store.get(rt, key)
        if current is None:
            if ctype != APPLY_PATCH or subresource:
                raise errors.not_found(rt, name)
            obj = objects.check_shape(rt, patch)
            if obj["metadata"].get("name") not in (None, name):
                raise errors.bad_request(f"the name of the object ({obj['metadata']['name']}) does not match "
                                         f"the name on the URL ({name})")
            obj["metadata"]["name"] = name
            return self.create(rt, namespace, obj, dry_run=dry_run), True
        old = orjson.loads(current.raw)
        # Like kube-apiserver: a patch document of the wrong shape is a 400, one that does not apply a 422.
        if ctype == JSON_PATCH and not isinstance(patch, list):
            raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        if ctype != JSON_PATCH and not isinstance(patch, dict):
            raise errors.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        try:
            if ctype == JSON_PATCH:
                new = json_patch(old, patch)
            elif ctype == STRATEGIC_PATCH:
                new = strategic_merge_patch(old, patch)
            else:
                new = merge_patch(old, patch)
        except PatchError as exc:
            raise errors.KubeError(422, "Invalid", str(exc)) from None
        obj = objects.check_shape(rt, new)
        if obj["metadata"].get("name") != name:
            raise errors.bad_request(f"the name of the object ({obj['metadata'].get('name')}) does not match "
                                     f"the name on the URL ({name})")
        return self._replace(rt, namespace, current, obj, subresource, dry_run), False

    def _replace(self, rt: ResourceType, namespace: str | None, current: Stored, obj: Obj,
                 subresource: str | None, dry_run: bool, *, strict: bool = True) -> Stored:
        name = current.key[1]
        old = orjson.loads(current.raw)
        meta: Obj = obj["metadata"]
        expected = meta.get("resourceVersion")
        if expected and str(expected) != str(current.rv):
            raise errors.conflict(rt, name)
        uid = meta.get("uid")
        if uid and uid != old["metadata"].get("uid"):
            raise errors.conflict(rt, name, f"Precondition failed: UID in precondition: {uid}, UID in object "
                                            f"meta: {old['metadata'].get('uid')}")
        if subresource == "status":
            status = obj.get("status")
            obj = dict(old)
            obj["metadata"] = dict(old["metadata"])
            if status is None:
                obj.pop("status", None)
            else:
                obj["status"] = status
        elif subresource:
            raise errors.path_not_found()
        objects.validate(rt, obj, namespace or current.key[0] or None)
        self._default(rt, obj, old, strict=strict)
        objects.stamp_update(old, obj)
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if obj == old:
            # kube-apiserver skips no-op writes: same resourceVersion, no watch event.
            return current
        if dry_run:
            return self._dry(rt, obj, current.key, current.rv)
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            deleted = self.store.remove(rt, current.key)
            assert deleted is not None
            return deleted
        return self._committed(rt, self.store.write(rt, obj))

    def put(self, rt: ResourceType, body: Any) -> Stored:
        """Create or replace without preconditions (test seeding; namespaces need not exist)."""
        obj = objects.check_shape(rt, body)
        objects.resolve_generate_name(obj)
        if rt.namespaced and not obj["metadata"].get("namespace"):
            obj["metadata"]["namespace"] = "default"
        objects.validate(rt, obj, None)
        current = self.store.get(rt, objects.key_of(rt, obj))
        if current is None:
            self._default(rt, obj, None, strict=False)
            objects.stamp_new(obj)
            return self._committed(rt, self.store.write(rt, obj))
        obj["metadata"].pop("resourceVersion", None)
        obj["metadata"].pop("uid", None)
        return self._replace(rt, None, current, obj, None, dry_run=False, strict=False)

    def delete(self, rt: ResourceType, namespace: str | None, name: str, *,
               preconditions: Obj | None = None, dry_run: bool = False,
               grace_period_seconds: int | None = None) -> Deletion:
        current = self._require(rt, namespace, name)
        old = orjson.loads(current.raw)
        meta: Obj = old["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(rt, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                                            f"object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(current.rv):
            raise errors.conflict(rt, name, f"Precondition failed: ResourceVersion in precondition: "
                                            f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                            f"{current.rv}")
        if self.graceful_pods and rt.kind == "Pod" and rt.group == "" and not dry_run:
            graceful = objects.graceful_pod_deletion(old, grace_period_seconds)
            if graceful is not None:
                marked, changed = graceful
                return Deletion(self.store.write(rt, marked) if changed else current, False)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp") or dry_run:
                return Deletion(current, False)
            meta["deletionTimestamp"] = objects.now_rfc3339()
            meta["deletionGracePeriodSeconds"] = 0
            return Deletion(self.store.write(rt, old), False)
        if dry_run:
            return Deletion(current, True)
        if rt.kind == "Namespace" and rt.group == "":
            self._empty_namespace(name)
        deleted = self.store.remove(rt, current.key)
        assert deleted is not None
        return Deletion(deleted, True)

    def _empty_namespace(self, namespace: str) -> None:
        # A real namespace controller deletes the contents before the namespace; the emulator does it
        # at once (finalizers of the contents are not waited for).
        for bucket in self.store.buckets():
            if bucket.rt.namespaced:
                for stored in list(self.store.iter_current(bucket.rt, namespace)):
                    self.store.remove(bucket.rt, stored.key)
