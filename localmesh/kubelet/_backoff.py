"""Kubelet's crash-loop back-off (pure, clock passed in).

Upstream (``pkg/kubelet/kubelet.go``, ``backOffPeriod``/``MaxContainerBackOff``): the delay before a
container's restart starts at 10 s and doubles up to 5 min; a container that ran for 10 min without
failing starts again from the initial delay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial: float = 10.0
    maximum: float = 300.0
    reset_after: float = 600.0


class CrashBackoff:
    """The delay before the next restart of one container."""

    __slots__ = ("_next", "policy")

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self._next = 0.0

    def delay(self, started_at: float, finished_at: float) -> float:
        """Called when an instance that ran from ``started_at`` to ``finished_at`` ended; returns how
        long to wait before starting the next one. The first restart is immediate, as in kubelet."""
        if finished_at - started_at >= self.policy.reset_after:
            self._next = 0.0
        current = self._next
        self._next = self.policy.initial if current == 0 else min(current * 2, self.policy.maximum)
        return current
