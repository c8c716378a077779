"""Print an ASCII chart per strategy: admitted hits over time under the same traffic.

Run: ``.venv/bin/python docs/strategy_charts.py`` (its output is pasted into
docs/strategies.md). Traffic: a client sending 40 hits per second for 2 s, resting
1 s, then 40 per second again; every strategy gets ``10/s``.
"""

from __future__ import annotations

import asyncio

from ratescript.rates import Rate
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import (
    FixedWindowStrategy,
    GCRAStrategy,
    LeakyBucketStrategy,
    LeakyBucketWithQueueStrategy,
    SlidingWindowCounterStrategy,
    SlidingWindowLogStrategy,
    Strategy,
    TokenBucketStrategy,
    TokenBucketWithDebtStrategy,
)

RATE = Rate.parse("10/s")
START = 1_700_000_000_000.0
HITS = [t for t in range(0, 4000, 25) if not 2000 <= t < 3000]  # 40/s, a 1 s pause
BUCKET_MS = 250


class Clock:
    now = START

    def __call__(self) -> float:
        return self.now


async def admitted_per_bucket(strategy: Strategy) -> list[int]:  # type: ignore[type-arg]
    clock = Clock()
    store = InMemoryStore(clock=clock)
    counts = [0] * (4000 // BUCKET_MS)
    for t in HITS:
        clock.now = START + t
        if (await strategy.hit("client", RATE, store)).allowed:
            counts[t // BUCKET_MS] += 1
    return counts


async def main() -> None:
    strategies: list[Strategy] = [  # type: ignore[type-arg]
        FixedWindowStrategy(),
        SlidingWindowCounterStrategy(),
        SlidingWindowLogStrategy(),
        TokenBucketStrategy(),
        TokenBucketWithDebtStrategy(),
        LeakyBucketStrategy(),
        LeakyBucketWithQueueStrategy(),
        GCRAStrategy(),
        GCRAStrategy(burst_tolerance_ms=400),
    ]
    print(f"admitted hits per {BUCKET_MS} ms; traffic 40/s (a pause at 2-3 s); rate 10/s")
    print(
        f"{'time (s)':<30} "
        + " ".join(
            f"{t / 1000:>2.0f}" if t % 1000 == 0 else "  " for t in range(0, 4000, BUCKET_MS)
        )
    )
    for strategy in strategies:
        counts = await admitted_per_bucket(strategy)
        bars = " ".join(f"{c:>2}" if c else " ·" for c in counts)
        label = repr(strategy).replace("Strategy", "").replace("=None", "").replace("()", "")
        label = label.replace("(burst_size, max_debt)", "").replace("(capacity)", "")
        label = label.replace("(max_queue)", "").replace("(burst_size)", "")
        print(f"{label:<30} {bars}   total {sum(counts)}")


if __name__ == "__main__":
    asyncio.run(main())
