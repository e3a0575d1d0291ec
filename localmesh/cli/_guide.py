"""The guide flow of ``clustermesh-apiserver demo``: start local clusters, run the guide's commands, show
one agent's view of a global Service, move endpoints until Ctrl-C, remove everything."""

from __future__ import annotations

import argparse
import asyncio
import os

from localmesh.cli._signals import pause, stop_on_signals


async def run_guide(args: argparse.Namespace) -> int:
    from localmesh.demo._guide import GuideMesh

    if os.geteuid() != 0:
        print("Error: the local clusters need root (the kubelet makes network and mount namespaces)\n"
              "💡 run as root, or use --simulated for the in-process mesh")
        return 2
    stop = stop_on_signals()
    mesh = GuideMesh(args.clusters, nodes=args.nodes, kvstoremesh=args.kvstore_mesh, endpoints=args.endpoints)
    try:
        print(f"Starting {args.clusters} local clusters (kubeconfig {mesh.kubeconfig}) ...", flush=True)
        starting = asyncio.create_task(mesh.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            return 130
        stopped.cancel()
        starting.result()
        print(f"\nLocal clusters {', '.join(c.name for c in mesh.clusters)} are up; contexts in {mesh.kubeconfig}\n"
              f"  kubectl --kubeconfig {mesh.kubeconfig} --context cluster1 get pods -A", flush=True)
        guide = asyncio.create_task(mesh.run_guide())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({guide, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not guide.done():
            guide.cancel()  # the running clustermeshctl process is terminated
            await asyncio.gather(guide, return_exceptions=True)
            return 130
        stopped.cancel()
        healthy = guide.result()
        print("\n━━ 5. One agent's view of the global services (backends from every cluster)", flush=True)
        print(await mesh.agent_services(mesh.clusters[0]), flush=True)
        if not healthy:
            return 1
        if args.once:
            return 0
        print(f"Moving an endpoint every {args.churn_interval:g}s; Ctrl-C to stop and remove everything.\n"
              f"(kubeconfig: {mesh.kubeconfig})", flush=True)
        tick = 0
        while not stop.is_set():
            moved = mesh.move_endpoint(tick)
            if moved:
                print(f"  {moved}", flush=True)
            tick += 1
            if tick % (3 * len(mesh.clusters)) == 0:
                print(await mesh.agent_services(mesh.clusters[0]), flush=True)
            await pause(stop, args.churn_interval)
        return 0
    finally:
        print("\nStopping the local clusters ...", flush=True)
        await mesh.stop()
        print("Removed everything.", flush=True)
