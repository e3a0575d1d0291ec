"""``clustermesh-apiserver demo``: the Cluster Mesh guide on local clusters (``localmesh.demo._guide``), or
with ``--simulated`` the in-process simulated mesh (no kubelet, no root)."""

from __future__ import annotations

import argparse
import asyncio
import time

from apiserver.goflags import add_bool
from localmesh.cli._signals import pause, stop_on_signals

HELP = "Run the Cluster Mesh guide on local clusters (--simulated: the in-process simulated mesh)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clusters", type=int, default=3, help="Number of clusters (default 3)")
    parser.add_argument("--simulated", action="store_true",
                        help="The in-process simulated mesh instead of local clusters (no kubelet, no root)")
    add_bool(parser, "--kvstore-mesh", True, "Run KVStoreMesh (false: agents read remote etcds directly)")
    parser.add_argument("--nodes", type=int, default=1, help="Nodes (local kubelets) per cluster (default 1)")
    parser.add_argument("--endpoints", type=int, default=50, help="CiliumEndpoints per cluster (default 50)")
    parser.add_argument("--once", action="store_true",
                        help="Exit after the mesh has converged and the summary is printed")
    parser.add_argument("--churn-interval", type=float, default=2.0,
                        help="Seconds between endpoint moves while running (default 2)")
    parser.add_argument("--verbose", action="store_true", help="Show the components' info logs")
    parser.add_argument("--debug", action="store_true", help="Debug logging")


def run(args: argparse.Namespace) -> int:
    import logging

    from apiserver._logging import configure_logging

    configure_logging(args.debug)
    if not (args.verbose or args.debug):
        logging.getLogger().setLevel(logging.WARNING)
    if not args.simulated:
        from localmesh.cli._guide import run_guide

        return asyncio.run(run_guide(args))
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    from localmesh.demo import SimulatedMesh
    from localmesh.demo._report import consistency_errors, mesh_summary, propagation_latency
    from localmesh.testing.synthetic import ClusterShape

    stop = stop_on_signals()
    mesh = SimulatedMesh(args.clusters, ClusterShape(endpoints=args.endpoints))
    started = time.monotonic()
    try:
        await mesh.start()
        problems = mesh.prerequisite_problems()
        print("\nmesh prerequisites: " + ("unique names and IDs, disjoint Pod CIDRs, same datapath"
                                         if not problems else "; ".join(problems)), flush=True)
        if problems:
            return 1
        await mesh.wait_ready()
        print(f"\nMesh of {args.clusters} clusters converged in {time.monotonic() - started:.1f}s\n", flush=True)
        print(await mesh_summary(mesh), flush=True)
        errors = await consistency_errors(mesh)
        print("\nconsistency: " + ("every cache equals its remote, byte for byte" if not errors
                                   else "; ".join(errors)), flush=True)
        if errors:
            return 1
        if args.once or len(mesh.clusters) < 2:
            return 0
        print("\nMoving an endpoint every few seconds; Ctrl-C to stop.", flush=True)
        round_no = 0
        while not stop.is_set():
            round_no += 1
            source = mesh.clusters[round_no % len(mesh.clusters)]
            target = mesh.clusters[(round_no + 1) % len(mesh.clusters)]
            latency = await propagation_latency(mesh, source, target, round_no)
            print(f"  {source.info.name} endpoint moved -> visible in {target.info.name}'s cache "
                  f"after {latency * 1000:.1f} ms", flush=True)
            await pause(stop, args.churn_interval)
        return 0
    finally:
        await mesh.stop()
