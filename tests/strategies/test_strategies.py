"""The eight strategies against plain-Python models, on every store; the contract; contention.

Ties at boundaries. The models compute exactly (``Fraction``); the strategies in
doubles. For the differential tests every decision, wait and remaining must be
*identical*, which holds because the drawn cases keep the strategies' arithmetic
exact: the fake clock stays on a quarter-millisecond grid (values below 2**43
quarters, exact in a double), fixed windows and sliding logs take any whole-ms
period, and every rate, interval and leak is a power of two per ms
(``limit`` in 1..16, ``period`` 2**16 or 2**17 ms), so every product, sum and
window weight is exact. Only the sliding window counter's wait divides by a hit
count (at most 12, in halves); it is compared within 1e-3 ms (a double near
1.7e12 ms resolves 2**-12 ms), while its decisions must still be identical: a time
on the grid is either exactly at the boundary or at least 1/96 ms from it, far
more than the 2**-13 ms a double can err there.

The wait-exactness tests also use rates that are not exact in binary (``5/61s``):
there the strategies must be self-consistent, which is what ``wait_ms`` promises.

Real servers expire keys by their own clock while the fake clock stands still.
Every TTL the drawn cases produce is at least 2 s (costs >= 0.5, intervals >= 4 s),
except a fixed window's, which is the time left in the window; so on Redis and
Memcached the fake clock never stops within ``_SERVER_WINDOW_GUARD_MS`` of a
fixed window's end (it moves on to the end instead).
"""

from __future__ import annotations

import copy
import math
import pickle
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from ratescript.decision import Decision
from ratescript.exceptions import ScriptError
from ratescript.rates import Rate
from ratescript.stores.base import Store
from ratescript.stores.memcached import MemcachedStore
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore
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

from .contended import frozen_clock, run_strategies_contended
from .models import LeakyBucketWithQueue, Model, Outcome, model_for

AnyStrategy = Strategy[Any]

T0 = 1_700_000_000_000.0
_SERVER_WINDOW_GUARD_MS = 3_000.0
_MEMORY_EXAMPLES = 400
_SERVER_EXAMPLES = 60


# --- clocks and stores ------------------------------------------------------------------------


class FakeClock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _fresh_namespace() -> str:
    return f"strat{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class StoreMaker:
    """Builds a store of one kind on a fresh namespace with a given clock."""

    kind: str
    url: str = ""

    @asynccontextmanager
    async def __call__(self, clock: FakeClock) -> AsyncIterator[Store]:
        store: Store
        namespace = _fresh_namespace()
        if self.kind == "memory":
            store = InMemoryStore(namespace=namespace, clock=clock)
        elif self.kind == "redis":
            store = RedisStore(self.url, namespace=namespace, clock=clock, timeout=10.0)
        else:
            store = MemcachedStore(self.url, namespace=namespace, clock=clock, timeout=10.0)
        async with store:
            yield store


_SERVER_PARAMS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("memcached", marks=pytest.mark.memcached),
]


def _maker(request: pytest.FixtureRequest) -> StoreMaker:
    kind: str = request.param
    if kind == "memory":
        return StoreMaker("memory")
    return StoreMaker(kind, request.getfixturevalue(f"{kind}_url"))


@pytest.fixture(scope="session", params=["memory", *_SERVER_PARAMS])
def any_store(request: pytest.FixtureRequest) -> StoreMaker:
    """Every store: in memory, Redis, Memcached."""
    return _maker(request)


@pytest.fixture(scope="session", params=_SERVER_PARAMS)
def server_store(request: pytest.FixtureRequest) -> StoreMaker:
    """The stores on real servers."""
    return _maker(request)


