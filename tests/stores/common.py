"""What the tests of the network stores share: a fake clock, small scripts, exact
decisions and the hit sequences that compare a store with the in-process one."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

from ratescript.decision import Decision
from ratescript.scriptdsl import Key, Record, allow, script


class FakeClock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self, now: float = 1.7e12 + 0.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Pair(Record):
    first: float
    second: float


@script
def divide(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    v = k.get(default=0)
    k.set(v + a / b)
    return allow(remaining=v)


def exact(decision: Decision) -> tuple[object, ...]:
    """A decision with every number as its exact bytes (so -0.0 differs from 0.0)."""
    numbers = (decision.wait_ms, decision.remaining, decision.reset_ms, *decision.metadata.values())
    return (decision.allowed, tuple(b"%.17g" % x for x in numbers), tuple(decision.metadata))


def fresh_namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def hit_sequence(
    seed: int, keys: Sequence[str], costs: Sequence[float], period_ms: float
) -> list[tuple[float, str, float]]:
    """(clock, key, cost) steps with clock jumps from 0 to past a period.

    A server's TTLs run on its wall clock while the fake clock jumps: steps never land
    in the last minute of a window, so no key the script still needs expires on the
    server during the test (every TTL here is a minute or more).
    """
    rng = random.Random(seed)
    now = 1.7e12 + 0.25
    steps = []
    for _ in range(150):
        now += rng.choice((0.0, 0.5, 1.0, 17.0, 1000.0, 60_000.0, period_ms / 3, period_ms * 1.5))
        now += rng.choice((0.0, rng.uniform(0, period_ms / 5)))
        if now % period_ms > period_ms - 60_000:
            now += 120_000
        steps.append((now, rng.choice(keys), rng.choice(costs)))
    return steps
