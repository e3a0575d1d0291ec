"""Turns the suite's results into the printed table (figures, ratios, targets, PASS/FAIL) and a PNG.

``results`` is the JSON-able dict that ``run.py`` writes to ``bench/results/latest.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Results = dict[str, Any]


@dataclass(frozen=True)
class Row:
    name: str
    figure: str
    ratio: str = ""
    target: str = ""
    verdict: str = ""  # PASS, FAIL or "" (information only)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _kps(v: float) -> str:
    return f"{v:,.0f} keys/s"


def _best(ceiling: dict[str, float]) -> float:
    """The ceiling a figure is judged against: the faster of 1 and 4 Txns in flight."""
    return max(ceiling.values())


def _ratios(result: dict[str, Any], ceiling: dict[str, float]) -> str:
    kps = result["keys_per_second"]
    return f"{kps / _best(ceiling):.2f} (x1 {kps / ceiling['1']:.2f}, x4 {kps / ceiling['4']:.2f})"


def _runs(result: dict[str, Any]) -> str:
    """``", median of 4.1 / 3.9 / 4.3 s"`` when the figure is the median of several runs."""
    runs = result.get("runs") or []
    return f", median of {' / '.join(f'{r:.2f}' for r in runs)} s" if len(runs) > 1 else ""


def _cpu_row(cpu: dict[str, float], wall: float, cpus: int, span: str | None = None, keys: int = 0) -> Row:
    """Where the machine's CPU went while a throughput figure was measured (information only);
    ``span`` names the interval (default: spawn -> ready); with ``keys``, each process's CPU µs per key."""
    used = sum(cpu.values())
    parts = ", ".join(f"{name} {seconds:.1f}" + (f" ({seconds / keys * 1e6:.1f} µs/key)" if keys else "")
                      for name, seconds in cpu.items())
    span = f"spawn->ready {wall:.2f} s" if span is None else span
    return Row(f"↳ CPU seconds{', ' + span if span else ''}: {parts}",
               f"{used / (wall * cpus) * 100:.0f} % of {cpus} CPUs busy")


def _budget_row(result: dict[str, Any], ceiling: dict[str, float], target: float, process: str,
                seconds_key: str, cpus: int) -> Row:
    """How much CPU the 2 CPUs leave ``process`` at the target ratio, beside what the other processes
    (etcd, the emulator) used while it was measured; compared with what it used (information only).
    Startup (spawn -> the measured interval) is allowed for as measured."""
    startup = result["wall_seconds"] - result[seconds_key]
    target_wall = result["keys"] / (target * _best(ceiling)) + startup
    others = sum(seconds for name, seconds in result["cpu"].items() if name != process)
    budget = cpus * target_wall - others
    return Row(f"↳ CPU left for {process} at ratio {target} ({target_wall:.2f} s x {cpus} CPUs, "
               f"minus {others:.1f} used by the others)", f"{budget:.1f} s; used {result['cpu'][process]:.1f} s")


def _ceiling_rows(label: str, ceiling: dict[str, float], etcd_cpu: dict[str, float] | None = None) -> Iterator[Row]:
    for n, kps in sorted(ceiling.items()):
        cpu = f"; etcd {etcd_cpu[n]:.1f} CPU-s" if etcd_cpu and n in etcd_cpu else ""
        yield Row(f"{label}: client Txn x128, {n} in flight (x{n}{cpu})", _kps(kps), f"{kps / _best(ceiling):.2f}")


def _floor_rows(label: str, floor: dict[str, Any] | None, ceiling: dict[str, float], cpus: int) -> list[Row]:
    """The bare-Python floor of a throughput figure (information only; see ``bench/floor.py``)."""
    if not floor:
        return []
    return [Row(f"{label} ({floor['keys']:,} keys, {floor['seconds']:.2f} s)", _kps(floor["keys_per_second"]),
                _ratios(floor, ceiling)),
            _cpu_row(floor["cpu"], floor["seconds"], cpus, span="", keys=floor["keys"])]


