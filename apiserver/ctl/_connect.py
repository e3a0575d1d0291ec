"""``connect`` and ``disconnect``: who is whose peer, written into each cluster as Secrets and users.

``connect`` reads every cluster's access information, validates each (local, remote) pair as
cilium-cli does, requires one CA (unless ``--allow-mismatching-ca``: then every involved cluster's
server and remote certificate Secrets trust a bundle of all CAs), plans the peers per connection
mode, and re-renders each target cluster's ``cilium-kvstoremesh``, ``cilium-clustermesh`` and
``clustermesh-remote-users`` from its recorded peers plus the new ones. Running KVStoreMesh and agents
pick the change up from their config directory without a restart. ``disconnect`` removes exactly the
planned peers' entries. Both are idempotent.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from apiserver.ctl import _pairing, _render
from apiserver.ctl._access import AccessInfo, ca_match, validate_for_connect
from apiserver.ctl._cluster import access_info, cilium_config, cluster_identity, kvstoremesh_enabled, recorded_peers
from apiserver.ctl._errors import CtlError
from apiserver.ctl._kube import Kube
from apiserver.ctl._names import DEPLOYMENT, INFO, KVSTOREMESH_SECRET, REMOTE_SECRET, SERVER_SECRET

Log = Callable[[str], None]
CA_RESTART_ANNOTATION = "cilium.io/caBundleChangeRestartedAt"


@dataclass(frozen=True)
class ConnectParams:
    namespace: str
    mode: str = "bidirectional"
    destination_endpoints: tuple[str, ...] = ()
    source_endpoints: tuple[str, ...] = ()
    allow_mismatching_ca: bool = False


async def write_peers(kube: Kube, namespace: str, peers: Mapping[str, _render.Peer]) -> None:
    """Render and apply one cluster's three objects from its complete peer list."""
    kvstoremesh = await kvstoremesh_enabled(kube, namespace)
    if kvstoremesh:
        await kube.replace(_render.kvstoremesh_secret(peers, namespace))
    else:
        await kube.delete("v1", "Secret", KVSTOREMESH_SECRET, namespace)
    await kube.replace(_render.agents_secret(peers, namespace, kvstoremesh=kvstoremesh))
    await kube.replace(_render.users_configmap(peers, namespace))


def peer_of(info: AccessInfo) -> _render.Peer:
    return _render.Peer(info.cluster_name, info.service_ips, info.service_port)


def ca_bundle(cas: Sequence[bytes]) -> bytes:
    return b"".join(ca if ca.endswith(b"\n") else ca + b"\n" for ca in dict.fromkeys(cas))


async def _trust_bundle(kube: Kube, namespace: str, bundle: bytes, log: Log) -> None:
    """Every CA of the mesh trusted by this cluster's etcd server and by its clients of remotes."""
    changed = False
    for name in (SERVER_SECRET, REMOTE_SECRET):
        secret = await kube.get("v1", "Secret", name, namespace)
        if secret is None:
            raise CtlError(f'secret "{name}" not found (context {kube.context!r})',
                           "run 'clustermeshctl enable' in this cluster first")
        encoded = base64.b64encode(bundle).decode()
        if (secret.get("data") or {}).get("ca.crt") != encoded:
            await kube.merge_patch("v1", "Secret", name, namespace, {"data": {"ca.crt": encoded}})
            changed = True
    if changed:
        log(f"{INFO} Updating CA bundle on cluster {kube.context}")
        # etcd reads its trusted CAs at start: restart the pod, as cilium-cli does.
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await kube.merge_patch("apps/v1", "Deployment", DEPLOYMENT, namespace, {
            "spec": {"template": {"metadata": {"annotations": {CA_RESTART_ANNOTATION: stamp}}}}})