class _Untouchable:
    """A "store" that fails on any use: proves a call never touched its store."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store was touched ({name})")


# --- drawing cases --------------------------------------------------------------------------

KINDS = (
    "fixed_window",
    "token_bucket",
    "token_bucket_with_debt",
    "gcra",
    "sliding_window_log",
    "sliding_window_counter",
    "leaky_bucket",
    "leaky_bucket_with_queue",
)

_POW2_LIMITS = st.sampled_from((1, 2, 4, 8, 16))
_POW2_PERIODS_MS = st.sampled_from((65_536, 131_072))
_WHOLE_PERIODS_MS = st.sampled_from((60_000, 65_536, 90_000, 3_600_000)) | st.integers(
    60_000, 600_000
)
_SMALL_LIMITS = st.integers(1, 12)
_AMOUNTS = st.sampled_from((None, 1.0, 1.5, 2.5, 3.0, 10.0))  # capacities, queues; None: default


@st.composite
def _dyadic_case(draw: st.DrawFn, kind: str) -> tuple[AnyStrategy, Rate]:
    """A strategy and a rate whose arithmetic is exact in doubles (see the module doc)."""
    if kind in ("fixed_window", "sliding_window_log"):
        rate = Rate(draw(_SMALL_LIMITS), milliseconds=draw(_WHOLE_PERIODS_MS))
        strategy: AnyStrategy = (
            FixedWindowStrategy() if kind == "fixed_window" else SlidingWindowLogStrategy()
        )
        return strategy, rate
    if kind == "sliding_window_counter":
        rate = Rate(draw(_SMALL_LIMITS), milliseconds=draw(_POW2_PERIODS_MS))
        return SlidingWindowCounterStrategy(), rate
    rate = Rate(draw(_POW2_LIMITS), milliseconds=draw(_POW2_PERIODS_MS))
    if kind == "token_bucket":
        return TokenBucketStrategy(burst_size=draw(_AMOUNTS)), rate
    if kind == "token_bucket_with_debt":
        debt = draw(st.sampled_from((None, 0.0, 0.5, 2.0, 5.0)))
        return TokenBucketWithDebtStrategy(burst_size=draw(_AMOUNTS), max_debt=debt), rate
    if kind == "gcra":
        interval = rate.expire / rate.limit
        quarters = draw(st.integers(0, int(4 * 4 * interval)) | st.sampled_from((0, 4 * interval)))
        return GCRAStrategy(burst_tolerance_ms=quarters / 4), rate
    if kind == "leaky_bucket":
        return LeakyBucketStrategy(capacity=draw(_AMOUNTS)), rate
    assert kind == "leaky_bucket_with_queue"
    return LeakyBucketWithQueueStrategy(max_queue=draw(_AMOUNTS)), rate


@st.composite
def _general_case(draw: st.DrawFn, kind: str) -> tuple[AnyStrategy, Rate]:
    """Any strategy and rate (periods of a minute or more), binary-exact or not."""
    limit = draw(st.integers(1, 30))
    period_ms = draw(
        st.sampled_from((60_000, 61_000, 90_000, 3_600_000, 100_000.5, 100_000.1, 200_000 / 3))
        | st.integers(60_000, 600_000)
    )
    rate = Rate(limit, milliseconds=period_ms)
    amount = st.none() | st.integers(1, 40).map(lambda n: n / 2)
    strategies: dict[str, Callable[[], AnyStrategy]] = {
        "fixed_window": FixedWindowStrategy,
        "sliding_window_log": SlidingWindowLogStrategy,
        "sliding_window_counter": SlidingWindowCounterStrategy,
        "token_bucket": lambda: TokenBucketStrategy(burst_size=draw(amount)),
        "token_bucket_with_debt": lambda: TokenBucketWithDebtStrategy(
            burst_size=draw(amount), max_debt=draw(st.none() | st.floats(0, 10))
        ),
        "gcra": lambda: GCRAStrategy(burst_tolerance_ms=draw(st.floats(0, 4 * period_ms))),
        "leaky_bucket": lambda: LeakyBucketStrategy(capacity=draw(amount)),
        "leaky_bucket_with_queue": lambda: LeakyBucketWithQueueStrategy(max_queue=draw(amount)),
    }
    return strategies[kind](), rate


# A step of the clock, (kind, amount, delta): ("ms", quarters of a ms / 4, 0); ("wait", 0,
# delta) to the last rejected hit's wait (on the grid) plus delta; ("boundary", 0, delta) to
# the next multiple of the period plus delta; ("intervals", n, delta) n emission intervals
# (period / limit: when a unit refills, leaks or is served) plus delta.
Step = tuple[str, float, float]
_DELTAS = st.sampled_from((-1.0, -0.25, 0.0, 0.0, 0.25, 1.0))
_STEPS: st.SearchStrategy[Step] = st.one_of(
    st.just(("ms", 0.0, 0.0)),
    st.integers(1, 12).map(lambda q: ("ms", q / 4, 0.0)),  # within a few ms
    st.integers(1, 4 * 20_000).map(lambda q: ("ms", q / 4, 0.0)),  # within an interval
    st.integers(1, 4 * 400_000).map(lambda q: ("ms", q / 4, 0.0)),  # across periods
    _DELTAS.map(lambda d: ("wait", 0.0, d)),
    _DELTAS.map(lambda d: ("boundary", 0.0, d)),
    st.tuples(st.sampled_from((0.5, 1.0, 1.0, 2.0, 3.0)), _DELTAS).map(
        lambda nd: ("intervals", *nd)
    ),
)
# Exact in doubles and in every case's arithmetic; 1e6 exceeds any capacity drawn.
_COSTS = st.sampled_from((0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 1e6))
_HITS = st.lists(st.tuples(_STEPS, _COSTS), min_size=1, max_size=25)


def _on_grid(ms: float) -> float:
    """The nearest quarter of a millisecond."""
    return math.floor(ms * 4 + 0.5) / 4


class Timeline:
    """Moves a fake clock by drawn steps, forward only, on the quarter-ms grid."""

    def __init__(self, clock: FakeClock, rate: Rate, guard_ms: float = 0.0) -> None:
        self.clock = clock
        self.period = Fraction(rate.expire)
        self.interval = rate.expire / rate.limit
        self.guard = guard_ms
        self.last_wait: float | None = None

    def _next_boundary(self, now: float) -> float:
        return float((Fraction(now) // self.period + 1) * self.period)

    def advance(self, step: Step) -> float:
        now = self.clock.now
        kind, amount, delta = step
        if kind == "wait" and self.last_wait is not None:
            target = _on_grid(now + self.last_wait) + delta
        elif kind == "boundary":
            target = _on_grid(self._next_boundary(now)) + delta
        elif kind == "intervals":
            target = now + _on_grid(amount * self.interval) + delta
        elif kind == "ms":
            target = now + amount
        else:
            target = now + 1.0
        target = max(now, target)
        if self.guard and self._next_boundary(target) - target < self.guard:
            # A fixed window's TTL on a real server is the time left in the window, in
            # real time: never stop where it could run out while the fake clock stands.
            target = self._next_boundary(target)
        self.clock.now = target
        return target

    def saw(self, decision: Decision) -> None:
        self.last_wait = None if decision.allowed else decision.wait_ms


def _exceeds(decision: Decision) -> float:
    return decision.metadata.get("exceeds_capacity", 0.0)


def _check(decision: Decision, expected: Outcome, model: Model) -> None:
    """The strategy's decision is the model's: identical, but for inexact waits."""
    assert decision.allowed == expected.allowed
    if expected.allowed:
        assert decision.wait_ms == 0
    elif expected.wait_ms is None:
        assert _exceeds(decision) == 1
        assert 0 < decision.wait_ms < math.inf
    elif model.exact_wait:
        assert decision.wait_ms == expected.wait_ms
    else:
        assert decision.wait_ms == pytest.approx(float(expected.wait_ms), rel=0, abs=1e-3)
    if expected.wait_ms is not None:
        assert _exceeds(decision) == 0
    assert decision.remaining == expected.remaining


async def _run_against_model(maker: StoreMaker, kind: str, data: st.DataObject) -> None:
    strategy, rate = data.draw(_dyadic_case(kind), label="strategy, rate")
    start_quarters = data.draw(st.integers(0, 4 * int(rate.expire)), label="start")
    hits = data.draw(_HITS, label="hits")
    model = model_for(strategy, rate)
    clock = FakeClock(T0 + start_quarters / 4)
    guard = _SERVER_WINDOW_GUARD_MS if kind == "fixed_window" and maker.kind != "memory" else 0
    timeline = Timeline(clock, rate, guard)
    async with maker(clock) as store:
        for index, (step, cost) in enumerate(hits):
            now = timeline.advance(step)
            decision = await strategy.hit("k", rate, store, cost)
            expected = model.hit(now, cost)
            note(f"hit {index} at T0+{now - T0} cost {cost}: {decision} expected {expected}")
            _check(decision, expected, model)
            if isinstance(model, LeakyBucketWithQueue) and decision.allowed:
                assert decision.metadata["delay_ms"] == model.delay_ms
            timeline.saw(decision)


# --- the strategies decide like their models, on every store ----------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=_MEMORY_EXAMPLES, deadline=None)
@given(data=st.data())
async def test_decisions_match_the_model_in_memory(kind: str, data: st.DataObject) -> None:
    await _run_against_model(StoreMaker("memory"), kind, data)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=_SERVER_EXAMPLES, deadline=None)
@given(data=st.data())
async def test_decisions_match_the_model_on_servers(
    server_store: StoreMaker, kind: str, data: st.DataObject
) -> None:
    await _run_against_model(server_store, kind, data)


# --- wait_ms is exact -------------------------------------------------------------------------

#: Named strategies at a rate whose arithmetic is not exact in binary.
CONTRACT_CASES: dict[str, tuple[AnyStrategy, str]] = {
    "fixed_window": (FixedWindowStrategy(), "5/61s"),
    "token_bucket": (TokenBucketStrategy(), "5/61s"),
    "token_bucket_burst": (TokenBucketStrategy(burst_size=7.5), "3/7m"),
    "token_bucket_with_debt": (TokenBucketWithDebtStrategy(), "5/61s"),
    "token_bucket_with_debt_2": (TokenBucketWithDebtStrategy(burst_size=4, max_debt=2.5), "3/7m"),
    "gcra": (GCRAStrategy(), "5/61s"),
    "gcra_tolerance": (GCRAStrategy(burst_tolerance_ms=30_000.5), "7/100s"),
    "sliding_window_log": (SlidingWindowLogStrategy(), "5/61s"),
    "sliding_window_counter": (SlidingWindowCounterStrategy(), "5/61s"),
    "leaky_bucket": (LeakyBucketStrategy(), "5/61s"),
    "leaky_bucket_capacity": (LeakyBucketStrategy(capacity=2.5), "3/7m"),
    "leaky_bucket_with_queue": (LeakyBucketWithQueueStrategy(), "5/61s"),
    "leaky_bucket_with_queue_2": (LeakyBucketWithQueueStrategy(max_queue=2.5), "3/7m"),
}
_CONTRACT_IDS = list(CONTRACT_CASES)
_EIGHT_IDS = [case for case in _CONTRACT_IDS if case in KINDS]


async def _exhaust(strategy: AnyStrategy, key: str, rate: str, store: Store) -> Decision:
    """Hit ``key`` with cost 1 until a hit is rejected; that decision."""
    for _ in range(1_000):
        decision = await strategy.hit(key, rate, store)
        if not decision.allowed:
            return decision
    raise AssertionError("never rejected")


async def _check_wait_is_exact(
    strategy: AnyStrategy, rate: str | Rate, store: Store, clock: FakeClock, cost: float
) -> float:
    """On two identical keys, rejected at ``now``: a hit at ``now + wait`` is admitted, one
    just before is not. Returns the wait."""
    now = clock.now
    wait = await strategy("early", rate, store, cost)
    assert wait == await strategy("on_time", rate, store, cost)
    assert 0 < wait < math.inf
    # Just before: a millisecond, or the double before now + wait when the wait is shorter
    # (a fractional cost such as 1/3 can leave a wait of one ulp).
    early = now + wait - 1 if wait > 1 else max(now, math.nextafter(now + wait, 0))
    clock.now = early
    if cost == 1:
        seen = await strategy.stat("early", rate, store)
        assert seen.wait_ms == pytest.approx(now + wait - early, rel=1e-9)
    assert (await strategy.hit("early", rate, store, cost)).allowed is False
    clock.now = now + wait
    assert await strategy("on_time", rate, store, cost) == 0.0
    return wait


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _CONTRACT_IDS)
async def test_wait_is_exact(any_store: StoreMaker, name: str) -> None:
    strategy, rate = CONTRACT_CASES[name]
    clock = FakeClock(T0 + 1_234.25)
    async with any_store(clock) as store:
        for key in ("early", "on_time"):
            await _exhaust(strategy, key, rate, store)
        clock.now += 0.5  # the wait is read off the stored state, not off this hit's clock
        await _check_wait_is_exact(strategy, rate, store, clock, 1.0)


_PROBE_COSTS = st.sampled_from((1.0, 1.0, 0.5, 2.0, 1 / 3, 3.0))


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=_MEMORY_EXAMPLES // 2, deadline=None)
@given(data=st.data())
async def test_wait_is_exact_from_any_state(kind: str, data: st.DataObject) -> None:
    """In memory, for any parameters (exact in binary or not) and any reachable state."""
    strategy, rate = data.draw(_general_case(kind), label="strategy, rate")
    hits = data.draw(_HITS, label="hits")
    cost = data.draw(_PROBE_COSTS, label="probe cost")
    clock = FakeClock(T0 + data.draw(st.integers(0, 4 * 600_000)) / 4)
    timeline = Timeline(clock, rate)
    async with StoreMaker("memory")(clock) as store:
        for step, hit_cost in [*hits, (("ms", 0.0, 0.0), cost)]:
            timeline.advance(step)
            decision = await strategy.hit("early", rate, store, hit_cost)
            assert await strategy.hit("on_time", rate, store, hit_cost) == decision
            timeline.saw(decision)
        for _ in range(200):  # then exhaust both keys with the probe's cost
            if not decision.allowed:
                break
            decision = await strategy.hit("early", rate, store, cost)
            assert await strategy.hit("on_time", rate, store, cost) == decision
        if decision.allowed or _exceeds(decision):
            return
        await _check_wait_is_exact(strategy, rate, store, clock, cost)


@pytest.mark.asyncio
@pytest.mark.parametrize("period_ms", [60_000.0, 100_000.1, 200_000 / 3, 61_000.3])
async def test_window_boundaries_hold_for_any_period(period_ms: float) -> None:
    """Periods that are not whole ms: the window a hit falls in ends exactly where the
    next one starts, and the counter still finds the previous window there."""
    rate = Rate(4, milliseconds=period_ms)
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    for window in range(60):
        start = T0 + window * 1.37 * period_ms
        for strategy in (
            FixedWindowStrategy(),
            SlidingWindowCounterStrategy(),
            TieredRateStrategy(tier_multipliers={"free": 1.0}, default_tier="free"),
            TimeOfDayStrategy(time_windows=()),
        ):
            key = f"{type(strategy).__name__}:{window}"
            clock.now = start
            decisions = [await strategy.hit(key, rate, store) for _ in range(5)]
            assert [d.allowed for d in decisions] == [True] * 4 + [False]
            end = start + decisions[0].reset_ms  # exactly the window's end
            clock.now = math.nextafter(end, 0)
            assert (await strategy.hit(key, rate, store)).allowed is False
            clock.now = end
            decision = await strategy.hit(key, rate, store)
            if not isinstance(strategy, SlidingWindowCounterStrategy):  # fixed windows
                assert decision.allowed and decision.metadata["window_start_ms"] == end
            else:
                assert not decision.allowed and decision.metadata["previous_count"] == 4


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("strategy", "rate", "expected"),
    [
        (LeakyBucketWithQueueStrategy(), "6/s", 6),
        (LeakyBucketWithQueueStrategy(max_queue=3), "6/s", 3),
        (LeakyBucketWithQueueStrategy(), "7/h", 7),
        (LeakyBucketWithQueueStrategy(), "59/m", 59),
        (GCRAStrategy(burst_tolerance_ms=30_500.0), "6/61s", 4),  # 3 intervals, as decimals
        (GCRAStrategy(burst_tolerance_ms=2 * (1_000 / 6)), "6/s", 3),
        (GCRAStrategy(burst_tolerance_ms=58 * (60_000 / 59)), "59/m", 59),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, Strategy) else str(x),
)
async def test_a_burst_admits_exactly_its_number_on_every_store(
    any_store: StoreMaker, strategy: AnyStrategy, rate: str, expected: int
) -> None:
    """Rates whose interval is not exact in binary (see tests/strategies/test_numerics.py
    for any rate): a burst on an idle key admits its documented number, and ``stat`` says
    so first — on every store, as the scripts are the same."""
    async with any_store(FakeClock(T0)) as store:
        assert (await strategy.stat("k", rate, store)).hits_remaining == expected
        decisions = [await strategy.hit("k", rate, store) for _ in range(expected + 1)]
        assert [d.allowed for d in decisions] == [True] * expected + [False]


# --- `await strategy(...)`: the wait alone ---------------------------------------------------


#: Clock steps in ms; None steps to when the last rejected hit was told to come back.
_ADVANCES = st.sampled_from((None, 0.0, 0.25, 1.0, 997.5, 12_200.0, 61_000.0)) | st.floats(
    0, 500_000
)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _CONTRACT_IDS)
@settings(max_examples=40, deadline=None)
@given(hits=st.lists(st.tuples(_ADVANCES, _COSTS), min_size=1, max_size=25))
async def test_the_wait_is_what_hit_decides(
    name: str, hits: list[tuple[float | None, float]]
) -> None:
    """In process, ``await strategy(...)`` runs its own runner (the wait alone) from its
    second hit on; hit by hit it equals ``hit``'s decision and leaves the same state."""
    strategy, rate = CONTRACT_CASES[name]
    strategy = copy.copy(strategy)  # its own fast path: the stores of this example only
    clock = FakeClock(T0 + 0.25)
    called, decided = InMemoryStore(clock=clock), InMemoryStore(clock=clock)
    wait = 0.0
    for advance, cost in hits:
        clock.now += wait if advance is None else advance
        decision = await strategy.hit("k", rate, decided, cost)
        wait = await strategy("k", rate, called, cost)
        assert wait == (0.0 if decision.allowed else decision.wait_ms)
        assert await called.get("k") == await decided.get("k")


