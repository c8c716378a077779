"""Exact in doubles: ``remaining`` is never negative.

The model tests draw numbers exact in binary; these draw fractional costs such as
0.2 and 1/3, and ask for what the strategies promise whatever the rounding: an
admitted hit never reports a negative ``remaining``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import (
    AdaptiveThrottleStrategy,
    ConcurrencyLimitStrategy,
    CostBasedTokenBucketStrategy,
    FixedWindowStrategy,
    GCRAStrategy,
    LeakyBucketStrategy,
    LeakyBucketWithQueueStrategy,
    PriorityQueueStrategy,
    QuotaWithRolloverStrategy,
    SlidingWindowCounterStrategy,
    SlidingWindowLogStrategy,
    Strategy,
    TieredRateStrategy,
    TimeOfDayStrategy,
    TokenBucketStrategy,
    TokenBucketWithDebtStrategy,
)

T0 = 1_700_000_000_000.0
HOUR = 3_600_000


#: Costs whose sums round in binary.
FRACTIONAL_COSTS = st.sampled_from((1 / 3, 2 / 3, 0.1, 0.2, 0.7, 1.3, 1.0, 0.5, 2.9))


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- remaining is never negative -----------------------------------------------------------

EVERY: dict[str, Strategy[Any]] = {
    "fixed_window": FixedWindowStrategy(),
    "sliding_window_counter": SlidingWindowCounterStrategy(),
    "sliding_window_log": SlidingWindowLogStrategy(),
    "token_bucket": TokenBucketStrategy(),
    "token_bucket_with_debt": TokenBucketWithDebtStrategy(),
    "leaky_bucket": LeakyBucketStrategy(),
    "leaky_bucket_with_queue": LeakyBucketWithQueueStrategy(),
    "gcra": GCRAStrategy(),
    "tiered": TieredRateStrategy({"free": 1}, "free"),
    "adaptive": AdaptiveThrottleStrategy(),
    "priority": PriorityQueueStrategy(default_priority=0),
    "quota": QuotaWithRolloverStrategy(rollover_percentage=0),
    "time_of_day": TimeOfDayStrategy(time_windows=()),
    "cost_based": CostBasedTokenBucketStrategy(),
    "concurrency": ConcurrencyLimitStrategy(),
}


#: The strategies whose ``remaining`` is their limit less what they counted.
COUNTING = ("fixed_window", "sliding_window_log", "tiered", "quota", "time_of_day", "concurrency")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(EVERY))
async def test_an_admitted_hit_never_reports_a_negative_remaining(name: str) -> None:
    """The audit's case: 0.2, 0.6, 0.2 on ``1/h`` left ``remaining == -5.55e-17`` (``limit
    - used - cost`` rounds below 0 where ``used + cost <= limit`` holds)."""
    strategy = EVERY[name]
    store = InMemoryStore(clock=FakeClock(T0 - T0 % HOUR))
    decisions = [await strategy.hit("k", "1/h", store, cost) for cost in (0.2, 0.6, 0.2)]
    assert all(d.remaining >= 0 for d in decisions)
    if name in COUNTING:  # what is left of the limit: nothing (a bucket keeps its rounding)
        assert all(d.allowed for d in decisions) and decisions[-1].remaining == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(EVERY))
@settings(max_examples=40, deadline=None)
@given(
    costs=st.lists(
        st.tuples(st.sampled_from((0.0, 1.0, 997.0)), FRACTIONAL_COSTS), min_size=1, max_size=40
    )
)
async def test_remaining_is_never_negative(name: str, costs: list[tuple[float, float]]) -> None:
    strategy = EVERY[name]
    clock = FakeClock(T0 + 1 / 3)
    store = InMemoryStore(clock=clock)
    for advance, cost in costs:
        clock.now += advance
        decision = await strategy.hit("k", "3/h", store, cost)
        assert decision.remaining >= 0