def rows(r: Results) -> list[Row]:
    out: list[Row] = [Row("Hot path (exporter, KVStoreMesh, floors)", f"{r['twins']} twins")] if r.get("twins") else []
    if "initial_export" in r:
        ceiling = r["ceiling_export"]
        out += _ceiling_rows("Ceiling (exporter etcd)", ceiling, r.get("ceiling_export_etcd_cpu"))
        out += _floor_rows("Floor: bare Python export of the endpoints (no cache/ownership/queue)",
                           r.get("floor_export"), ceiling, r.get("cpus") or 1)
        ie = r["initial_export"]
        ratio = ie["keys_per_second"] / _best(ceiling)
        out.append(Row(f"Initial export ({ie['keys']:,} keys, {ie['bootstrap_seconds']:.2f} s{_runs(ie)}; "
                       f"spawn->ready {ie['wall_seconds']:.2f} s)", _kps(ie["keys_per_second"]), _ratios(ie, ceiling),
                       ">= 0.6 (stretch 0.8)", _verdict(ratio >= 0.6) + (" (stretch)" if ratio >= 0.8 else "")))
        if ie.get("cpu"):
            out.append(_cpu_row(ie["cpu"], ie["wall_seconds"], r.get("cpus") or 1, keys=ie["keys"]))
            out.append(_budget_row(ie, ceiling, 0.6, "exporter", "bootstrap_seconds", r.get("cpus") or 1))
        ch = r["churn"]
        lat = ch["latency"]
        out.append(Row(f"Churn {ch['rate']:.0f} CEP/s x {ch['seconds']:.0f} s: kubesim write -> etcd",
                       f"p50 {lat['p50']:.1f} / p99 {lat['p99']:.1f} / max {lat['max']:.1f} ms", "",
                       "p99 <= 50 ms", _verdict(lat["p99"] <= 50.0)))
        out.append(Row(f"Churn backlog (max {ch['backlog_max']} keys, drained {ch['drained_after'] * 1000:.0f} ms "
                       f"after the last write; exporter CPU {ch['exporter_cpu'] * 100:.0f} %)",
                       "keeps up" if ch["keeps_up"] else "falls behind", "", "no growing backlog",
                       _verdict(ch["keeps_up"])))
        out.append(Row("Exporter RSS peak", f"{ch['peak_rss_mb']:.0f} MB", "", "<= 350 MB",
                       _verdict(ch["peak_rss_mb"] <= 350)))
        when = ("once every endpoint had changed" if ch.get("steady_after_all_changed")
                else "second half; not every endpoint changed yet")
        out.append(Row(f"Exporter RSS steady (during churn, {when})", f"{ch['steady_rss_mb']:.0f} MB", "", "<= 250 MB",
                       _verdict(ch["steady_rss_mb"] <= 250)))
    if "mirror" in r:
        ceiling = r["ceiling_mesh"]
        out += _ceiling_rows("Ceiling (KVStoreMesh local etcd)", ceiling, r.get("ceiling_mesh_etcd_cpu"))
        out += _floor_rows("Floor: bare Python copy remote -> local (no state/queue/canaries)",
                           r.get("floor_mesh"), ceiling, r.get("cpus") or 1)
        m = r["mirror"]
        ratio = m["keys_per_second"] / _best(ceiling)
        out.append(Row(f"KVStoreMesh initial mirror ({m['keys']:,} keys, {m['seconds']:.2f} s{_runs(m)})",
                       _kps(m["keys_per_second"]), _ratios(m, ceiling), ">= 0.7", _verdict(ratio >= 0.7)))
        if m.get("cpu"):
            out.append(_cpu_row(m["cpu"], m["wall_seconds"], r.get("cpus") or 1, keys=m["keys"]))
            out.append(_budget_row(m, ceiling, 0.7, "kvstoremesh", "seconds", r.get("cpus") or 1))
        ml = r["mirror_latency"]
        lat = ml["latency"]
        out.append(Row(f"Mirror latency {ml['rate']:.0f} puts/s x {ml['seconds']:.0f} s: remote put -> local cache",
                       f"p50 {lat['p50']:.1f} / p99 {lat['p99']:.1f} / max {lat['max']:.1f} ms", "",
                       "p99 <= 50 ms", _verdict(lat["p99"] <= 50.0)))
        out.append(Row("KVStoreMesh RSS peak", f"{m['peak_rss_mb']:.0f} MB"))
        out.append(Row("KVStoreMesh RSS steady (during updates)", f"{ml['steady_rss_mb']:.0f} MB", "", "<= 250 MB",
                       _verdict(ml["steady_rss_mb"] <= 250)))
    if "scale" in r:
        s = r["scale"]
        ceiling = s["ceiling"]
        out += _ceiling_rows(f"Ceiling (scale local etcd, {s['keys']:,} keys)", ceiling, s.get("ceiling_etcd_cpu"))
        out.append(Row(f"KVStoreMesh x{s['remotes']} remotes ({s['keys']:,} keys, {s['seconds']:.2f} s, "
                       f"RSS peak {s['peak_rss_mb']:.0f} MB)", _kps(s["keys_per_second"]), _ratios(s, ceiling)))
        if s.get("cpu"):
            out.append(_cpu_row(s["cpu"], s["wall_seconds"], r.get("cpus") or 1, keys=s["keys"]))
    if "ratelimit" in r:
        rl = r["ratelimit"]
        out.append(Row(f"Rate limit etcd.qps={rl['qps']}: {rl['keys']:,} keys, >= {rl['min_txns']} Txns",
                       f"{rl['seconds']:.2f} s (>= {rl['min_seconds']:.2f} s)", "", "limit honoured",
                       _verdict(rl["honoured"])))
    return out + curve_rows(r.get("curves") or {}, r.get("cpus") or 1)