@pytest.mark.asyncio
async def test_the_fast_path_follows_the_store_and_the_rate() -> None:
    strategy = FixedWindowStrategy()
    clock = FakeClock(T0)
    one, other = InMemoryStore(clock=clock), InMemoryStore(clock=clock)
    for _ in range(3):
        assert await strategy("k", "3/m", one) == 0.0  # the third takes the fast path
    assert await strategy("k", "3/m", one) > 0  # full: the fast path charged `one`
    assert await strategy("k", "3/m", other) == 0.0  # its own count
    assert await strategy("k", "5/m", one) == 0.0  # another rate: 4 of 5
    assert (await strategy.hit("k", "3/m", other, 3)).allowed is False  # 1 + 3 > 3
    assert await strategy("k", "3/m", other, 2) == 0.0


@pytest.mark.asyncio
async def test_a_subclass_with_its_own_hit_sees_every_hit() -> None:
    seen: list[float] = []

    @dataclass(frozen=True)
    class Counted(TokenBucketStrategy):
        async def hit(self, key, rate, store, cost=1, context=None):  # type: ignore[no-untyped-def]
            seen.append(cost)
            return await super().hit(key, rate, store, cost, context)

    strategy, store = Counted(), InMemoryStore(clock=FakeClock())
    for _ in range(4):
        await strategy("k", "10/m", store)
    assert seen == [1, 1, 1, 1]


