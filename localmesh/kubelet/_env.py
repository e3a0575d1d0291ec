"""A container's environment as kubelet builds it (``makeEnvironmentVariables``), pure.

The service variables come first (here only ``KUBERNETES_SERVICE_HOST``/``PORT``), then ``envFrom``
sources, then ``env`` in order; each ``env`` value is ``$(VAR)``-expanded against the variables
defined before it. ``resourceFieldRef`` is not supported (a clear error).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from localmesh.kubelet._expand import expand
from localmesh.kubelet._fields import ConfigError, Obj, PodAddresses, field_value

# (kind "ConfigMap"/"Secret", namespace, name) -> object or None
Lookup = Callable[[str, str, str], Obj | None]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def source_data(kind: str, obj: Obj) -> dict[str, str]:
    """The string values of a ConfigMap (data + binaryData) or Secret (base64-decoded data)."""
    if kind == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _key_ref(kind: str, ref: Obj, namespace: str, lookup: Lookup) -> str | None:
    name, key, optional = str(ref.get("name", "")), str(ref.get("key", "")), bool(ref.get("optional"))
    obj = lookup(kind, namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    data = source_data(kind, obj)
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key]


def build_env(container: Obj, pod: Obj, addrs: PodAddresses, lookup: Lookup,
              service_env: Mapping[str, str]) -> dict[str, str]:
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    env: dict[str, str] = dict(service_env)
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, ref_field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref: Any = source.get(ref_field)
            if not ref:
                continue
            obj = lookup(kind, namespace, str(ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            env.update((prefix + key, text) for key, text in source_data(kind, obj).items())
    for var in container.get("env") or []:
        name = str(var["name"])
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        source = var["valueFrom"] or {}
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, str(source["fieldRef"].get("fieldPath", "")), addrs)
        elif "configMapKeyRef" in source:
            value = _key_ref("ConfigMap", source["configMapKeyRef"], namespace, lookup)
        elif "secretKeyRef" in source:
            value = _key_ref("Secret", source["secretKeyRef"], namespace, lookup)
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom {sorted(source)} (the local kubelet "
                              "supports fieldRef, configMapKeyRef and secretKeyRef)")
        if value is not None:
            env[name] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", str((pod.get("metadata") or {}).get("name", ""))[:63])
    return env


def command_line(container: Obj, env: Mapping[str, str], entrypoint: Sequence[str]) -> list[str]:
    """``command`` (else the image's entrypoint) + ``args``; the container's are ``$(VAR)``-expanded."""
    command = [expand(str(c), env) for c in container.get("command") or []] or list(entrypoint)
    return command + [expand(str(a), env) for a in container.get("args") or []]
