"""Child process: the Kubernetes API emulator holding the benchmark cluster, and the churn generator.

Runs apart from the exporter so that neither shares the other's GIL. Speaks JSON lines: prints
``{"ready": ...}`` once it serves, then answers commands read from stdin:

- ``{"cmd": "churn", "rate": R, "seconds": S, "seed": N}``: update R CiliumEndpoints per second for
  S seconds (each update gives the endpoint the service account ``churn-<seq>``, which ends up in
  both of its IP values; ``seq`` counts on across commands, so no update repeats an earlier one,
  which the emulator would skip as a no-op write) and reply
  ``{"writes": [[seq, endpoint index, monotonic time], ...]}``;
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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench._dataset import CHURN_ACCOUNT, ENDPOINT_KIND, BenchShape, KubeObject, cluster_objects, endpoint
from localmesh.kubesim import KubeSim

_TICK = 0.002
_BURST = 0.005  # seconds of updates written between two turns of the event loop
_CEP_VERSION = "cilium.io/v2"


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


def _stored_endpoints(sim: KubeSim, shape: BenchShape, indexes: Iterable[int]) -> dict[int, KubeObject]:
    """The stored CiliumEndpoints (uid, generation and all) of ``indexes``, as the store holds them."""
    out: dict[int, KubeObject] = {}
    for index in indexes:
        meta = endpoint(shape, index)["metadata"]
        stored = sim.get(_CEP_VERSION, ENDPOINT_KIND, meta["name"], meta["namespace"])
        if stored is None:
            raise KeyError(f"CiliumEndpoint {meta['namespace']}/{meta['name']} is not in the emulator")
        out[index] = stored
    return out


async def churn(sim: KubeSim, shape: BenchShape, rate: float, seconds: float, seed: int, first: int = 0
                ) -> list[list[float]]:
    """``rate`` status updates a second for ``seconds``, numbered from ``first``.

    Each update is what kube-apiserver commits for a write to the status subresource that changes
    the service account (same uid and generation, next resourceVersion), handed straight to the
    emulator's store: its cost is the store's write and the watch fan-out, not request handling
    and validation, so the generator is not the first to saturate. Writes go in bursts of at most
    ``_BURST`` seconds' worth, then the loop serves the watches: a late generator delivers less
    rather than starving the watch that the exporter reads.
    """
    total = int(rate * seconds)
    order = _order(shape, total, seed)
    objects = _stored_endpoints(sim, shape, set(order))  # before the clock starts
    kind = sim.registry.by_kind(_CEP_VERSION, ENDPOINT_KIND)
    assert kind is not None
    burst = max(1, int(rate * _BURST))
    writes: list[list[float]] = []
    started = time.monotonic()
    done = 0
    while done < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1, done + burst)
        while done < due:
            index = order[done]
            obj = objects[index]
            obj["status"]["service-account"] = f"{CHURN_ACCOUNT}{first + done}"
            sim.store.write(kind, obj)
            writes.append([first + done, index, time.monotonic()])
            done += 1
        await asyncio.sleep(_TICK if done >= int((time.monotonic() - started) * rate) else 0)
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
        updates = 0
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
                                     int(command.get("seed", 1)), updates)
                updates += len(writes)
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