@pytest.mark.asyncio
async def test_a_used_strategy_copies_and_pickles_without_its_store() -> None:
    strategy = GCRAStrategy(burst_tolerance_ms=5.0)
    store = InMemoryStore(clock=FakeClock())
    for _ in range(3):
        await strategy("k", "10/m", store)
    copies = (copy.deepcopy(strategy), pickle.loads(pickle.dumps(strategy)))
    for index, copied in enumerate(copies):
        assert copied == strategy and "_fast" not in vars(copied)
        assert await copied(f"other{index}", "10/m", store) == 0.0


# --- the Strategy contract --------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _EIGHT_IDS)
@pytest.mark.parametrize("rate", ["0/0", "0/m", Rate(0, minutes=1), Rate(5)], ids=str)
async def test_an_unlimited_rate_allows_without_touching_the_store(
    name: str, rate: str | Rate
) -> None:
    strategy, _ = CONTRACT_CASES[name]
    store: Any = _Untouchable()
    for cost in (0, 1, 1e9):
        decision = await strategy.hit("k", rate, store, cost)
        assert decision.allowed and decision.wait_ms == 0 and decision.remaining == math.inf
        assert await strategy("k", rate, store, cost) == 0.0
    seen = await strategy.stat("k", rate, store)
    assert seen.hits_remaining == math.inf and seen.wait_ms == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _EIGHT_IDS)
