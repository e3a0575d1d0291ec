"""The files of a pod's Secret, ConfigMap, projected and downward API volumes (pure: objects in, payload
out), as kubelet's volume plugins compute them before the atomic writer puts them on disk.

Modes: ``items[].mode``, else the volume's ``defaultMode``, else 0644. A missing object or key fails the
mount unless ``optional``; the messages are kubelet's.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from localmesh.kubelet._atomic import FileProjection
from localmesh.kubelet._env import Lookup
from localmesh.kubelet._fields import ConfigError, Obj, PodAddresses, field_value

DEFAULT_MODE = 0o644
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """What a pod's service account volume holds besides objects: its token and the API server's CA."""

    token: str
    ca_pem: bytes


def _raw_data(kind: str, obj: Obj) -> dict[str, bytes]:
    if kind == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _object_files(kind: str, source: Obj, name: str, namespace: str, lookup: Lookup, default_mode: int,
                  identity: PodIdentity) -> dict[str, FileProjection]:
    obj = lookup(kind, namespace, name)
    if obj is None and kind == "ConfigMap" and name == ROOT_CA_CONFIGMAP:
        # kube-controller-manager's root CA publisher puts this ConfigMap in every namespace.
        obj = {"data": {"ca.crt": identity.ca_pem.decode()}}
    optional = bool(source.get("optional"))
    if obj is None:
        if optional:
            return {}
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    data = _raw_data(kind, obj)
    items: list[Obj] = source.get("items") or []
    if not items:
        return {k: FileProjection(v, default_mode) for k, v in data.items()}
    out: dict[str, FileProjection] = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if optional:
                continue
            noun = "secret" if kind == "Secret" else "configmap"
            raise ConfigError(f"{noun} references non-existent {noun} key: {key}")
        out[str(item["path"])] = FileProjection(data[key], int(item.get("mode", default_mode)))
    return out


def _downward_files(source: Obj, pod: Obj, addrs: PodAddresses, default_mode: int) -> dict[str, FileProjection]:
    out: dict[str, FileProjection] = {}
    for item in source.get("items") or []:
        ref: Any = item.get("fieldRef")
        if not ref:
            raise ConfigError(f"downwardAPI item {item.get('path')}: only fieldRef is supported")
        value = field_value(pod, str(ref.get("fieldPath", "")), addrs, volume=True)
        out[str(item["path"])] = FileProjection(value.encode(), int(item.get("mode", default_mode)))
    return out


def volume_files(volume: Obj, pod: Obj, addrs: PodAddresses, lookup: Lookup,
                 identity: PodIdentity) -> dict[str, FileProjection] | None:
    """The payload of an object-backed volume; None for directory volumes (emptyDir, hostPath)."""
    namespace = str(pod["metadata"].get("namespace") or "default")
    if "secret" in volume:
        src = volume["secret"]
        return _object_files("Secret", src, str(src.get("secretName", "")), namespace, lookup,
                             int(src.get("defaultMode", DEFAULT_MODE)), identity)
    if "configMap" in volume:
        src = volume["configMap"]
        return _object_files("ConfigMap", src, str(src.get("name", "")), namespace, lookup,
                             int(src.get("defaultMode", DEFAULT_MODE)), identity)
    if "downwardAPI" in volume:
        src = volume["downwardAPI"]
        return _downward_files(src, pod, addrs, int(src.get("defaultMode", DEFAULT_MODE)))
    if "projected" in volume:
        src = volume["projected"]
        mode = int(src.get("defaultMode", DEFAULT_MODE))
        out: dict[str, FileProjection] = {}
        for part in src.get("sources") or []:
            if "secret" in part:
                out.update(_object_files("Secret", part["secret"], str(part["secret"].get("name", "")),
                                         namespace, lookup, mode, identity))
            elif "configMap" in part:
                out.update(_object_files("ConfigMap", part["configMap"], str(part["configMap"].get("name", "")),
                                         namespace, lookup, mode, identity))
            elif "downwardAPI" in part:
                out.update(_downward_files(part["downwardAPI"], pod, addrs, mode))
            elif "serviceAccountToken" in part:
                path = str(part["serviceAccountToken"].get("path", "token"))
                out[path] = FileProjection(identity.token.encode(), mode)
            else:
                raise ConfigError(f"projected volume {volume.get('name')}: unsupported source {sorted(part)}")
        return out
    if "emptyDir" in volume or "hostPath" in volume:
        return None
    raise ConfigError(f"volume {volume.get('name')}: unsupported type {sorted(k for k in volume if k != 'name')} "
                      "(the local kubelet supports secret, configMap, projected, downwardAPI, emptyDir, hostPath)")


def service_account_volume(namespace: str, identity: PodIdentity) -> dict[str, FileProjection]:
    """The ``kube-api-access-*`` volume the ServiceAccount admission plugin adds to every pod."""
    return {"token": FileProjection(identity.token.encode(), DEFAULT_MODE),
            "ca.crt": FileProjection(identity.ca_pem, DEFAULT_MODE),
            "namespace": FileProjection(namespace.encode(), DEFAULT_MODE)}


def referenced_objects(pod: Obj) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the pod's volumes read (to refresh them on change)."""
    refs: set[tuple[str, str]] = set()
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if "secret" in volume:
            refs.add(("Secret", str(volume["secret"].get("secretName", ""))))
        if "configMap" in volume:
            refs.add(("ConfigMap", str(volume["configMap"].get("name", ""))))
        for part in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in part:
                refs.add(("Secret", str(part["secret"].get("name", ""))))
            if "configMap" in part:
                refs.add(("ConfigMap", str(part["configMap"].get("name", ""))))
    return refs
