"""Child process: one KVStoreMesh daemon (in its own process, so its memory can be measured).

Prints ``{"ready": true, "started": t0, "ready_at": t1}`` (``time.monotonic()``; ``started`` is
just before the daemon starts, after imports) once every remote is mirrored, then runs until
SIGTERM. The remote heartbeat watchdog is off: benchmark remotes have no live exporter. Runs the
daemon as the CLI's runner does, garbage-collector policy included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstoremesh import DaemonSettings, KVStoreMeshDaemon, MeshConfig, start_daemon
from apiserver.runner import PartRunner, serve


async def main(args: argparse.Namespace) -> int:
    opts = {"etcd.address": args.local_endpoint, **dict(o.split("=", 1) for o in args.kvstore_opt)}
    settings = DaemonSettings(
        cluster=ClusterInfo(args.cluster_name, args.cluster_id), config_dir=args.config_dir,
        kvstore=KVStoreOptions.parse(opts), mesh=MeshConfig(heartbeat_timeout=0.0, per_cluster_ready_timeout=120.0),
        health_port=0, health_host="127.0.0.1", api_serve_addr="127.0.0.1:0")
    daemon = KVStoreMeshDaemon(settings)
    started = time.monotonic()

    async def report_ready() -> None:
        assert daemon.mesh is not None
        await daemon.mesh.wait_ready()
        sys.stdout.write(json.dumps({"ready": True, "started": started, "ready_at": time.monotonic()}) + "\n")
        sys.stdout.flush()

    async def start(runner: PartRunner) -> None:
        await start_daemon(runner, daemon)  # as the CLI does, heap policy included
        runner.spawn("report ready", report_ready())

    return await serve("kvstoremesh-bench", start)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--cluster-id", type=int, required=True)
    parser.add_argument("--config-dir", required=True)
    parser.add_argument("--local-endpoint", required=True)
    parser.add_argument("--kvstore-opt", action="append", default=[])
    sys.exit(asyncio.run(main(parser.parse_args())))
