"""kubesim: a Kubernetes API server emulator for tests, demos and benchmarks.

It serves real HTTP(S) that kubernetes-asyncio and kubectl talk to: discovery, list with snapshots
and paging, watch with bookmarks and 410 Expired, selectors, create/update/patch/delete with
kube-apiserver's Status errors, and fault injection. It holds objects in memory only.
``localmesh.kubesim.controllers`` runs Deployments, DaemonSets, a scheduler, Endpoints and LoadBalancer
addresses against it; ``LocalClusters`` starts N such clusters with one kubeconfig.

    async with KubeSim() as sim:
        sim.apply({"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": "n1"}})
        sim.write_kubeconfig(tmp_path / "kubeconfig")
"""

from pathlib import Path

from localmesh.kubesim._clusters import LocalCluster, LocalClusters
from localmesh.kubesim._errors import KubeError
from localmesh.kubesim._faults import Faults
from localmesh.kubesim._resources import BUILTIN_RESOURCES, Column, Registry, ResourceType
from localmesh.kubesim._seed import load_manifests
from localmesh.kubesim._sim import DEFAULT_NAMESPACES, KubeSim
from localmesh.kubesim._tls import ServerTLS

SAMPLES_DIR = Path(__file__).parent / "samples"
SAMPLE_CLUSTER = SAMPLES_DIR / "cluster1.yaml"  # a small Cilium cluster, for --seed

__all__ = [
    "BUILTIN_RESOURCES",
    "DEFAULT_NAMESPACES",
    "SAMPLES_DIR",
    "SAMPLE_CLUSTER",
    "Column",
    "Faults",
    "KubeError",
    "KubeSim",
    "LocalCluster",
    "LocalClusters",
    "Registry",
    "ResourceType",
    "ServerTLS",
    "load_manifests",
]
