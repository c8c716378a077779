"""Exact in doubles at any rate: bursts, ``remaining``, waits after fractional costs, factors.

The model tests draw rates whose arithmetic is exact in binary; these draw any rate
(``6/s``: an interval of 166.666... ms) at any clock, epoch-scale or small, and ask
for what the strategies promise whatever the rounding: a burst admits exactly its
documented number of hits, ``stat`` says so beforehand, an admitted hit never
reports a negative ``remaining``, and a rejected hit's wait is exact.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, example, given, note, settings
from hypothesis import strategies as st

from ratescript.rates import Rate
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
from ratescript.strategies.gcra import GCRA_SLACK_MS

T0 = 1_700_000_000_000.0
HOUR = 3_600_000


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: Any rate of up to 300 hits per period, of a ms to a few days: most are not exact in binary.
RATES = st.builds(
    lambda limit, count, unit: Rate.parse(f"{limit}/{count}{unit}"),
    st.integers(1, 170),
    st.integers(1, 100) | st.sampled_from(("1.5", "0.7", "61", "7.25")),
    st.sampled_from(sorted(_UNITS)),
).filter(lambda rate: rate.expire <= 5 * 86_400_000)
#: Clocks at epoch scale (where doubles are 2**-12 ms apart) and small ones.
CLOCKS = st.sampled_from((T0, T0 + 0.25, T0 + 1 / 3, 0.0, 1000.5)) | st.floats(0, 4e12)
#: Costs whose sums round in binary.
FRACTIONAL_COSTS = st.sampled_from((1 / 3, 2 / 3, 0.1, 0.2, 0.7, 1.3, 1.0, 0.5, 2.9))


async def _burst(strategy: Strategy[Any], rate: Rate, clock: float, limit: int = 10_000) -> int:
    """Unit hits on a fresh key while the clock stands still, until one is rejected: how
    many were admitted. Each admitted hit's ``remaining`` is exactly what is left."""
    store = InMemoryStore(clock=FakeClock(clock))
    expected = (await strategy.stat("k", rate, store)).hits_remaining
    for admitted in range(limit):
        decision = await strategy.hit("k", rate, store)
        if not decision.allowed:
            assert decision.metadata["exceeds_capacity"] == 0
            assert admitted == math.floor(expected)  # (a queue counts cost units)
            return admitted
        assert decision.remaining == expected - admitted - 1
    raise AssertionError("never rejected")


# --- LeakyBucketWithQueue: a burst admits exactly max_queue --------------------------------


@pytest.mark.asyncio
@settings(max_examples=300, deadline=None)
@given(
    rate=RATES,
    queue=st.none() | st.integers(1, 60) | st.integers(4, 240).map(lambda q: q / 4 + 0.1),
    clock=CLOCKS,
)
@example(rate=Rate.parse("6/s"), queue=None, clock=T0)
@example(rate=Rate.parse("6/s"), queue=3, clock=T0)
@example(rate=Rate.parse("7/h"), queue=None, clock=T0)
@example(rate=Rate.parse("9/m"), queue=None, clock=T0)
async def test_a_queue_burst_admits_exactly_max_queue(
    rate: Rate, queue: float | None, clock: float
) -> None:
    """The audit's case: ``"6/s"`` admitted 5, ``max_queue=3`` 2, for 71 of 180 common rates:
    the queue was a time since the epoch, and ``slot + interval`` rounded hit after hit."""
    strategy = LeakyBucketWithQueueStrategy(max_queue=queue)
    expected = rate.limit if queue is None else math.floor(queue)
    assert await _burst(strategy, rate, clock) == expected


# --- GCRA: a tolerance of k intervals admits k + 1 -----------------------------------------


