"""``enable`` and ``disable``: the mesh API server of one cluster.

``enable`` reads the cluster's name and ID from ``cilium-config`` (refusing ``default`` / 0),
creates the CA Secret ``cilium-ca`` when missing and reuses it otherwise (the clusters of a mesh
share one CA), (re)issues the four certificate Secrets when they are missing or do not fit, and
applies the mesh API pod's manifests server-side with one field manager. ``disable`` deletes what
``enable`` and ``connect`` created -- the objects carrying our managed-by label -- and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from apiserver.ctl import _certs, _manifests
from apiserver.ctl._cluster import NOT_CONFIGURED, cilium_config, cluster_identity
from apiserver.ctl._errors import CtlError
from apiserver.ctl._kube import Kube, KubeObject, kind_of
from apiserver.ctl._names import (
    AGENTS_SECRET,
    CA_SECRET,
    CERT_SECRETS,
    KVSTOREMESH_SECRET,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_TYPES,
    USERS_CONFIGMAP,
)
from apiserver.security.pki import CertKey

Log = Callable[[str], None]
NODEPORT_WARNING = "⚠️ Using service type NodePort may fail when nodes are removed from the cluster!"


@dataclass(frozen=True)
class EnableParams:
    namespace: str
    service_type: str
    kvstoremesh: bool = True
    manifests: str = ""
    image: str = ""


def check_service_type(service_type: str) -> None:
    if not service_type:
        raise CtlError("cannot auto-detect service type, please specify using '--service-type' option",
                       "pass --service-type LoadBalancer (or NodePort)")
    if service_type not in SERVICE_TYPES:
        raise CtlError(f'service type "{service_type}" is not valid', "use LoadBalancer or NodePort")


async def _ensure_ca(kube: Kube, namespace: str, log: Log) -> CertKey:
    existing = await kube.get("v1", "Secret", CA_SECRET, namespace)
    if existing is not None:
        log(f"🔑 Using the existing CA in Secret {CA_SECRET}")
        return _certs.ca_from_secret_data(existing)
    ca = _certs.new_ca()
    await kube.apply(_certs.ca_secret(ca, namespace))
    log(f"🔑 Created a new CA in Secret {CA_SECRET}")
    return ca


async def inherit_ca(kube: Kube, source: Kube, namespace: str, log: Log) -> None:
    """Copy ``cilium-ca`` from ``source`` unless this cluster has one (cilium-cli's ``--inherit-ca``)."""
    if await kube.get("v1", "Secret", CA_SECRET, namespace) is not None:
        return
    secret = await source.get("v1", "Secret", CA_SECRET, namespace)
    if secret is None:
        raise CtlError(f'secret "{CA_SECRET}" not found in context {source.context!r}',
                       f"run 'clustermeshctl enable --context {source.context}' first")
    ca = _certs.ca_from_secret_data(secret)
    await kube.apply(_certs.ca_secret(ca, namespace))
    log(f"🔑 Copied the CA of context {source.context} into Secret {CA_SECRET}")


async def enable(kube: Kube, params: EnableParams, log: Log) -> None:
    check_service_type(params.service_type)
    config = await cilium_config(kube, params.namespace)
    name, cluster_id = cluster_identity(config)
    if name == "default" or cluster_id == "0":
        raise CtlError(NOT_CONFIGURED, "set cluster-name and cluster-id (1..255) in ConfigMap cilium-config")
    objects = _manifests.prepare(
        _manifests.load_manifests(params.manifests or _manifests.default_manifest_dir()),
        namespace=params.namespace, service_type=params.service_type, kvstoremesh=params.kvstoremesh,
        image=params.image)
    if params.service_type == "NodePort":
        log(NODEPORT_WARNING)
    ca = await _ensure_ca(kube, params.namespace, log)
    for secret_name, cn in _certs.leaf_names(name).items():
        current = await kube.get("v1", "Secret", secret_name, params.namespace)
        if _certs.leaf_is_current(current, ca, cn):
            continue
        await kube.apply(_certs.leaf_secret(ca, secret_name, name, params.namespace))
        log(f"🔑 Issued certificate {cn!r} into Secret {secret_name}")
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] == "ConfigMap" and meta["name"] == USERS_CONFIGMAP and await kube.get(
                "v1", "ConfigMap", USERS_CONFIGMAP, params.namespace) is not None:
            continue  # connect owns its content
        await kube.apply(obj)
    log(f"✅ ClusterMesh enabled in cluster {name} (context {kube.context}): Service type {params.service_type}, "
        f"KVStoreMesh {'enabled' if params.kvstoremesh else 'disabled'}")


def _ours(obj: KubeObject | None) -> bool:
    return obj is not None and ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


async def disable(kube: Kube, namespace: str, manifests: str, log: Log) -> None:
    objects = _manifests.load_manifests(manifests or _manifests.default_manifest_dir())
    targets = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in reversed(objects)]
    targets += [("v1", "Secret", n) for n in (AGENTS_SECRET, KVSTOREMESH_SECRET, *CERT_SECRETS, CA_SECRET)]
    targets.append(("v1", "ConfigMap", USERS_CONFIGMAP))
    removed = 0
    for api_version, kind, name in dict.fromkeys(targets):
        ns = namespace if kind_of(api_version, kind).namespaced else ""
        if _ours(await kube.get(api_version, kind, name, ns)):
            await kube.delete(api_version, kind, name, ns)
            removed += 1
    log(f"✅ ClusterMesh disabled in context {kube.context}: {removed} objects removed")