async def test_a_cost_of_zero_never_rejects_nor_changes_state(
    any_store: StoreMaker, name: str
) -> None:
    strategy, rate = CONTRACT_CASES[name]
    clock = FakeClock(T0 + 0.25)
    async with any_store(clock) as store:
        for later in (0.0, 0.25, 1_000.0):  # a missing key stays missing
            clock.now += later
            decision = await strategy.hit("missing", rate, store, 0)
            assert decision.allowed and decision.wait_ms == 0
            assert await store.get("missing") is None
        await _exhaust(strategy, "k", rate, store)
        stored = await store.get("k")
        assert stored is not None
        for later in (0.0, 0.25, 1_000.0, 10_000.0):
            clock.now += later
            decision = await strategy.hit("k", rate, store, 0)
            assert decision.allowed and decision.wait_ms == 0
            assert await strategy("k", rate, store, 0) == 0.0
            assert await store.get("k") == stored


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _CONTRACT_IDS)
async def test_a_cost_beyond_capacity_is_rejected_with_a_finite_wait(
    any_store: StoreMaker, name: str
) -> None:
    strategy, rate = CONTRACT_CASES[name]
    clock = FakeClock(T0 + 0.25)
    async with any_store(clock) as store:
        await strategy.hit("k", rate, store, 1)
        for key in ("missing", "k"):
            before = await store.get(key)
            for cost in (1e6, 20.0):  # 20: above every capacity of these cases
                decision = await strategy.hit(key, rate, store, cost)
                assert not decision.allowed
                assert _exceeds(decision) == 1
                assert 0 < decision.wait_ms < math.inf
                assert await strategy(key, rate, store, cost) == decision.wait_ms
            assert await store.get(key) == before


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _EIGHT_IDS)
async def test_stat_never_changes_state_and_reports_where_the_key_stands(
    any_store: StoreMaker, name: str
) -> None:
    """``wait_ms``: until a hit of cost 1 is admitted; ``hits_remaining``: what the strategy
    would still admit (what a hit of cost 0 leaves)."""
    strategy, rate = CONTRACT_CASES[name]
    model = model_for(strategy, Rate.parse(rate))
    clock = FakeClock(T0 + 0.25)
    async with any_store(clock) as store:
        for step in (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5_000.0, 0.0, 61_000.0, 0.0, 0.0):
            clock.now += step
            before = await store.get("k")
            seen = await strategy.stat("k", rate, store)
            assert await store.get("k") == before
            peek = copy.deepcopy(model).hit(clock.now, 1)
            assert seen.wait_ms == pytest.approx(float(peek.wait_ms or 0), rel=1e-9)
            left = copy.deepcopy(model).hit(clock.now, 0).remaining
            assert seen.hits_remaining == pytest.approx(float(left), rel=1e-9, abs=1e-9)
            assert "exceeds_capacity" in seen.metadata
            # The state in the metadata is as the key stands, not as a hit would leave it.
            look = await strategy.hit("k", rate, store, 0)
            state = {k: v for k, v in look.metadata.items() if k not in strategy.hit_metadata}
            assert {k: seen.metadata[k] for k in state} == state
            decision = await strategy.hit("k", rate, store)
            assert decision.allowed == peek.allowed == (seen.wait_ms == 0)
            model.hit(clock.now, 1)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _EIGHT_IDS)
