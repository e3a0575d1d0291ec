"""Key-by-key comparison of what a prefix should hold with what etcd holds. Pure.

A ``PrefixDrift`` lists, for one prefix, the keys *missing* from etcd, the *stale* keys (in etcd,
not expected) and the keys whose bytes *differ*. ``DriftReport`` gathers them and renders the
report of ``clustermesh-dbg verify`` (text, or a JSON-ready dict).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DriftReport", "PrefixDrift", "compare"]

DEFAULT_SHOWN = 5


@dataclass(frozen=True, slots=True)
class PrefixDrift:
    prefix: str
    expected: int
    actual: int
    missing: tuple[str, ...]
    stale: tuple[str, ...]
    differing: tuple[str, ...]

    @property
    def equal(self) -> bool:
        return not (self.missing or self.stale or self.differing)

    def as_dict(self, shown: int = DEFAULT_SHOWN) -> dict[str, Any]:
        return {"prefix": self.prefix, "equal": self.equal, "expected": self.expected, "actual": self.actual,
                "missing": len(self.missing), "stale": len(self.stale), "differing": len(self.differing),
                "first_missing": list(self.missing[:shown]), "first_stale": list(self.stale[:shown]),
                "first_differing": list(self.differing[:shown])}


def compare(prefix: str, expected: Mapping[str, bytes], actual: Mapping[str, bytes]) -> PrefixDrift:
    """Compare two key -> value maps of one prefix (keys sorted in the result)."""
    missing = sorted(k for k in expected if k not in actual)
    stale = sorted(k for k in actual if k not in expected)
    differing = sorted(k for k, v in expected.items() if k in actual and actual[k] != v)
    return PrefixDrift(prefix, len(expected), len(actual), tuple(missing), tuple(stale), tuple(differing))


@dataclass(slots=True)
class DriftReport:
    """What one verification found: per-prefix drift, plus problems that are not key drift
    (a canary or the cluster config missing, a remote that cannot be read)."""

    title: str
    prefixes: list[PrefixDrift] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.problems and all(p.equal for p in self.prefixes)

    def as_dict(self, shown: int = DEFAULT_SHOWN) -> dict[str, Any]:
        return {"title": self.title, "equal": self.equal, "problems": list(self.problems),
                "prefixes": [p.as_dict(shown) for p in self.prefixes]}

    def text(self, shown: int = DEFAULT_SHOWN) -> str:
        lines = [f"{self.title}: {'equal' if self.equal else 'DIFFERENT'}"]
        for p in self.prefixes:
            state = "equal" if p.equal else (f"{len(p.missing)} missing, {len(p.stale)} stale, "
                                             f"{len(p.differing)} differing")
            lines.append(f"  {p.prefix}: {p.expected} expected, {p.actual} in etcd: {state}")
            for label, keys in (("missing", p.missing), ("stale", p.stale), ("differing", p.differing)):
                for key in keys[:shown]:
                    lines.append(f"    {label}: {key}")
                if len(keys) > shown:
                    lines.append(f"    ... and {len(keys) - shown} more {label}")
        lines += [f"  problem: {problem}" for problem in self.problems]
        return "\n".join(lines)
