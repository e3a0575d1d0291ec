"""``clustermesh-apiserver mesh-check``: can these clusters form a Cluster Mesh?

Reads ``cilium-config`` and the CiliumNodes of every cluster (one kubeconfig each) and checks the
prerequisites: valid unique names and IDs, equal max-connected-clusters, non-overlapping Pod
CIDRs, matching datapath. Exit 0 when they can be meshed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

HELP = "Check that clusters can be meshed (unique names/IDs, disjoint Pod CIDRs, same datapath)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", action="append", required=True, metavar="PATH",
                        help="kubeconfig of one cluster (repeat for every cluster)")
    parser.add_argument("--namespace", default="kube-system", help="Namespace of cilium-config")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_check(args.kubeconfig, args.namespace))


async def _check(kubeconfigs: list[str], namespace: str) -> int:
    from apiserver.kube import KubeOptions, build_client
    from apiserver.mesh import check_mesh
    from apiserver.mesh.facts import read_facts

    facts = []
    for path in kubeconfigs:
        kube = await build_client(KubeOptions(kubeconfig_path=path))
        try:
            facts.append(await read_facts(kube, namespace))
        except Exception as exc:
            print(f"✗ {path}: cannot read the cluster's facts: {exc}", file=sys.stderr)
            return 1
        finally:
            await kube.close()
    for f in facts:
        print(f"  {f.name} (id {f.id}, max {f.max_connected_clusters}, {f.datapath}): "
              f"Pod CIDRs {', '.join(f.pod_cidrs) or 'none'}")
    problems = check_mesh(facts)
    for problem in problems:
        print(f"✗ {problem}")
    if problems:
        return 1
    print(f"✓ {len(facts)} clusters can be meshed")
    return 0