@pytest.mark.asyncio
@settings(max_examples=300, deadline=None)
@given(
    rate=RATES,
    intervals=st.integers(0, 60),
    spelled=st.sampled_from(("product", "decimal")),
    clock=CLOCKS,
)
@example(rate=Rate.parse("6/61s"), intervals=3, spelled="decimal", clock=T0 + 0.5)
@example(rate=Rate.parse("6/1s"), intervals=2, spelled="product", clock=T0 + 0.5)
@example(rate=Rate.parse("5/7ms"), intervals=2, spelled="product", clock=T0 + 0.5)
@example(rate=Rate.parse("6/s"), intervals=5, spelled="product", clock=T0)
async def test_a_gcra_burst_admits_one_plus_tolerance_over_interval(
    rate: Rate, intervals: int, spelled: str, clock: float
) -> None:
    """The audit's case: a tolerance of exactly k intervals admitted k hits (71 of 177
    common rates with k = limit - 1), and ``stat`` said k + 1. Both spellings of "k
    intervals": the double product and the decimal one (``30500`` for 3 × 61000/6)."""
    interval = rate.expire / rate.limit
    if spelled == "product":
        tolerance = intervals * interval
    else:
        tolerance = float(Fraction(Decimal(rate.expire)) * intervals / rate.limit)
    note(f"interval {interval!r}, tolerance {tolerance!r}")
    strategy = GCRAStrategy(burst_tolerance_ms=tolerance)
    assert await _burst(strategy, rate, clock) == intervals + 1


@pytest.mark.asyncio
@settings(max_examples=100, deadline=None)
@given(rate=RATES, intervals=st.floats(0, 100), clock=CLOCKS, cost=st.sampled_from((1.0, 2.0)))
async def test_gcra_admits_what_stat_says_for_any_tolerance(
    rate: Rate, intervals: float, clock: float, cost: float
) -> None:
    """``remaining`` comes from the test admission uses: a burst of unit hits admits what
    ``stat`` said, whatever the tolerance, also after a hit of another cost — but where
    ``tolerance + slack`` is within a few doubles of the clock of a whole number of
    intervals, which the module doc of ``gcra`` owns up to."""
    interval = rate.expire / rate.limit
    tolerance = intervals * interval
    room = (interval + tolerance + GCRA_SLACK_MS) / interval
    assume(abs(room - round(room)) * interval > 8 * math.ulp(clock + 2 * room * interval))
    strategy = GCRAStrategy(burst_tolerance_ms=tolerance)
    store = InMemoryStore(clock=FakeClock(clock))
    first = await strategy.hit("k", rate, store, cost)
    expected = (await strategy.stat("k", rate, store)).hits_remaining
    if first.allowed:
        assert first.remaining == expected
    admitted = 0
    while (await strategy.hit("k", rate, store)).allowed:
        admitted += 1
    assert admitted == expected


# --- waits after fractional costs ----------------------------------------------------------

LOGS: dict[str, Strategy[Any]] = {
    "sliding_window_log": SlidingWindowLogStrategy(),
    "concurrency": ConcurrencyLimitStrategy(),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(LOGS))
@pytest.mark.parametrize("start", [T0, T0 + 0.25, T0 + 1 / 3])
async def test_the_wait_after_a_fractional_cost_is_when_it_leaves(name: str, start: float) -> None:
    """The audit's case: on ``3/100s``, 1/3 then (50 s later) 3 was told to wait the whole
    period (``used + cost - limit`` rounds above the 1/3 that is to leave), so a retry
    a millisecond early was admitted; with a fractional clock one on time was not."""
    strategy = LOGS[name]
    clock = FakeClock(start)
    store = InMemoryStore(clock=clock)
    assert (await strategy.hit("k", "3/100s", store, 1 / 3)).allowed
    clock.now = start + 50_000
    decision = await strategy.hit("k", "3/100s", store, 3)
    assert not decision.allowed
    leaves = math.ceil(start) + 100_000  # the 1/3 counts until then
    assert clock.now + decision.wait_ms == leaves
    clock.now = leaves - 1
    assert not (await strategy.hit("k", "3/100s", store, 3)).allowed
    clock.now = leaves
    assert (await strategy.hit("k", "3/100s", store, 3)).allowed


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(LOGS))
@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 6),
    start=CLOCKS,
    hits=st.lists(
        st.tuples(st.sampled_from((0.0, 0.0, 1 / 3, 1.0, 250.0, 7_000.0)), FRACTIONAL_COSTS),
        min_size=1,
        max_size=30,
    ),
    probe=FRACTIONAL_COSTS,
)
async def test_the_wait_is_exact_after_any_fractional_costs(
    name: str, limit: int, start: float, hits: list[tuple[float, float]], probe: float
) -> None:
    """Two keys given the same hits: the first rejection's wait is exact — a hit at
    ``now + wait`` is admitted, one a millisecond (or, for a short wait, a double) earlier
    is not."""
    strategy = LOGS[name]
    rate = Rate(limit, seconds=10)
    assume(probe <= limit)
    clock = FakeClock(start)
    store = InMemoryStore(clock=clock)
    for advance, cost in [*hits, *[(0.0, probe)] * 100]:
        clock.now += advance
        decision = await strategy.hit("early", rate, store, cost)
        assert await strategy.hit("on_time", rate, store, cost) == decision
        assert decision.remaining >= 0
        if not decision.allowed and cost == probe and advance == 0:
            break
    else:
        raise AssertionError("never rejected")
    now, wait = clock.now, decision.wait_ms
    assert 0 < wait < math.inf
    clock.now = now + wait - 1 if wait > 1 else math.nextafter(now + wait, 0)
    assert not (await strategy.hit("early", rate, store, probe)).allowed
    clock.now = now + wait
    assert (await strategy.hit("on_time", rate, store, probe)).allowed


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


