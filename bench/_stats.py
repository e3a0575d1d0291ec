"""Latency and backlog arithmetic over (write time, visible time) pairs. Pure."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def median_run(runs: Sequence[T], seconds: Callable[[T], float]) -> T:
    """The run of median duration (the upper one of an even count): a repeated measurement's figure."""
    return sorted(runs, key=seconds)[len(runs) // 2]


def growth_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """``b`` of the least-squares fit ``log y = a + b log x``: 1 is linear growth, 2 quadratic."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"growth exponent needs two or more (x, y) pairs, got {len(xs)} x and {len(ys)} y")
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    spread = sum((x - mx) ** 2 for x in lx)
    if spread == 0:
        raise ValueError("growth exponent needs at least two different x")
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / spread


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """Milliseconds."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = [s * 1000.0 for s in seconds]
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), max(ms) if ms else math.nan)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Backlog:
    """Keys written but not yet visible, sampled every ``step`` seconds from the first write."""

    samples: list[int]
    step: float
    drained_after: float  # seconds from the last write until everything was visible

    @property
    def max(self) -> int:
        return max(self.samples, default=0)

    def growing(self, tolerance: int) -> bool:
        """Does the backlog trend upwards? (last third's mean above the first third's by ``tolerance``)"""
        third = len(self.samples) // 3
        if third == 0:
            return False
        first = sum(self.samples[:third]) / third
        last = sum(self.samples[-third:]) / third
        return last > first + tolerance

    @classmethod
    def of(cls, writes: Sequence[float], visible: Sequence[float], step: float = 1.0) -> Backlog:
        """``writes[i]`` and ``visible[i]`` belong to the same key change (monotonic seconds)."""
        if not writes:
            return cls([], step, 0.0)
        start, last_write = min(writes), max(writes)
        written_sorted, visible_sorted = sorted(writes), sorted(visible)
        samples: list[int] = []
        w = v = 0
        t = start + step
        while t <= last_write + step:
            while w < len(written_sorted) and written_sorted[w] <= t:
                w += 1
            while v < len(visible_sorted) and visible_sorted[v] <= t:
                v += 1
            samples.append(max(0, w - v))
            t += step
        return cls(samples, step, max(0.0, max(visible) - last_write))
