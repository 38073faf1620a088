"""Model latency as seeded distributions with long tails, for the OpenAI emulator.

Rules:
- A delay is either a number of seconds (fixed) or a ``Latency``, whose ``sample(rng)`` gives seconds
  >= 0. The emulator draws with its own ``random.Random(seed)``, so a run is reproducible.
- ``LogNormal(median_s, p99_s)``: most requests near the median, a long right tail (OpenAI publishes
  no latency guarantee; time to first token grows with the prompt, after tools and with reasoning).
  ``cap_s`` bounds a sample, so a test never waits for the far tail by accident.
- ``Scripted(values)``: exact values in order, one per sample (the last one repeats), for tests that
  script a latency per request or per chunk.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

Z_99 = 2.3263478740408408  # the standard normal's 99th percentile


class Latency(Protocol):
    def sample(self, rng: random.Random) -> float: ...


@dataclass(frozen=True)
class LogNormal:
    median_s: float
    p99_s: float
    cap_s: float = math.inf

    def __post_init__(self) -> None:
        if not 0 < self.median_s <= self.p99_s:
            raise ValueError(f"need 0 < median_s <= p99_s, got {self.median_s}, {self.p99_s}")

    @property
    def sigma(self) -> float:
        return math.log(self.p99_s / self.median_s) / Z_99

    def sample(self, rng: random.Random) -> float:
        return min(self.cap_s, rng.lognormvariate(math.log(self.median_s), self.sigma))


@dataclass
class Scripted:
    values: Sequence[float]
    _next: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if not self.values or min(self.values) < 0:
            raise ValueError("Scripted needs at least one value, all >= 0")

    def sample(self, rng: random.Random) -> float:
        value = self.values[min(self._next, len(self.values) - 1)]
        self._next += 1
        return value


Delay = float | Latency


def draw(delay: Delay, rng: random.Random) -> float:
    """Seconds to wait for ``delay``."""
    return max(0.0, float(delay)) if isinstance(delay, int | float) else max(0.0, delay.sample(rng))