async def test_calling_a_strategy_returns_zero_when_allowed(
    any_store: StoreMaker, name: str
) -> None:
    strategy, rate = CONTRACT_CASES[name]
    clock = FakeClock(T0 + 0.25)
    async with any_store(clock) as store:
        wait = await strategy("k", rate, store)
        assert wait == 0.0 and type(wait) is float
        rejected = await _exhaust(strategy, "k", rate, store)
        assert await strategy("k", rate, store) == rejected.wait_ms > 0


# --- arguments kept from hit to hit ----------------------------------------------------------


@dataclass(frozen=True)
class _CountedBucket(TokenBucketStrategy):
    """A token bucket that records every cost it computes arguments for."""

    computed: list[float] = field(default_factory=list, compare=False)
    reuses_arguments = True

    def arguments(self, rate: Rate, cost: float, context: Any) -> tuple[float, ...]:
        self.computed.append(cost)
        return super().arguments(rate, cost, context)


@dataclass(frozen=True)
class _SurgeBucket(TokenBucketStrategy):
    """Arguments that follow something besides the rate and cost: never to be kept."""

    surge: list[float] = field(default_factory=lambda: [1.0], compare=False)

    def arguments(self, rate: Rate, cost: float, context: Any) -> tuple[float, ...]:
        capacity, refill, cost = super().arguments(rate, cost, context)
        return (capacity * self.surge[0], refill, cost)