RSS_AT_1M_MB = 1500.0
MAX_EXPONENT = 1.1
KEPT_UP_TARGET = 5000.0


def _exponent_row(what: str, exponent: float | None) -> Row:
    if exponent is None:
        return Row(f"{what}: growth exponent", "n/a (fewer than 2 points)")
    return Row(f"{what}: growth exponent (log-log fit)", f"{exponent:.2f}", "", f"<= {MAX_EXPONENT}",
               _verdict(exponent <= MAX_EXPONENT))


def curve_rows(c: Results, cpus: int) -> list[Row]:
    """The cost curves (``bench/curves.py``): one row per point, the fitted exponents, the targets."""
    out: list[Row] = []
    for p in c.get("export", []):
        out.append(Row(f"Curve: initial export of {p['keys']:,} keys ({p['endpoints']:,} endpoints, "
                       f"{p['value_bytes'] / 1e6:.0f} MB of values verified)",
                       f"{p['bootstrap_seconds']:.2f} s, {p['keys'] / p['bootstrap_seconds']:,.0f} keys/s; "
                       f"RSS peak {p['peak_rss_mb']:.0f} / steady {p['steady_rss_mb']:.0f} MB"))
    exponents = c.get("export_exponents", {})
    if c.get("export"):
        out.append(_exponent_row("Curve: export time", exponents.get("bootstrap_seconds")))
        out.append(_exponent_row("Curve: exporter RSS peak", exponents.get("peak_rss_mb")))
        out.append(_exponent_row("Curve: exporter RSS steady", exponents.get("steady_rss_mb")))
        largest = max(c["export"], key=lambda p: p["keys"])
        if largest["keys"] >= 900_000:
            out.append(Row(f"Curve: exporter RSS peak at {largest['keys']:,} keys", f"{largest['peak_rss_mb']:.0f} MB",
                           "", f"<= {RSS_AT_1M_MB:.0f} MB", _verdict(largest["peak_rss_mb"] <= RSS_AT_1M_MB)))
    for p in c.get("churn", []):
        out.append(Row(f"Curve: churn {p['rate']:,.0f} CEP/s x {c['churn_seconds']:g} s on {c['churn_keys']:,} keys "
                       f"(delivered {p['delivered_rate']:,.0f}/s; backlog max {p['backlog_max']:,} keys, drained "
                       f"{p['drained_after'] * 1000:.0f} ms after; exporter CPU {p['exporter_cpu'] * 100:.0f} %)",
                       f"p50 {p['p50_ms']:.1f} / p99 {p['p99_ms']:.1f} / max {p['max_ms']:.1f} ms",
                       "", "", "kept up" if p["kept_up"] else "falls behind"))
        if p.get("cpu"):
            out.append(_cpu_row(p["cpu"], p["cpu_wall"], cpus, span=f"{p['cpu_wall']:.1f} s"))
    if c.get("churn"):
        best = c["highest_kept_up"]
        out.append(Row("Curve: highest churn rate kept up with (delivered, p99 <= 100 ms, no growing backlog)",
                       f"{best:,.0f} CEP/s", "", f">= {KEPT_UP_TARGET:,.0f} CEP/s", _verdict(best >= KEPT_UP_TARGET)))
    for p in c.get("mesh", []):
        out.append(Row(f"Curve: KVStoreMesh x{p['remotes']} remotes ({p['keys']:,} keys verified)",
                       f"{p['seconds']:.2f} s, {p['keys'] / p['seconds']:,.0f} keys/s; "
                       f"RSS peak {p['peak_rss_mb']:.0f} MB"))
    for name, label in (("seconds", "time"), ("peak_rss_mb", "RSS peak")):
        if name in c.get("mesh_exponents", {}):
            out.append(Row(f"Curve: KVStoreMesh mirror {label} over keys: growth exponent",
                           f"{c['mesh_exponents'][name]:.2f}"))
    return out


