"""The cost curves at tiny scale through the suite's own entry point: every figure present, every
point checked against etcd before it counts; and the growth-exponent fit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import report, run
from bench._stats import growth_exponent
from bench.export import delivered


@pytest.mark.parametrize(("ys", "exponent"), [
    pytest.param([3.0, 30.0, 300.0], 1.0, id="linear"),
    pytest.param([1.0, 100.0, 10_000.0], 2.0, id="quadratic"),
    pytest.param([5.0, 5.0, 5.0], 0.0, id="flat"),
])
def test_growth_exponent_is_the_log_log_slope(ys: list[float], exponent: float) -> None:
    assert growth_exponent([10.0, 100.0, 1000.0], ys) == pytest.approx(exponent)


def test_growth_exponent_needs_two_different_sizes() -> None:
    with pytest.raises(ValueError, match="two or more"):
        growth_exponent([10.0], [1.0])
    with pytest.raises(ValueError, match="different x"):
        growth_exponent([10.0, 10.0], [1.0, 2.0])


def test_delivered_rate_of_a_generator_on_time_and_of_a_late_one() -> None:
    on_time = [[i, i, 100.0 + i / 50.0] for i in range(100)]  # 50/s asked, 50/s written
    assert delivered(on_time, 50.0) == pytest.approx(50.0)
    assert delivered(on_time, 200.0) == pytest.approx(100 / (99 / 50.0 + 1 / 200.0))


async def test_the_curves_run_at_tiny_scale_with_every_figure_verified(tmp_path: Path) -> None:
    results_path = tmp_path / "results.json"
    args = run.parse_args(["--only", "curves", "--quick", "--scale", "0.002", "--curve-rates", "100,200",
                           "--curve-remotes", "1,2", "--results", str(results_path), "--plot-dir", str(tmp_path)])
    assert await run.main(args) == 0
    curves = json.loads(results_path.read_text())["curves"]
    exports = curves["export"]
    assert [p["keys"] for p in exports] == sorted(p["keys"] for p in exports) and len(exports) == 3
    assert exports[0]["keys"] >= 10 and exports[-1]["keys"] < 5000
    for p in exports:
        assert p["verified"] and p["value_bytes"] > 0 and p["bootstrap_seconds"] > 0
        assert p["steady_rss_mb"] > 0 and p["peak_rss_mb"] > 0
    assert set(curves["export_exponents"]) == {"bootstrap_seconds", "peak_rss_mb", "steady_rss_mb"}
    assert all(math.isfinite(e) for e in curves["export_exponents"].values())
    assert [p["rate"] for p in curves["churn"]] == [100.0, 200.0]
    for p in curves["churn"]:
        assert p["verified"] and p["updates"] == int(p["rate"] * 3.0) and p["delivered_rate"] > 0
        assert p["p50_ms"] <= p["p99_ms"] <= p["max_ms"]
        assert set(p["cpu"]) == {"kubesim", "exporter", "etcd", "driver"} and p["cpu"]["kubesim"] > 0
    assert curves["highest_kept_up"] in {0.0, *(p["delivered_rate"] for p in curves["churn"] if p["kept_up"])}
    assert [(p["remotes"], p["verified"]) for p in curves["mesh"]] == [(1, True), (2, True)]
    assert curves["mesh"][1]["keys"] == 2 * curves["mesh"][0]["keys"]
    names = [row.name for row in report.rows(json.loads(results_path.read_text()))]
    assert sum(n.startswith("Curve: initial export of") for n in names) == 3
    assert sum(n.startswith("Curve: churn ") for n in names) == 2
    assert any(n.startswith("Curve: highest churn rate") for n in names)
    assert (tmp_path / "cost-curves.png").stat().st_size > 10_000
    assert not (tmp_path / "performance.png").exists()  # only the curves ran
