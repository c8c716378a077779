"""What every measure shares: settings, clocks, timing loops and percentiles."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Hit = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Settings:
    """How long each measure runs; ``--quick`` shrinks every number."""

    quick: bool
    rounds: int  # interleaved rounds per decision cell
    batch_memory: int  # decisions per library per round, in process
    batch_network: int  # ... on Redis / Memcached
    roundtrip_decisions: int  # decisions counted by the server per cell
    asgi_rounds: int
    asgi_batch: int
    http_rounds: int
    http_seconds: float
    http_connections: int
    contention_cases: tuple[tuple[int, int], ...]  # (processes, concurrent hits each)
    contention_strategies: tuple[str, ...]
    contention_repeats: int  # runs of each case and library; the median wall time counts
    memory_keys: int  # distinct keys for the memory-per-key measure

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(
                quick=True,
                rounds=3,
                batch_memory=300,
                batch_network=30,
                roundtrip_decisions=20,
                asgi_rounds=8,
                asgi_batch=100,
                http_rounds=1,
                http_seconds=1.0,
                http_connections=8,
                contention_cases=((4, 100),),
                contention_strategies=("fixed_window",),
                contention_repeats=1,
                memory_keys=300,
            )
        return cls(
            quick=False,
            rounds=15,
            batch_memory=1000,
            batch_network=100,
            roundtrip_decisions=200,
            asgi_rounds=41,
            asgi_batch=250,
            http_rounds=9,
            http_seconds=1.5,
            http_connections=16,
            contention_cases=((4, 100), (8, 500)),
            contention_strategies=("fixed_window", "token_bucket"),
            contention_repeats=3,
            memory_keys=5000,
        )


class StepClock:
    """A clock the harness moves: ``advance()`` once per decision, by ``step_ms``.

    A sliding log then holds exactly ``window / step`` live entries whatever the
    speed of the library, and the run never rejects because of real time passing.
    """

    def __init__(self, step_ms: float) -> None:
        self.now_ms = math.floor(time.time() * 1000.0)
        self.step_ms = step_ms

    def advance(self) -> None:
        self.now_ms += self.step_ms

    def ms(self) -> float:
        return self.now_ms

    def seconds(self) -> float:
        return self.now_ms / 1000.0


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Samples:
    """Per-call durations in µs of one subject, pooled over rounds, and its errors."""

    values: list[float] = field(default_factory=list)
    rejected: int = 0
    errors: int = 0
    first_error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def p99(self) -> float:
        return percentile(self.values, 0.99)

    def summary(self) -> dict[str, Any]:
        return {
            "median_us": self.median,
            "p99_us": self.p99,
            "calls": len(self.values),
            "rejected": self.rejected,
            "errors": self.errors,
            "first_error": self.first_error,
        }


async def timed_calls(hit: Hit, count: int, into: Samples, before: Callable[[], None]) -> None:
    """Call ``hit`` ``count`` times, each timed alone with ``perf_counter_ns``.

    ``before`` runs untimed before each call (it moves a ``StepClock``).
    """
    clock = time.perf_counter_ns
    values = into.values
    for _ in range(count):
        before()
        start = clock()
        try:
            admitted = await hit()
        except Exception as exc:
            into.errors += 1
            if not into.first_error:
                into.first_error = f"{type(exc).__name__}: {exc}"[:300]
            continue
        values.append((clock() - start) / 1000.0)
        if not admitted:
            into.rejected += 1


def nothing() -> None:
    """The ``before`` of subjects with no clock to move."""


def rotated(items: Sequence[Any], round_index: int) -> list[Any]:
    """``items`` rotated by ``round_index``: each round starts with another subject."""
    if not items:
        return []
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]
