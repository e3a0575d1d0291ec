"""Exponential back-off, optionally with jitter: the one back-off of every retry loop (pure: the
caller sleeps). Reconnecting reflectors use jitter; loops whose delays must be exact pass
``jitter=0``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """``next()`` returns ``initial * factor**n`` capped at ``maximum``, each scaled by a random
    factor in ``[1 - jitter, 1 + jitter]`` so that many reflectors failing together do not
    reconnect in lockstep. ``reset()`` after a success starts again from ``initial``."""

    initial: float = 0.2
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid backoff {self.initial}..{self.maximum} x{self.factor} "
                             f"jitter {self.jitter}")

    def next(self) -> float:
        # Cap the exponent too: factor**attempts would overflow a float after ~1000 failures.
        base = min(self.maximum, self.initial * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return base * (1.0 + self.jitter * (2.0 * self.rng.random() - 1.0))

    def reset(self) -> None:
        self.attempts = 0