def test_only_strategies_that_say_so_reuse_arguments() -> None:
    assert TokenBucketStrategy.reuses_arguments and _CountedBucket.reuses_arguments
    # A tier resolver may read anything; a subclass's own arguments are its own business.
    assert not TieredRateStrategy.reuses_arguments
    assert not _SurgeBucket.reuses_arguments


@dataclass(frozen=True)
class _AuditedBucket(TokenBucketStrategy):
    """A strategy with a ``hit`` of its own, which every call must go through."""

    seen: list[str] = field(default_factory=list, compare=False)

    async def hit(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        cost: float = 1,
        context: Any = None,
    ) -> Decision:
        self.seen.append(key)
        return await super().hit(key, rate, store, cost, context)


@pytest.mark.asyncio
async def test_calling_a_strategy_skips_hit_only_when_hit_is_the_bases() -> None:
    rate = Rate(2, seconds=1)
    plain, audited = TokenBucketStrategy(), _AuditedBucket()
    assert plain._base_hit and not audited._base_hit
    store = InMemoryStore(clock=FakeClock())
    waits = [await plain("k", rate, store) for _ in range(3)]
    assert waits == [0.0, 0.0, 500.0]
    other = InMemoryStore(clock=FakeClock())
    assert [await audited("k", rate, other) for _ in range(3)] == waits
    assert audited.seen == ["k"] * 3  # the arguments were kept, yet every call ran `hit`


@pytest.mark.asyncio
async def test_a_rate_and_cost_seen_before_reuse_their_arguments() -> None:
    strategy = _CountedBucket()
    store = InMemoryStore(clock=FakeClock())
    rate = Rate(10, seconds=1)
    for cost in (1, 1, 1.0, 2, 2, 1):
        assert (await strategy.hit("k", rate, store, cost)).allowed
    assert strategy.computed == [1.0, 2.0, 1.0]  # a new cost takes the old one's place
    for _ in range(2):
        await strategy.hit("k", "10/s", store)  # a rate string is kept as it is
    await strategy.hit("k", Rate(10, seconds=1), store)  # equal, but another object
    await strategy.hit("k", rate, store, 1, {"tier": "any"})  # a context: computed afresh
    await strategy.hit("k", rate, store, 0)  # cost 0 looks, with arguments of its own
    assert strategy.computed == [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0]
    decision = await strategy.hit("k", rate, store)
    assert decision.metadata["capacity"] == 10.0 and strategy.computed[-1] == 0
    for limit in range(1, 200):
        await strategy.hit("k", Rate(limit, seconds=1), store)
    assert len(strategy._known_arguments) <= 64  # bounded, however many rates pass


@pytest.mark.asyncio
async def test_arguments_that_depend_on_more_are_computed_for_every_hit() -> None:
    strategy = _SurgeBucket()
    store = InMemoryStore(clock=FakeClock())
    rate = Rate(10, seconds=1)
    assert (await strategy.hit("k", rate, store)).metadata["capacity"] == 10.0
    strategy.surge[0] = 3.0
    assert (await strategy.hit("k", rate, store)).metadata["capacity"] == 30.0


