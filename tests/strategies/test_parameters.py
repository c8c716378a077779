"""Strategy parameters are checked when a strategy is built; rates whose state would
outlive every store's TTL are rejected when a strategy is given one."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import pytest

from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl.runtime import MAX_TTL_MS
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
from ratescript.strategies.checks import MAX_HORIZON_MS, check_number

T0 = 1_700_000_000_000.0
DAY_MS = 86_400_000

#: Every numeric parameter: how to build a strategy with it, and values it must refuse.
NOT_NUMBERS: tuple[object, ...] = ("5", True, False, None, [1], 1j)
NOT_FINITE: tuple[object, ...] = (math.inf, -math.inf, math.nan, 10**400)
PARAMETERS: dict[str, tuple[Callable[[Any], Strategy[Any]], tuple[object, ...]]] = {
    "token_bucket.burst_size": (lambda v: TokenBucketStrategy(burst_size=v), (0, -1.0)),
    "debt.burst_size": (lambda v: TokenBucketWithDebtStrategy(burst_size=v), (0.0,)),
    "debt.max_debt": (lambda v: TokenBucketWithDebtStrategy(max_debt=v), (-0.5,)),
    "leaky.capacity": (lambda v: LeakyBucketStrategy(capacity=v), (0,)),
    "queue.max_queue": (lambda v: LeakyBucketWithQueueStrategy(max_queue=v), (0, -3)),
    "gcra.burst_tolerance_ms": (lambda v: GCRAStrategy(burst_tolerance_ms=v), (-1e-9,)),
    "adaptive.load_threshold": (lambda v: AdaptiveThrottleStrategy(load_threshold=v), (0, 1.5)),
    "adaptive.reduction_factor": (lambda v: AdaptiveThrottleStrategy(reduction_factor=v), (2,)),
    "adaptive.recovery_rate": (lambda v: AdaptiveThrottleStrategy(recovery_rate=v), (-0.1,)),
    "adaptive.min_limit_ratio": (lambda v: AdaptiveThrottleStrategy(min_limit_ratio=v), (0,)),
    "priority.reserved_fraction": (lambda v: PriorityQueueStrategy(reserved_fraction=v), (1,)),
    "priority.burst_size": (lambda v: PriorityQueueStrategy(burst_size=v), (0,)),
    "quota.rollover_percentage": (
        lambda v: QuotaWithRolloverStrategy(rollover_percentage=v),
        (-0.1, 1.01),
    ),
    "quota.max_rollover": (lambda v: QuotaWithRolloverStrategy(max_rollover=v), (-1,)),
    "time_of_day.timezone_offset": (lambda v: TimeOfDayStrategy(timezone_offset=v), (15, -13)),
    "time_of_day.multiplier": (lambda v: TimeOfDayStrategy([(0, 24, v)]), (0,)),
    "tiered.multiplier": (lambda v: TieredRateStrategy({"free": v}, "free"), (0, -2)),
    "cost_based.burst_size": (lambda v: CostBasedTokenBucketStrategy(burst_size=v), (0,)),
    "cost_based.average_window": (
        lambda v: CostBasedTokenBucketStrategy(average_window=v),
        (0.5,),
    ),
    "cost_based.min_refill_rate": (
        lambda v: CostBasedTokenBucketStrategy(min_refill_rate=v),
        (0, 1.5),
    ),
    "concurrency.max_in_flight": (lambda v: ConcurrencyLimitStrategy(max_in_flight=v), (0,)),
    "concurrency.lease_ms": (lambda v: ConcurrencyLimitStrategy(lease_ms=v), (-5,)),
}
#: Parameters where None means "the default" rather than a mistake.
OPTIONAL = {
    "token_bucket.burst_size",
    "debt.burst_size",
    "debt.max_debt",
    "leaky.capacity",
    "queue.max_queue",
    "priority.burst_size",
    "quota.max_rollover",
    "cost_based.burst_size",
    "concurrency.max_in_flight",
    "concurrency.lease_ms",
}


def _bad_values(name: str) -> list[object]:
    _build, out_of_range = PARAMETERS[name]
    values = [*NOT_NUMBERS, *NOT_FINITE, *out_of_range]
    return [v for v in values if not (v is None and name in OPTIONAL)]


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name in PARAMETERS for value in _bad_values(name)],
    ids=repr,
)
def test_a_bad_parameter_is_a_configuration_error_at_construction(name: str, value: object) -> None:
    build, _ = PARAMETERS[name]
    with pytest.raises(ConfigurationError):
        build(value)


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_good_parameters_of_any_real_type_are_accepted(name: str) -> None:
    build, _ = PARAMETERS[name]
    for value in (1, 1.0, Fraction(1, 2), 0.75):
        if name == "priority.reserved_fraction":  # 2 × it below 1 (three levels)
            value /= 3
        elif name == "cost_based.average_window":  # >= 1
            value *= 2
        build(value)


def test_the_message_names_the_strategy_the_parameter_and_the_range() -> None:
    with pytest.raises(ConfigurationError, match=r"TokenBucketStrategy: burst_size .* > 0"):
        TokenBucketStrategy(burst_size=math.inf)
    with pytest.raises(ConfigurationError, match=r"reduction_factor .* in \(0, 1\], got 2"):
        AdaptiveThrottleStrategy(reduction_factor=2)
    assert check_number("S", "x", Fraction(3, 4), high=1.0) == 0.75


# --- periods longer than a store keeps a key ------------------------------------------------

LONG = Rate(1, days=5_000)  # one hit per ~13.7 years
#: Every strategy, each with parameters whose state at ``LONG`` would outlive a store's TTL.
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
    "priority": PriorityQueueStrategy(),
    "quota": QuotaWithRolloverStrategy(),
    "time_of_day": TimeOfDayStrategy(),
    "cost_based": CostBasedTokenBucketStrategy(),
    "concurrency": ConcurrencyLimitStrategy(),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(EVERY))
async def test_a_period_longer_than_a_store_keeps_a_key_is_rejected(name: str) -> None:
    """The audit's case: with a 5,000-day period a key's TTL was clamped to ~10 years, so a
    second hit after 3,700 days was admitted. Now such a rate is refused outright."""
    strategy = EVERY[name]
    store = InMemoryStore(clock=lambda: T0)
    for text in (LONG, "1/5000d"):
        with pytest.raises(ConfigurationError, match="longer than a store keeps a key"):
            await strategy.hit("k", text, store)
        with pytest.raises(ConfigurationError, match="longer than a store keeps a key"):
            await strategy("k", text, store)
        with pytest.raises(ConfigurationError, match="longer than a store keeps a key"):
            await strategy.stat("k", text, store)
    assert len(store) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(EVERY))
async def test_a_long_period_within_the_horizon_still_decides(name: str) -> None:
    strategy = EVERY[name]
    clock = [T0]
    store = InMemoryStore(clock=lambda: clock[0])
    rate = Rate(2, days=300)  # every horizon here is within ten years
    for _ in range(4):
        decision = await strategy.hit("k", rate, store)
        if not decision.allowed:
            assert decision.metadata["exceeds_capacity"] == 0
            clock[0] += decision.wait_ms
            assert (await strategy.hit("k", rate, store)).allowed
            return
    raise AssertionError("never rejected")


@pytest.mark.parametrize(
    ("strategy", "rate"),
    [
        (GCRAStrategy(burst_tolerance_ms=MAX_TTL_MS), Rate(1, seconds=1)),
        (TokenBucketStrategy(burst_size=4_000), Rate(1, days=1)),
        (TokenBucketWithDebtStrategy(burst_size=1, max_debt=4_000), Rate(1, days=1)),
        (LeakyBucketStrategy(capacity=4_000), Rate(1, days=1)),
        (LeakyBucketWithQueueStrategy(max_queue=4_000), Rate(1, days=1)),
        (ConcurrencyLimitStrategy(lease_ms=MAX_TTL_MS), Rate(1, seconds=1)),
        (CostBasedTokenBucketStrategy(min_refill_rate=0.1), Rate(1, days=400)),
        # The audit's case: recovering from 0.3 by 0.07 a year takes 10 more years.
        (AdaptiveThrottleStrategy(recovery_rate=0.07), Rate(1, days=365)),
        (QuotaWithRolloverStrategy(), Rate(1, days=2_000)),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, Strategy) else str(x),
)
def test_parameters_that_make_state_outlive_a_store_are_rejected(
    strategy: Strategy[Any], rate: Rate
) -> None:
    with pytest.raises(ConfigurationError, match="longer than a store keeps a key"):
        strategy.arguments(rate, 1.0, None)


def test_the_horizon_is_just_under_the_ttl_clamp() -> None:
    assert MAX_HORIZON_MS == MAX_TTL_MS - 2
    longest = Rate(1, milliseconds=MAX_HORIZON_MS)
    FixedWindowStrategy().arguments(longest, 1.0, None)
    with pytest.raises(ConfigurationError):
        FixedWindowStrategy().arguments(Rate(1, milliseconds=MAX_HORIZON_MS + 1), 1.0, None)
    # A yearly adaptive limit with the defaults recovers from its floor in 9 years.
    AdaptiveThrottleStrategy().arguments(Rate(1, days=365), 1.0, None)
    GCRAStrategy().arguments(Rate(1, days=3_000), 1.0, None)


def test_gcra_refuses_an_interval_it_cannot_pace() -> None:
    """At 2**-13 ms an epoch-scale TAT does not move: the limit would admit everything."""
    for limit in (8192, 257):
        with pytest.raises(ConfigurationError, match="emission interval"):
            GCRAStrategy().arguments(Rate(limit, milliseconds=1), 1.0, None)
    GCRAStrategy().arguments(Rate(256, milliseconds=1), 1.0, None)


def test_a_strategy_without_a_script_is_refused_when_made() -> None:
    """Not at its first hit, as a bare ``AttributeError`` deep in ``Strategy.hit``."""

    @dataclasses.dataclass(frozen=True)
    class Forgetful(Strategy[Any]):
        def arguments(
            self, rate: Rate, cost: float, context: Mapping[str, Any] | None
        ) -> tuple[float, ...]:
            return (float(rate.limit), cost)

    with pytest.raises(ConfigurationError, match=r"^Forgetful has no DSL script: set `script"):
        Forgetful()
    # A strategy that names its script is made, copied and pickled as before.
    made = TokenBucketStrategy(burst_size=5)
    assert pickle.loads(pickle.dumps(made)) == made == copy.deepcopy(made)
