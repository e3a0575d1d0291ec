"""Benchmark of the Kubernetes API emulator: paged list throughput and watch fan-out.

The emulator runs in this process; the clients run in child processes (this same script in a client
mode), so client-side JSON parsing does not steal the server's CPU. Every client verifies that what
it received is complete and consistent before a figure is printed.

    python bench/bench_kubesim.py                      # 100,000 CiliumEndpoints, pages of 500,
                                                       # 1,000 events/s for 5 s to 5 watchers
    python bench/bench_kubesim.py --objects 20000 --events-per-second 2000 --watchers 10

Figures: list objects/s with the raw aiohttp client and with kubernetes-asyncio's CustomObjectsApi;
for the watch phase, the achieved write rate, events delivered per watcher and delivery latency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localmesh.kubesim import KubeSim
from localmesh.testing.synthetic import ClusterShape, cilium_endpoint

CEP_PATH = "/apis/cilium.io/v2/ciliumendpoints"
STAMP = "bench.kubesim/sent-at"


# -- client modes (child processes) ----------------------------------------------------------------

async def list_raw(url: str, page_size: int, expected: int) -> dict[str, Any]:
    names: set[str] = set()
    versions: set[str] = set()
    pages = 0
    token: str | None = None
    started = time.perf_counter()
    async with aiohttp.ClientSession(base_url=url) as http:
        while True:
            params = {"limit": str(page_size)}
            if token:
                params["continue"] = token
            async with http.get(CEP_PATH, params=params) as resp:
                resp.raise_for_status()
                body = orjson.loads(await resp.read())
            pages += 1
            names.update(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in body["items"])
            versions.add(body["metadata"]["resourceVersion"])
            token = body["metadata"].get("continue")
            if not token:
                break
    elapsed = time.perf_counter() - started
    if len(names) != expected or len(versions) != 1:
        raise SystemExit(f"incomplete list: {len(names)} unique objects of {expected}, versions {versions}")
    return {"client": "aiohttp+orjson", "objects": len(names), "pages": pages, "seconds": elapsed}


async def list_kubernetes_asyncio(url: str, page_size: int, expected: int) -> dict[str, Any]:
    from kubernetes_asyncio import client, config

    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "b",
                  "clusters": [{"name": "b", "cluster": {"server": url}}], "users": [{"name": "b", "user": {}}],
                  "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}]}
    api_client = await config.new_client_from_config_dict(kubeconfig)
    names: set[str] = set()
    pages = 0
    token = None
    started = time.perf_counter()
    async with api_client:
        api = client.CustomObjectsApi(api_client)
        while True:
            kwargs: dict[str, Any] = {"limit": page_size}
            if token:
                kwargs["_continue"] = token
            body = await api.list_cluster_custom_object("cilium.io", "v2", "ciliumendpoints", **kwargs)
            pages += 1
            names.update(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in body["items"])
            token = body["metadata"].get("continue")
            if not token:
                break
    elapsed = time.perf_counter() - started
    if len(names) != expected:
        raise SystemExit(f"incomplete list: {len(names)} unique objects of {expected}")
    return {"client": "kubernetes-asyncio", "objects": len(names), "pages": pages, "seconds": elapsed}


async def _one_watcher(http: aiohttp.ClientSession, rv: str, expected: int, timeout: float) -> dict[str, Any]:
    received = 0
    last_rv = int(rv)
    latencies: list[float] = []
    params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
    async with http.get(CEP_PATH, params=params, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        resp.raise_for_status()
        async for line in resp.content:
            event = orjson.loads(line)
            if event["type"] == "BOOKMARK":
                continue
            if event["type"] != "MODIFIED":
                raise SystemExit(f"unexpected event {event['type']}")
            meta = event["object"]["metadata"]
            event_rv = int(meta["resourceVersion"])
            if event_rv <= last_rv:
                raise SystemExit(f"resourceVersion went backwards: {event_rv} after {last_rv}")
            last_rv = event_rv
            latencies.append(time.time() - float(meta["annotations"][STAMP]))
            received += 1
            if received == expected:
                break
    return {"received": received, "latencies": latencies}


async def watch_clients(url: str, rv: str, watchers: int, expected: int, timeout: float) -> dict[str, Any]:
    async with aiohttp.ClientSession(base_url=url) as http:
        results = await asyncio.gather(*(_one_watcher(http, rv, expected, timeout) for _ in range(watchers)))
    received = [r["received"] for r in results]
    if any(n != expected for n in received):
        raise SystemExit(f"watchers missed events: {received} of {expected}")
    latencies = sorted(x for r in results for x in r["latencies"])
    return {"received": received, "latency_p50_ms": 1000 * statistics.median(latencies),
            "latency_p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
            "latency_max_ms": 1000 * latencies[-1]}


def client_main(args: argparse.Namespace) -> None:
    if args.client == "list-raw":
        result = asyncio.run(list_raw(args.url, args.page_size, args.objects))
    elif args.client == "list-k8s":
        result = asyncio.run(list_kubernetes_asyncio(args.url, args.page_size, args.objects))
    else:
        result = asyncio.run(watch_clients(args.url, args.rv, args.watchers, args.expect, args.timeout))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


# -- the server side (this process) -------------------------------------------------------------------

async def _child(*argv: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, *argv,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"client {argv[:2]} failed (exit {proc.returncode})")
    result: dict[str, Any] = orjson.loads(out)
    return result


async def _fan_out(sim: KubeSim, shape: ClusterShape, args: argparse.Namespace) -> None:
    total = int(args.events_per_second * args.duration)
    rv = str(sim.resource_version)
    watch = asyncio.create_task(_child("--client", "watch", "--url", sim.url, "--rv", rv,
                                       "--watchers", str(args.watchers), "--expect", str(total),
                                       "--timeout", str(args.duration * 4 + 30)))
    connected = asyncio.create_task(sim.wait_for_watch("cilium.io/v2", "CiliumEndpoint", args.watchers, 30))
    await asyncio.wait((connected, watch), return_when=asyncio.FIRST_COMPLETED)
    if watch.done() or connected.exception() is not None:
        raise SystemExit("watch clients did not connect")
    loop = asyncio.get_running_loop()
    cpu = time.process_time()
    tick = 0.01  # writes are paced in 10 ms batches
    per_tick = args.events_per_second * tick
    started = loop.time()
    sent = 0
    while sent < total:
        due = min(total, int((loop.time() - started) / tick * per_tick) + 1)
        while sent < due:
            obj = cilium_endpoint(shape, sent % args.objects)
            obj["metadata"]["annotations"] = {STAMP: repr(time.time())}
            sim.apply(obj)
            sent += 1
        await asyncio.sleep(tick)
    write_seconds = loop.time() - started
    result = await watch
    cpu = time.process_time() - cpu
    print(f"watch fan-out: {total} events in {write_seconds:.2f} s ({total / write_seconds:,.0f} events/s "
          f"written; target {args.events_per_second:,}/s) to {args.watchers} watchers, each received "
          f"{result['received'][0]:,}; delivery latency p50 {result['latency_p50_ms']:.1f} ms, "
          f"p99 {result['latency_p99_ms']:.1f} ms, max {result['latency_max_ms']:.1f} ms; server CPU "
          f"{100 * cpu / write_seconds:.0f}% of one core")


async def server_main(args: argparse.Namespace) -> None:
    shape = ClusterShape(endpoints=args.objects, namespaces=16, identities=1000, nodes=100)
    async with KubeSim(history=max(10000, int(args.events_per_second * args.duration) + 1000)) as sim:
        started = time.perf_counter()
        sim.load(cilium_endpoint(shape, i) for i in range(args.objects))
        seconds = time.perf_counter() - started
        print(f"seed: {args.objects:,} CiliumEndpoints in {seconds:.2f} s ({args.objects / seconds:,.0f}/s)")
        for client in ("list-raw", "list-k8s"):
            for run in range(args.rounds):
                cpu = time.process_time()
                r = await _child("--client", client, "--url", sim.url, "--objects", str(args.objects),
                                 "--page-size", str(args.page_size))
                cpu = time.process_time() - cpu
                print(f"list [{r['client']}, run {run + 1}]: {r['objects']:,} objects in {r['pages']} pages of "
                      f"{args.page_size} in {r['seconds']:.2f} s = {r['objects'] / r['seconds']:,.0f} objects/s "
                      f"(verified complete, one snapshot); server CPU {cpu:.2f} s = "
                      f"{r['objects'] / max(cpu, 1e-9):,.0f} objects per server CPU second")
        await _fan_out(sim, shape, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="list runs per client")
    parser.add_argument("--events-per-second", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of watch traffic")
    parser.add_argument("--watchers", type=int, default=5)
    parser.add_argument("--client", choices=("list-raw", "list-k8s", "watch"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rv", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
    else:
        asyncio.run(server_main(args))


if __name__ == "__main__":
    main()
