"""The cost curves' PNG (``docs/cost-curves.png``): export time and RSS over keys (log-log, with the
fitted exponents), churn latency over the delivered rate, KVStoreMesh time and RSS over remotes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import KEPT_UP_TARGET, RSS_AT_1M_MB


def plot(curves: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ((time_ax, rss_ax), (churn_ax, mesh_ax)) = plt.subplots(2, 2, figsize=(12, 8.5))
    exports = curves.get("export", [])
    exponents = curves.get("export_exponents", {})
    keys = [p["keys"] for p in exports]

    def fitted(name: str) -> str:
        return f" (exponent {exponents[name]:.2f})" if name in exponents else ""

    time_ax.loglog(keys, [p["bootstrap_seconds"] for p in exports], "o-", label="initial export" + fitted(
        "bootstrap_seconds"))
    if keys:
        first = exports[0]
        time_ax.loglog(keys, [first["bootstrap_seconds"] * k / first["keys"] for k in keys], ":", color="grey",
                       label="linear from the first point")
    time_ax.set(xlabel="keys", ylabel="seconds (Exporter.start -> ready)", title="Initial export time")
    time_ax.legend(fontsize=8)
    rss_ax.loglog(keys, [p["peak_rss_mb"] for p in exports], "o-", label="peak" + fitted("peak_rss_mb"))
    rss_ax.loglog(keys, [p["steady_rss_mb"] for p in exports], "s-", label="steady" + fitted("steady_rss_mb"))
    rss_ax.axhline(RSS_AT_1M_MB, color="red", linewidth=0.8, linestyle="--", label="target at 1M keys")
    rss_ax.set(xlabel="keys", ylabel="MB", title="Exporter RSS")
    rss_ax.legend(fontsize=8)
    churn = curves.get("churn", [])
    asked = [p["rate"] for p in churn]
    churn_ax.loglog(asked, [p["p50_ms"] for p in churn], "o-", label="p50")
    churn_ax.loglog(asked, [p["p99_ms"] for p in churn], "s-", label="p99")
    churn_ax.axhline(100, color="red", linewidth=0.8, linestyle="--", label="p99 target 100 ms")
    churn_ax.set(xlabel="CEP updates/s asked", ylabel="write -> etcd latency (ms)",
                 title=f"Churn saturation ({curves.get('churn_keys', 0):,} keys)")
    churn_ax.legend(fontsize=8, loc="upper left")
    rate_ax = churn_ax.twinx()
    rate_ax.loglog(asked, [p["delivered_rate"] for p in churn], "^:", color="#2a9d3a")
    rate_ax.loglog(asked, asked, color="#2a9d3a", linewidth=0.5)
    rate_ax.axhline(KEPT_UP_TARGET, color="#2a9d3a", linewidth=0.8, linestyle="--")
    rate_ax.set_ylabel("delivered by the emulator (green; line: as asked; dashed: target)", color="#2a9d3a",
                       fontsize=8)
    meshes = curves.get("mesh", [])
    remotes = [p["remotes"] for p in meshes]
    mesh_ax.plot(remotes, [p["seconds"] for p in meshes], "o-", color="#3b7dd8")
    mesh_ax.set(xlabel="remote clusters", ylabel="seconds to ready", title="KVStoreMesh initial mirror")
    mesh_ax.set_xscale("log", base=2)
    mesh_rss = mesh_ax.twinx()
    mesh_rss.plot(remotes, [p["peak_rss_mb"] for p in meshes], "s--", color="#d8703b")
    mesh_rss.set_ylabel("RSS peak (MB)", color="#d8703b")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