@dataclass(frozen=True)
class _OneArgumentTooMany(TokenBucketStrategy):
    reuses_arguments = True

    def arguments(self, rate: Rate, cost: float, context: Any) -> tuple[float, ...]:
        return (*super().arguments(rate, cost, context), 0.0)


@pytest.mark.asyncio
async def test_arguments_the_script_does_not_take_fail_on_every_hit() -> None:
    strategy = _OneArgumentTooMany()
    store = InMemoryStore(clock=FakeClock())
    rate = Rate(10, seconds=1)
    for _ in range(2):  # never kept, so never run unchecked
        with pytest.raises(ScriptError, match="takes 3 arguments"):
            await strategy.hit("k", rate, store)


# --- accuracy under contention ----------------------------------------------------------------

HOUR = Rate(100, hours=1)
#: What each admits of 400 hits of cost 1 while the clock stands still, by its own
#: definition (checked in sequence below): 100 for the plain rate; a default-priority
#: hit leaves the reserve (40) to higher priorities; a new key counts the previous
#: period as unused, so 50% of 100 rolls over; the frozen hour (23:00 UTC) is a 1.5x
#: hour of the default time windows.
CONTENDED: dict[str, tuple[AnyStrategy, int]] = {
    "fixed_window": (FixedWindowStrategy(), 100),
    "token_bucket": (TokenBucketStrategy(), 100),
    "token_bucket_with_debt": (TokenBucketWithDebtStrategy(burst_size=50, max_debt=50), 100),
    "gcra": (GCRAStrategy(burst_tolerance_ms=99 * 36_000), 100),  # 1 + 99 intervals of slack
    "sliding_window_log": (SlidingWindowLogStrategy(), 100),
    "sliding_window_counter": (SlidingWindowCounterStrategy(), 100),
    "leaky_bucket": (LeakyBucketStrategy(), 100),
    "leaky_bucket_with_queue": (LeakyBucketWithQueueStrategy(), 100),
    "tiered": (TieredRateStrategy(tier_multipliers={"free": 1.0}, default_tier="free"), 100),
    "adaptive": (AdaptiveThrottleStrategy(), 100),
    "priority": (PriorityQueueStrategy(), 60),
    "quota_rollover": (QuotaWithRolloverStrategy(), 150),
    "time_of_day": (TimeOfDayStrategy(), 150),
    "cost_based": (CostBasedTokenBucketStrategy(), 100),
    "concurrency": (ConcurrencyLimitStrategy(), 100),
}
_STORE_PATHS = {
    "redis": ("ratescript.stores.redis:RedisStore", "url_or_client_or_factory"),
    "memcached": ("ratescript.stores.memcached:MemcachedStore", "url"),
}


def _contended(url: str, kind: str) -> dict[str, int]:
    path, url_argument = _STORE_PATHS[kind]
    # Accuracy, not latency: 400 connections opening at once can outlast a 1 s deadline.
    store_kwargs = {
        url_argument: url,
        "namespace": _fresh_namespace(),
        "clock": frozen_clock,
        "timeout": 30.0,
    }
    cases = [(strategy, HOUR, name) for name, (strategy, _) in CONTENDED.items()]
    admitted = run_strategies_contended(path, store_kwargs, cases, processes=4, hits=100)
    return dict(zip(CONTENDED, admitted, strict=True))


@pytest.fixture(scope="module")
def contended_on_redis(redis_url: str) -> dict[str, int]:
    return _contended(redis_url, "redis")


@pytest.fixture(scope="module")
def contended_on_memcached(memcached_url: str) -> dict[str, int]:
    return _contended(memcached_url, "memcached")


@pytest.mark.parametrize("name", list(CONTENDED))
@pytest.mark.parametrize("kind", _SERVER_PARAMS)
def test_exactly_the_limit_is_admitted_under_contention(
    request: pytest.FixtureRequest, kind: str, name: str
) -> None:
    admitted: dict[str, int] = request.getfixturevalue(f"contended_on_{kind}")
    assert admitted[name] == CONTENDED[name][1]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(CONTENDED))
async def test_the_contended_cases_admit_exactly_their_number_in_sequence(name: str) -> None:
    """The premise of the contention test, checked without contention."""
    strategy, expected = CONTENDED[name]
    store = InMemoryStore(clock=frozen_clock)
    decisions = [await strategy.hit("k", HOUR, store) for _ in range(400)]
    assert sum(decision.allowed for decision in decisions) == expected
    assert all(decision.allowed for decision in decisions[:expected])