def table(r: Results) -> str:
    header = Row("benchmark", "figure", "ratio", "target", "result")
    body = rows(r)
    widths = [max(len(getattr(row, f)) for row in [header, *body]) for f in ("name", "figure", "ratio", "target")]

    def line(row: Row) -> str:
        cells = (row.name, row.figure, row.ratio, row.target)
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " | " + row.verdict

    rule = "-+-".join("-" * w for w in widths) + "-+-------"
    return "\n".join([line(header), rule, *map(line, body)])


def plot(r: Results, path: Path) -> None:
    """Export throughput (bars, with ceilings) and churn/mirror latency over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, lines) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels: list[str] = []
    values: list[float] = []
    colors: list[str] = []
    for key, label in (("ceiling_export", "exporter\netcd"), ("ceiling_mesh", "mesh\netcd")):
        for n, kps in sorted(r.get(key, {}).items()):
            labels.append(f"ceiling x{n}\n{label}")
            values.append(kps)
            colors.append("#bbbbbb")
    components = (("floor_export", "floor:\nbare\nexport", "initial_export", "initial\nexport"),
                  ("floor_mesh", "floor:\nbare\nmirror", "mirror", "KVStore-\nMesh\nmirror"))
    for floor_key, floor_label, key, label in components:
        for result_key, result_label, color in ((floor_key, floor_label, "#9fc3f0"), (key, label, "#3b7dd8")):
            if result_key in r:
                labels.append(result_label)
                values.append(r[result_key]["keys_per_second"])
                colors.append(color)
    if "scale" in r:
        labels.append(f"KVStore-\nMesh x{r['scale']['remotes']}\nremotes")
        values.append(r["scale"]["keys_per_second"])
        colors.append("#3b7dd8")
    bars.bar(range(len(values)), values, color=colors)
    bars.set_xticks(range(len(values)), labels, fontsize=7)
    bars.set_ylabel("keys/s")
    bars.set_title("Throughput into etcd (grey: ceiling, light blue: bare Python floor)")
    for key, label in (("churn", "exporter churn (kubesim write -> etcd)"),
                       ("mirror_latency", "KVStoreMesh (remote put -> local cache)")):
        if key in r and r[key]["timeline"]:
            xs, ys = zip(*r[key]["timeline"], strict=True)
            lines.plot(xs, ys, ".", markersize=2, label=f"{label}, p99 {r[key]['latency']['p99']:.0f} ms")
    lines.axhline(50, color="red", linewidth=0.8, linestyle="--", label="target p99 50 ms")
    lines.set_xlabel("seconds since the first update")
    lines.set_ylabel("latency (ms)")
    lines.set_yscale("log")
    lines.set_title("Latency under 1,000 updates/s")
    lines.legend(fontsize=7)
    fig.suptitle(r.get("title", "clustermesh-apiserver (Python) benchmarks"), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
