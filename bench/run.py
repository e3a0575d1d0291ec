"""Run the benchmark suite: ``python bench/run.py [--quick] [--only export,mesh,scale,ratelimit,curves]``.

Prints one table (every throughput as a ratio to etcd's ceiling measured in the same run on the
same etcd, latency and memory against their targets), writes ``bench/results/latest.json``,
``docs/performance.png`` and (with the curves) ``docs/cost-curves.png``. Each benchmark checks that
etcd holds exactly the expected keys and bytes before its figure counts. Every etcd and child process
it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``apiserver`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if "--no-extensions" in sys.argv[1:]:
    # Before anything imports ``apiserver``: the floors run in this process, and every child inherits it.
    os.environ["CLUSTERMESH_NO_EXTENSIONS"] = "1"

from apiserver import _extensions
from apiserver.kvstore.etcd import EtcdClient
from apiserver.kvstoremesh import MeshConfig
from bench import ceiling, curves, export, floor, mesh, ratelimit, report
from bench._curve_plot import plot as plot_curves
from bench._dataset import BenchShape, cluster_objects, expected_state, to_cache
from bench._kv import connect
from bench._procs import REPO
from localmesh.testing.etcd import EtcdServer

RESULTS = REPO / "bench" / "results" / "latest.json"
DOCS = REPO / "docs"
PHASES = ("export", "mesh", "scale", "ratelimit", "curves")
COMPILED_TWINS = ("apiserver.kvstore.etcd._txn_c", "apiserver.convert._endpoints_c")
SCALE_REMOTES = 16
SCALE_KEYS = 5_000
CHURN_RATE = 1_000.0
PLATEAU_SECONDS = 10.0


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for prop in ("keys_per_second", "min_seconds", "honoured"):
            if hasattr(type(value), prop):
                out[prop] = getattr(value, prop)
        return out
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _ceiling_figures(ceilings: dict[int, ceiling.Ceiling]) -> dict[str, float]:
    return {str(n): c.keys_per_second for n, c in ceilings.items()}


def _ceiling_cpu(ceilings: dict[int, ceiling.Ceiling]) -> dict[str, float]:
    return {str(n): c.etcd_cpu for n, c in ceilings.items()}


async def export_and_mesh(shape: BenchShape, workdir: Path, args: argparse.Namespace, results: dict[str, Any]
                          ) -> None:
    _log(f"Generating the data set ({shape.endpoints:,} endpoints)")
    expected = expected_state(shape, cluster_objects(shape))
    async with EtcdServer(name="bench-export") as remote_server:
        remote = await connect(remote_server.endpoint)
        try:
            _log(f"Ceiling on the exporter's etcd ({len(expected):,} keys)")
            ceilings = await ceiling.measure_both(remote_server, remote, expected)
            results["ceiling_export"] = _ceiling_figures(ceilings)
            results["ceiling_export_etcd_cpu"] = _ceiling_cpu(ceilings)
            _log("Export floor (bare Python exporter), initial export, then churn")
            # Long enough for every endpoint to change once (and 10 s more), or the steady RSS would
            # be read while it still grows: each changed value takes a new allocation.
            churn_seconds = (args.churn_seconds if args.quick
                             else max(args.churn_seconds, shape.endpoints / CHURN_RATE + PLATEAU_SECONDS))
            bare, initial, churn = await export.run(remote_server, remote, shape, expected, workdir, CHURN_RATE,
                                                    churn_seconds, args.exporter_opt)
            results["floor_export"] = _plain(bare)
            results["initial_export"] = _plain(initial)
            results["churn"] = {**_plain(churn), "backlog_max": churn.backlog.max,
                                "drained_after": churn.backlog.drained_after, "keeps_up": churn.keeps_up()}
            results["churn"].pop("backlog")
            if "mesh" in args.only:
                await _mesh(shape, expected, remote_server, remote, workdir, args, results)
        finally:
            await remote.close()


async def _mesh(shape: BenchShape, state: dict[str, bytes], remote_server: EtcdServer, remote: EtcdClient,
                workdir: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    cache = to_cache(shape.name, state)
    async with EtcdServer(name="bench-mesh-local") as local_server:
        local = await connect(local_server.endpoint)
        try:
            _log(f"Ceiling on KVStoreMesh's local etcd ({len(cache):,} keys)")
            ceilings = await ceiling.measure_both(local_server, local, cache)
            results["ceiling_mesh"] = _ceiling_figures(ceilings)
            results["ceiling_mesh_etcd_cpu"] = _ceiling_cpu(ceilings)
            _log("Mirror floor (bare Python copy)")
            results["floor_mesh"] = _plain(await floor.mirror_floor(
                remote_server, remote, shape.name, local_server, local, cache, MeshConfig().list_page_size))
            _log("KVStoreMesh initial mirror, then latency")

            def start() -> mesh.MeshProcess:
                return mesh.MeshProcess("cluster2", 2, local_server, [(shape.name, remote_server.endpoint)],
                                        workdir)

            median, proc = await mesh.mirror_median(start, local_server, local, cache, 1,
                                                    mesh.etcd_pids(local_server, [remote_server]))
            results["mirror"] = _plain(median)
            try:
                lat = await mesh.latency(proc, remote, local, shape.name, CHURN_RATE, args.mirror_seconds)
                await mesh.check_mirror_matches(remote, local, shape.name)
            finally:
                await proc.stop()
            results["mirror_latency"] = {**_plain(lat), "backlog_max": lat.backlog.max,
                                         "drained_after": lat.backlog.drained_after}
            results["mirror_latency"].pop("backlog")
        finally:
            await local.close()


async def scale(workdir: Path, results: dict[str, Any]) -> None:
    _log(f"Scale: {SCALE_REMOTES} remote etcds with {SCALE_KEYS:,} keys each")
    result, ceilings = await mesh.mirror_remotes(SCALE_REMOTES, SCALE_KEYS, workdir)
    results["scale"] = {**_plain(result), "ceiling": _ceiling_figures(ceilings),
                        "ceiling_etcd_cpu": _ceiling_cpu(ceilings)}


def _twins() -> str:
    """Which twins of the hot path the processes under test run (they inherit this environment)."""
    if _extensions.NO_EXTENSIONS or os.environ.get("CLUSTERMESH_NO_EXTENSIONS"):
        return "pure-Python"
    built = all(_extensions.compiled(name) is not None for name in COMPILED_TWINS)
    return "compiled" if built else "pure-Python (compiled twins not built: python setup.py build_ext --inplace)"


async def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    shape = BenchShape().scaled(args.scale)
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "quick": args.quick, "size_factor": args.scale,
        "shape": dataclasses.asdict(shape), "exporter_opts": args.exporter_opt, "cpus": os.cpu_count(),
        "python": platform.python_version(), "twins": _twins(),
        "title": f"clustermesh-apiserver (Python) benchmarks, {os.cpu_count()} CPUs, etcd on tmpfs",
    }
    # The processes measured start as an installed package would: from compiled bytecode. (An
    # editable install under PYTHONDONTWRITEBYTECODE would compile every module at every start.)
    compileall.compile_dir(REPO / "apiserver", quiet=1)
    started = time.monotonic()
    ok = False
    try:
        if "export" in args.only:
            await export_and_mesh(shape, workdir, args, results)
        if "scale" in args.only:
            await scale(workdir, results)
        if "ratelimit" in args.only:
            _log("Rate limit check (etcd.qps=20)")
            results["ratelimit"] = _plain(await ratelimit.run(workdir))
        if "curves" in args.only:
            results["curves"] = await curves.run(curve_plan(args), workdir, _log)
        ok = True
    finally:
        results["seconds"] = round(time.monotonic() - started, 1)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr)
    print(report.table(results))
    print(f"\ntotal {results['seconds']:.0f} s; results in {args.results}")
    if args.plot and args.only - {"curves"}:
        report.plot(results, args.plot_dir / "performance.png")
        print(f"plot in {args.plot_dir / 'performance.png'}")
    if args.plot and "curves" in results:
        plot_curves(results["curves"], results["title"] + ": cost curves", args.plot_dir / "cost-curves.png")
        print(f"plot in {args.plot_dir / 'cost-curves.png'}")
    return 0


def curve_plan(args: argparse.Namespace) -> curves.CurvePlan:
    plan = curves.CurvePlan().scaled(args.scale)
    if args.quick:
        plan = dataclasses.replace(plan, churn_seconds=3.0, settle_seconds=2.0)
    if args.curve_rates is not None:
        plan = dataclasses.replace(plan, rates=args.curve_rates)
    if args.curve_remotes is not None:
        plan = dataclasses.replace(plan, remotes=args.curve_remotes)
    return plan


def _numbers(kind: type[float] | type[int]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        return tuple(kind(part) for part in text.split(",") if part)

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="15 s of churn and of mirror updates instead of 60 and 30; curves: 3 s per churn step")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the synthetic cluster's size (for development; default 1)")
    parser.add_argument("--only", default=",".join(PHASES),
                        help=f"comma-separated phases among {', '.join(PHASES)} (mesh needs export)")
    parser.add_argument("--exporter-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="extra --kvstore-opt for the exporter under test (e.g. etcd.qps=20)")
    parser.add_argument("--no-plot", dest="plot", action="store_false", help="do not write the PNGs")
    parser.add_argument("--curve-rates", type=_numbers(float), metavar="R1,R2,...",
                        help="churn rates of the curves (default 1000,2000,5000,10000,20000 CEP updates/s)")
    parser.add_argument("--curve-remotes", type=_numbers(int), metavar="N1,N2,...",
                        help="remote counts of the KVStoreMesh curve (default 4,16,64)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument("--plot-dir", type=Path, default=DOCS, help=f"where the PNGs go (default {DOCS})")
    parser.add_argument("--no-extensions", action="store_true",
                        help="run the processes under test and the floors on the pure-Python twins "
                             "(CLUSTERMESH_NO_EXTENSIONS=1; default: the compiled twins when built)")
    args = parser.parse_args(argv)
    args.only = set(args.only.split(","))
    unknown = args.only - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if "mesh" in args.only and "export" not in args.only:
        parser.error("mesh mirrors what the export phase wrote: add export to --only")
    args.churn_seconds = 15.0 if args.quick else 60.0
    args.mirror_seconds = 15.0 if args.quick else 30.0
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
