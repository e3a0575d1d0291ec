"""``clustermesh-apiserver agent``: a Cilium agent's view of the mesh, run by the local runtime's agent
DaemonSet (one per node); see ``localmesh.agent``."""

from __future__ import annotations

import argparse
import asyncio
import os

from apiserver._logging import configure_logging, get_logger
from apiserver.goflags import add_bool
from apiserver.kube import KubeOptions, add_kube_flags
from apiserver.kube.config import in_cluster
from localmesh.cli._signals import stop_on_signals

HELP = "Read the mesh as a Cilium agent does and serve its ClusterMesh status (local runtime)"

log = get_logger("agent")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-name", default=os.environ.get("CILIUM_CLUSTER_NAME", "default"),
                        help="Name of the local cluster (env CILIUM_CLUSTER_NAME)")
    parser.add_argument("--cluster-id", type=int, default=int(os.environ.get("CILIUM_CLUSTER_ID", "0") or 0),
                        help="ID of the local cluster (env CILIUM_CLUSTER_ID)")
    parser.add_argument("--max-connected-clusters", type=int, default=255, help="255 or 511 (default 255)")
    parser.add_argument("--clustermesh-config", default="/var/lib/cilium/clustermesh",
                        help="Directory with one etcd client YAML per remote cluster (the cilium-clustermesh Secret)")
    parser.add_argument("--api-serve-addr", default="127.0.0.1:9890", help="Agent API address (default 127.0.0.1:9890)")
    add_kube_flags(parser)
    add_bool(parser, "--debug", False, "Enable debug logging")


async def _serve(args: argparse.Namespace) -> int:
    from apiserver.clusterinfo import ClusterInfo, InvalidClusterInfo
    from localmesh.agent import Agent, AgentSettings

    cluster = ClusterInfo(args.cluster_name, args.cluster_id, args.max_connected_clusters)
    try:
        cluster.validate(strict=True)
    except InvalidClusterInfo as exc:
        log.error("Invalid cluster identity", error=str(exc))
        return 1
    kube = KubeOptions.from_args(args)
    use_kube = bool(kube.kubeconfig_path or kube.api_server_urls or in_cluster())
    agent = Agent(AgentSettings(cluster, args.clustermesh_config, args.api_serve_addr, kube if use_kube else None))
    stopping = stop_on_signals()
    await agent.start()
    try:
        await stopping.wait()
    finally:
        await agent.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    configure_logging(args.debug)
    return asyncio.run(_serve(args))