# --- the adaptive throttle's factors are decimals ------------------------------------------


async def _windows(strategy: AdaptiveThrottleStrategy, rate: str, busy: list[bool]) -> list[int]:
    """Per window: how many hits it admits (hammered when busy, else probed with one hit)."""
    clock = FakeClock(T0 - T0 % HOUR)
    store = InMemoryStore(clock=clock)
    admitted = []
    for hot in busy:
        look = await strategy.hit("k", rate, store, 0)
        if hot:
            count = 0
            while (await strategy.hit("k", rate, store)).allowed:
                count += 1
            admitted.append(count)
        else:
            decision = await strategy.hit("k", rate, store)
            assert decision.allowed
            admitted.append(int(decision.remaining) + 1)
            assert look.metadata["effective_limit"] == admitted[-1]
        clock.now += HOUR
    return admitted


@pytest.mark.asyncio
async def test_adaptive_recovery_reaches_every_documented_limit() -> None:
    """The audit's case: with the defaults on ``10/h`` the factor went 0.3, 0.4, ..., 0.7,
    0.7999999999999999, so the eighth window admitted 7 instead of 8."""
    strategy = AdaptiveThrottleStrategy()
    busy = [True, True, *[False] * 8, True]
    assert await _windows(strategy, "10/h", busy) == [10, 5, 3, 4, 5, 6, 7, 8, 9, 10, 10]
    # The docstring's example: 1000, 500 after a hot window, 300 after two, then +100.
    limits = await _windows(strategy, "1000/h", busy)
    assert limits == [1000, 500, 300, 400, 500, 600, 700, 800, 900, 1000, 1000]


@pytest.mark.asyncio
@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 2_000),
    reduction=st.sampled_from((0.5, 0.6, 0.7, 0.9, 0.25)),
    recovery=st.sampled_from((0.1, 0.2, 0.3, 0.05, 0.15)),
    floor=st.sampled_from((0.3, 0.1, 0.2, 0.7)),
)
async def test_adaptive_limits_are_the_decimal_products(
    limit: int, reduction: float, recovery: float, floor: float
) -> None:
    """Each window's limit is ``limit × factor`` with the factor the decimal the
    parameters say: after two hot windows ``max(floor, reduction²)``, then ``+ recovery``."""
    strategy = AdaptiveThrottleStrategy(1.0, reduction, recovery, floor)  # never hot
    clock = FakeClock(T0 - T0 % HOUR)
    store = InMemoryStore(clock=clock)
    # A state of two hot windows, as stored: the factor at the floor or reduced twice.
    factor = max(Decimal(repr(floor)), Decimal(repr(reduction)) ** 2)
    window = (clock.now // HOUR) - 1
    await store.set("k", b"%.17g:%.17g:%.17g" % (window, 0, float(factor)))
    for _ in range(12):
        look = await strategy.hit("k", Rate(limit, hours=1), store, 0)
        factor = min(Decimal(1), factor + Decimal(repr(recovery)))
        assert look.metadata["effective_limit"] == float(limit * factor)
        clock.now += HOUR
