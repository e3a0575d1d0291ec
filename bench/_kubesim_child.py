"""Child process: the Kubernetes API emulator holding the benchmark cluster, and the churn generator.

Runs apart from the exporter so that neither shares the other's GIL. Speaks JSON lines: prints
``{"ready": ...}`` once it serves, then answers commands read from stdin:

- ``{"cmd": "churn", "rate": R, "seconds": S, "seed": N}``: update R CiliumEndpoints per second for
  S seconds (each update gives the endpoint the service account ``churn-<seq>``, which ends up in
  both of its IP values) and reply ``{"writes": [[seq, endpoint index, monotonic time], ...]}``;
- ``{"cmd": "quit"}`` (or end of input, or SIGTERM): stop.

Times are ``time.monotonic()``: CLOCK_MONOTONIC is system-wide, so the driver can compare them
with its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench._dataset import CHURN_ACCOUNT, BenchShape, cluster_objects, endpoint
from localmesh.kubesim import KubeSim

_TICK = 0.002


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _order(shape: BenchShape, count: int, seed: int) -> list[int]:
    """Endpoints to update: a permutation, so no endpoint changes twice while it may be queued."""
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < count:
        order += rng.sample(range(shape.endpoints), min(shape.endpoints, count - len(order)))
    return order


async def churn(sim: KubeSim, shape: BenchShape, rate: float, seconds: float, seed: int) -> list[list[float]]:
    total = int(rate * seconds)
    order = _order(shape, total, seed)
    # Each endpoint is built once, before the clock starts; an update only sets its service account
    # (``load`` stores a copy), so the generator's cost per update is the emulator's write.
    objects = {index: endpoint(shape, index) for index in set(order)}
    writes: list[list[float]] = []
    started = time.monotonic()
    done = 0
    while done < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        while done < due:
            index = order[done]
            obj = objects[index]
            obj["status"]["service-account"] = f"{CHURN_ACCOUNT}{done}"
            sim.load((obj,))
            writes.append([done, index, time.monotonic()])
            done += 1
        await asyncio.sleep(_TICK)
    return writes


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def main(shape: BenchShape, kubeconfig: Path) -> None:
    started = time.monotonic()
    # History only serves watch resumption here; one slot per churn write keeps memory bounded.
    sim = KubeSim(history=100_000, bookmark_interval=1.0)
    count = sim.load(cluster_objects(shape))
    load_seconds = time.monotonic() - started
    # A real API server pauses for garbage collection far less than a Python heap of 100k objects
    # would: keep the emulator's collector off its (static) store, or its pauses count as latency.
    gc.collect()
    gc.freeze()
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        sim.write_kubeconfig(kubeconfig)
        _reply({"ready": True, "url": sim.url, "objects": count, "load_seconds": load_seconds})
        reader = await _commands()
        while not stop.is_set():
            line_task = asyncio.ensure_future(reader.readline())
            stop_task = asyncio.ensure_future(stop.wait())
            await asyncio.wait({line_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            stop_task.cancel()
            if not line_task.done():
                line_task.cancel()
                break
            line = line_task.result()
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "churn":
                writes = await churn(sim, shape, float(command["rate"]), float(command["seconds"]),
                                     int(command.get("seed", 1)))
                _reply({"writes": writes})
            elif command["cmd"] == "quit":
                break
    finally:
        await sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", required=True, help="BenchShape as JSON")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    args = parser.parse_args()
    asyncio.run(main(BenchShape.from_json(args.shape), args.kubeconfig))
