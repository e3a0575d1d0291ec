"""End to end with the real security setup: cluster c1's exporter writes to its etcd (etcdinit,
TLS, client-cert auth) with the ``admin-c1`` certificate; the KVStoreMesh of cluster c2 mirrors
all of it using nothing but a read-only identity of c1 (``remote``, or ``remote-c2`` created by
the users manager), laid out as Helm mounts it."""

from __future__ import annotations

import asyncio
import shutil
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from meshtest import dev_pki_under, start_mesh_etcd

from apiserver.clusterinfo import ClusterInfo
from apiserver.clustermesh.exporter import Exporter
from apiserver.clustermesh.options import ExporterOptions
from apiserver.kube import KubeOptions, build_client
from apiserver.kvstore import PermissionDeniedError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstoremesh import DaemonSettings, KVStoreMeshDaemon, MeshConfig
from apiserver.metrics import APISERVER_NAMESPACE, KVSTOREMESH_NAMESPACE, Metrics
from apiserver.security.users import UsersManager
from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.polling import eventually as wait_for
from localmesh.testing.synthetic import ClusterShape, synthetic_cluster

C1, C2 = ClusterInfo("c1", 1), ClusterInfo("c2", 2)
# Spec 6.1: where each exported prefix of c1 lands in c2's cache.
STATE_TO_CACHE = {
    "cilium/state/nodes/v1/c1/": "cilium/cache/nodes/v1/c1/",
    "cilium/state/services/v1/c1/": "cilium/cache/services/v1/c1/",
    "cilium/state/identities/v1/id/": "cilium/cache/identities/v1/c1/id/",
    "cilium/state/ip/v1/default/": "cilium/cache/ip/v1/c1/",
}


async def dump(client: EtcdClient, prefix: str) -> dict[str, bytes]:
    kvs, _ = await client.list_prefix(prefix)
    return {kv.key: kv.value for kv in kvs}


def helm_kvstoremesh_secret(config_dir: Path, identity_dir: Path, endpoint: str) -> Path:
    """The ``cilium-kvstoremesh`` volume: the remote cert as ``common-etcd-client*`` plus one
    etcd client YAML per remote cluster, named after it."""
    config_dir.mkdir()
    shutil.copy(identity_dir / "tls.crt", config_dir / "common-etcd-client.crt")
    shutil.copy(identity_dir / "tls.key", config_dir / "common-etcd-client.key")
    shutil.copy(identity_dir / "ca.crt", config_dir / "common-etcd-client-ca.crt")
    (config_dir / C1.name).write_text(
        f"endpoints:\n- {endpoint}\n"
        f"trusted-ca-file: {config_dir / 'common-etcd-client-ca.crt'}\n"
        f"key-file: {config_dir / 'common-etcd-client.key'}\n"
        f"cert-file: {config_dir / 'common-etcd-client.crt'}\n")
    return config_dir / C1.name


@pytest.mark.parametrize("identity", ["remote", "remote-c2"])
async def test_kvstoremesh_mirrors_a_remote_with_a_read_only_identity(tmp_path: Path, identity: str) -> None:
    c1_etcd = await asyncio.to_thread(start_mesh_etcd, tmp_path / "c1", seed=False)
    c2_etcd = EtcdServer(name="c2")
    async with AsyncExitStack() as stack:
        stack.callback(c1_etcd.close_sync)
        stack.callback(c2_etcd.close_sync)
        pki = await asyncio.to_thread(dev_pki_under, c1_etcd, tmp_path / "pki")

        # Cluster c1: Kubernetes (simulated) -> exporter -> etcd, as admin-c1.
        sim = KubeSim()
        await sim.start()
        stack.push_async_callback(sim.stop)
        for obj in synthetic_cluster(ClusterShape(name="c1", cluster_index=1, namespaces=1, nodes=2,
                                                  identities=2, endpoints=4, services=1)):
            sim.apply(obj)
        kube = await build_client(KubeOptions(kubeconfig_path=str(sim.write_kubeconfig(tmp_path / "c1.kubeconfig"))))
        stack.push_async_callback(kube.close)
        admin_config = str(pki / "admin-c1" / "etcd-config.yaml")
        options = ExporterOptions(cluster=C1, kvstore=KVStoreOptions(config_file=admin_config))
        admin = await EtcdClient.connect(EtcdConfig.from_options(options.kvstore))
        stack.push_async_callback(admin.close)
        exporter = Exporter(options, admin, kube, Metrics(APISERVER_NAMESPACE))
        await exporter.start()
        stack.push_async_callback(exporter.stop)
        if identity != "remote":  # authMode "cluster": the per-peer user must exist first
            await UsersManager(admin, pki / "users.yaml", cluster_name=C1.name).reconcile_once()

        # Cluster c2: KVStoreMesh whose only credential for c1 is `identity`.
        await c2_etcd.start()
        remote_file = helm_kvstoremesh_secret(tmp_path / "c2-clustermesh", pki / identity, c1_etcd.client_url)
        daemon = KVStoreMeshDaemon(DaemonSettings(
            cluster=C2, config_dir=str(remote_file.parent), kvstore=KVStoreOptions(address=c2_etcd.endpoint),
            mesh=MeshConfig(per_cluster_ready_timeout=30.0), health_port=0, health_host="127.0.0.1",
            api_serve_addr="127.0.0.1:0"), metrics=Metrics(KVSTOREMESH_NAMESPACE))
        await daemon.start()
        stack.push_async_callback(daemon.stop)
        assert daemon.mesh is not None
        await asyncio.wait_for(exporter.wait_ready(), 60)
        await asyncio.wait_for(daemon.mesh.wait_ready(), 60)

        async with await EtcdClient.connect(EtcdConfig(endpoints=(c2_etcd.endpoint,))) as c2:
            async def mirrored() -> bool:
                for state, cache in STATE_TO_CACHE.items():
                    source = {k.removeprefix(state): v for k, v in (await dump(admin, state)).items()}
                    copied = {k.removeprefix(cache): v for k, v in (await dump(c2, cache)).items()}
                    if not source or source != copied:
                        return False
                return True

            await wait_for(mirrored, timeout=30, what="c1's state in c2's cache, byte for byte")
            assert b'"cached":true' in (await dump(c2, "cilium/cluster-config/c1"))["cilium/cluster-config/c1"]
        status = {s.name: s for s in daemon.mesh.status()}
        assert status["c1"].ready and status["c1"].connected

        # The credential KVStoreMesh used is read-only on c1.
        async with await EtcdClient.connect(EtcdConfig.from_yaml(remote_file)) as remote:
            with pytest.raises(PermissionDeniedError):
                await remote.put("cilium/state/nodes/v1/c1/evil", b"x")