async def connect(local: Kube, remotes: Sequence[Kube], params: ConnectParams, log: Log) -> None:
    _pairing.check_mode(params.mode)
    if not remotes:
        raise CtlError("no destination context specified",
                       "use --destination-context to specify which cluster to connect to")
    infos: dict[str, AccessInfo] = {}
    kubes: dict[str, Kube] = {}
    local_info = await access_info(local, params.namespace, params.source_endpoints)
    for warning in local_info.warnings:
        log(warning)
    log(f"✨ Extracting access information of cluster {local_info.cluster_name}...")
    infos[local_info.cluster_name], kubes[local_info.cluster_name] = local_info, local
    mismatched = False
    remote_names = []
    for remote in remotes:
        info = await access_info(remote, params.namespace, params.destination_endpoints)
        log(f"✨ Extracting access information of cluster {info.cluster_name}...")
        for warning in info.warnings:
            log(warning)
        validate_for_connect(local_info, info)
        if not ca_match(local_info, info):
            if not params.allow_mismatching_ca:
                raise CtlError(f"Cilium CA certificates do not match between clusters {local_info.cluster_name} "
                               f"and {info.cluster_name}",
                               "share one cilium-ca Secret between clusters (enable --inherit-ca), or pass "
                               "--allow-mismatching-ca to trust both CAs")
            log("⚠️ Cilium CA certificates do not match between clusters. Remote cluster CA will be trusted "
                "in CA bundle")
            mismatched = True
        if info.cluster_name in infos:
            raise CtlError(f"Multiple remote clusters have the same name '{info.cluster_name}'",
                           "every cluster of a mesh needs its own cluster-name")
        infos[info.cluster_name], kubes[info.cluster_name] = info, remote
        remote_names.append(info.cluster_name)
    if params.mode == "mesh":
        for a, b in _pairs(remote_names):
            validate_for_connect(infos[a], infos[b])
    plan = _pairing.plan(params.mode, local_info.cluster_name, remote_names)
    if mismatched:
        bundle = ca_bundle([infos[name].ca for name in infos])
        for name in plan:
            await _trust_bundle(kubes[name], params.namespace, bundle, log)
    for target, added in plan.items():
        kube = kubes[target]
        peers = await recorded_peers(kube, params.namespace)
        peers.update({name: peer_of(infos[name]) for name in added})
        log(f"{INFO} Configuring Cilium in cluster {target} to connect to cluster {','.join(added)}")
        await write_peers(kube, params.namespace, peers)
    _connected_message(params.mode, local_info.cluster_name, remote_names, log)


def _pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def _connected_message(mode: str, local: str, remotes: Sequence[str], log: Log) -> None:
    if mode == "mesh":
        log(f"✅ Connected clusters {', '.join(remotes)}, and {local}!")
    else:
        arrow = "<=>" if mode == "bidirectional" else "=>"
        for remote in remotes:
            log(f"✅ Connected cluster {local} {arrow} {remote}!")


async def disconnect(local: Kube, remotes: Sequence[Kube], params: ConnectParams, log: Log) -> None:
    _pairing.check_mode(params.mode)
    if not remotes:
        raise CtlError("no destination context specified, use --destination-context to specify which cluster "
                       "to disconnect from", "pass --destination-context CONTEXT")
    kubes: dict[str, Kube] = {}
    local_name, _ = cluster_identity(await cilium_config(local, params.namespace))
    kubes[local_name] = local
    remote_names = []
    for remote in remotes:
        remote_name, _ = cluster_identity(await cilium_config(remote, params.namespace))
        kubes[remote_name] = remote
        remote_names.append(remote_name)
    plan = _pairing.plan(params.mode, local_name, remote_names)
    for target, removed in plan.items():
        kube = kubes[target]
        peers = await recorded_peers(kube, params.namespace)
        for name in removed:
            peers.pop(name, None)
        log(f"{INFO} Configuring Cilium in cluster {target} to disconnect from cluster {','.join(removed)}")
        await write_peers(kube, params.namespace, peers)
    if params.mode == "mesh":
        log(f"✅ Disconnected clusters {', '.join(remote_names)}, and {local_name}!")
    else:
        arrow = "<x>" if params.mode == "bidirectional" else "x>"
        for remote_name in remote_names:
            log(f"✅ Disconnected clusters {local_name} {arrow} {remote_name}!")
