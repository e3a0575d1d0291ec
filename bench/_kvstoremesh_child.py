"""Child process: one KVStoreMesh daemon (in its own process, so its memory can be measured).

Prints ``{"ready": true, "started": t0, "ready_at": t1}`` (``time.monotonic()``; ``started`` is
just before the daemon starts, after imports) once every remote is mirrored, then runs until
SIGTERM. The remote heartbeat watchdog is off: benchmark remotes have no live exporter. Runs the
daemon as the CLI's runner does, garbage-collector policy included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time

from apiserver._heap import freeze_after_bootstrap
from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstoremesh import DaemonSettings, KVStoreMeshDaemon, MeshConfig


async def main(args: argparse.Namespace) -> None:
    opts = {"etcd.address": args.local_endpoint, **dict(o.split("=", 1) for o in args.kvstore_opt)}
    settings = DaemonSettings(
        cluster=ClusterInfo(args.cluster_name, args.cluster_id), config_dir=args.config_dir,
        kvstore_opts=opts, mesh=MeshConfig(heartbeat_timeout=0.0, per_cluster_ready_timeout=120.0),
        health_port=0, health_host="127.0.0.1", api_serve_addr="127.0.0.1:0")
    daemon = KVStoreMeshDaemon(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    started = time.monotonic()
    await daemon.start()
    assert daemon.mesh is not None
    # As ``run_until_signalled`` (the CLI's runner) does for the real process.
    freezer = asyncio.create_task(freeze_after_bootstrap(daemon.mesh.wait_ready()))
    try:
        await daemon.mesh.wait_ready()
        sys.stdout.write(json.dumps({"ready": True, "started": started, "ready_at": time.monotonic()}) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        freezer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await freezer
        await daemon.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--cluster-id", type=int, required=True)
    parser.add_argument("--config-dir", required=True)
    parser.add_argument("--local-endpoint", required=True)
    parser.add_argument("--kvstore-opt", action="append", default=[])
    asyncio.run(main(parser.parse_args()))
