"""Reads of one cluster that several subcommands share: ``cilium-config``, access information,
whether KVStoreMesh runs, and the peers ``connect`` recorded."""

from __future__ import annotations

from collections.abc import Sequence

from apiserver.ctl._access import AccessInfo, ca_from_secret, extract_access_info
from apiserver.ctl._errors import CtlError
from apiserver.ctl._kube import Kube, KubeObject
from apiserver.ctl._names import (
    AGENTS_SECRET,
    CA_SECRET,
    CONFIGMAP,
    DEPLOYMENT,
    KVSTOREMESH_CONTAINER,
    REMOTE_SECRET,
    SERVICE,
)
from apiserver.ctl._render import PEERS_ANNOTATION, Peer, peers_from_annotation

NOT_CONFIGURED = ("Cluster not configured for clustermesh, use '--set cluster.id' and '--set cluster.name' "
                  "with 'cilium install'.")


async def cilium_config(kube: Kube, namespace: str) -> dict[str, str]:
    cm = await kube.get("v1", "ConfigMap", CONFIGMAP, namespace)
    if cm is None:
        raise CtlError(f'unable to retrieve ConfigMap "{CONFIGMAP}": configmaps "{CONFIGMAP}" not found '
                       f"(context {kube.context!r}, namespace {namespace})",
                       "install Cilium in this cluster first, or pass the right --namespace / --context")
    return {str(k): str(v) for k, v in (cm.get("data") or {}).items()}


def cluster_identity(config: dict[str, str]) -> tuple[str, str]:
    """(name, ID) with cilium-cli's defaults for unset values."""
    return config.get("cluster-name") or "default", config.get("cluster-id") or "0"


async def ca_certificate(kube: Kube, namespace: str) -> bytes:
    secret = await kube.get("v1", "Secret", CA_SECRET, namespace)
    if secret is not None:
        return ca_from_secret(secret)
    remote = await kube.get("v1", "Secret", REMOTE_SECRET, namespace)
    if remote is not None and (remote.get("data") or {}).get("ca.crt"):
        import base64

        return base64.b64decode(remote["data"]["ca.crt"])
    raise CtlError(f'unable to retrieve the CA certificate: secret "{CA_SECRET}" not found '
                   f"(context {kube.context!r})", "run 'clustermeshctl enable' in this cluster first")


async def access_info(kube: Kube, namespace: str, endpoints: Sequence[str] = ()) -> AccessInfo:
    config = await cilium_config(kube, namespace)
    service = await kube.get("v1", "Service", SERVICE, namespace)
    if service is None:
        raise CtlError(f'unable to get clustermesh service "{SERVICE}": services "{SERVICE}" not found '
                       f"(context {kube.context!r})", "run 'clustermeshctl enable' in this cluster first")
    nodes: list[KubeObject] = []
    if (service.get("spec") or {}).get("type") == "NodePort" and not endpoints:
        nodes = await kube.list("v1", "Node")
    ca = await ca_certificate(kube, namespace)
    return extract_access_info(config, service, ca, nodes=nodes, endpoints=endpoints)


async def kvstoremesh_enabled(kube: Kube, namespace: str) -> bool:
    deploy = await kube.get("apps/v1", "Deployment", DEPLOYMENT, namespace)
    if deploy is None:
        raise CtlError(f'failed checking whether KVStoreMesh is enabled: deployments.apps "{DEPLOYMENT}" not found '
                       f"(context {kube.context!r})", "run 'clustermeshctl enable' in this cluster first")
    containers = ((deploy.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    return any(c.get("name") == KVSTOREMESH_CONTAINER for c in containers)


async def recorded_peers(kube: Kube, namespace: str) -> dict[str, Peer]:
    secret = await kube.get("v1", "Secret", AGENTS_SECRET, namespace)
    if secret is None:
        return {}
    return peers_from_annotation(((secret.get("metadata") or {}).get("annotations") or {}).get(PEERS_ANNOTATION))
