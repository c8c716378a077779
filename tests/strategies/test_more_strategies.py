"""The seven advanced strategies: plain-Python models, exact waits, the contract, the kit.

Each strategy is run on ``InMemoryStore`` with a fake clock and compared with a
tiny model written here from the strategy's documented definition, in exact
arithmetic (``Fraction``). The drawn cases keep the strategies' double arithmetic
exact too — whole-millisecond clocks and periods, dyadic fractions (0.25, 0.5, 1.5,
...), power-of-two rates for the buckets — so decisions and waits must be
*identical*. The models keep state forever, while the store expires keys: that
the two agree is the proof that expiry never changes a decision.

The wait-exactness tests use parameters that are not exact in binary (``0.1``,
``61 s``): there the strategies must be self-consistent, which is what
``wait_ms`` promises: a retry at ``now + wait`` is admitted, one at
``now + wait - 1`` is not.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple, Protocol

import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from ratescript.conformance.cases import MORE_CASES, ScriptCase
from ratescript.conformance.machine import check_stores, store_factory
from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl.codec import codec_for
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies.adaptive import AdaptiveThrottleStrategy
from ratescript.strategies.base import Strategy
from ratescript.strategies.concurrency import (
    ConcurrencyLimitStrategy,
)
from ratescript.strategies.cost_based import (
    CostBasedTokenBucketStrategy,
)
from ratescript.strategies.priority import PriorityQueueStrategy
from ratescript.strategies.quota_rollover import QuotaWithRolloverStrategy
from ratescript.strategies.tiered import (
    TieredRateStrategy,
    TierMultipliers,
    scaled_limit,
)
from ratescript.strategies.time_of_day import TimeOfDayStrategy, time_of_day

AnyStrategy = Strategy[Any]
Context = Mapping[str, Any] | None

T0 = 1_700_000_000_000  # whole ms, exact in a double
HOUR = 3_600_000
DAY = 86_400_000
F = Fraction


class FakeClock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _exceeds(decision: Decision) -> float:
    return decision.metadata.get("exceeds_capacity", 0.0)


# --- the models ---------------------------------------------------------------------------------


class Outcome(NamedTuple):
    allowed: bool
    #: 0 when allowed; ``None`` when the cost can never be admitted.
    wait_ms: Fraction | None


ALLOWED = Outcome(True, F(0))
NEVER = Outcome(False, None)


class Model(Protocol):
    #: The effective limit the last hit was held to (for the strategies that report one).
    effective: F | None

    def hit(self, now: Fraction, cost: Fraction, context: Context) -> Outcome: ...


def _first_fit(
    now: Fraction, candidates: Sequence[Fraction], fits: Callable[[Fraction], bool]
) -> Outcome:
    for moment in sorted(set(candidates)):
        if moment > now and fits(moment):
            return Outcome(False, moment - now)
    raise AssertionError("no candidate fits")


class TieredModel:
    """A fixed window of ``limit × multiplier`` per tier; unknown tiers are the default."""

    def __init__(self, limit: int, period: int, multipliers: Mapping[str, F], default: str):
        self.limit, self.period = limit, period
        self.multipliers, self.default = multipliers, default
        self.windows: dict[str, tuple[int, F]] = {}
        self.effective: F | None = None

    def hit(self, now: F, cost: F, context: Context) -> Outcome:
        tier = (context or {}).get("tier", self.default)
        tier = tier if tier in self.multipliers else self.default
        limit = self.effective = self.limit * self.multipliers[tier]
        start = now // self.period * self.period
        seen_start, count = self.windows.get(tier, (start, F(0)))
        used = count if seen_start == start else F(0)
        if cost > limit:
            return NEVER
        if used + cost <= limit:
            self.windows[tier] = (start, used + cost)
            return ALLOWED
        return Outcome(False, start + self.period - now)


def _decimal(x: F) -> F:
    """``x`` to twelve decimal places, half up: the adaptive throttle's factors."""
    return F(math.floor(x * 10**12 + F(1, 2)), 10**12)


class AdaptiveModel:
    """Window by window: a hot window cuts the next one's factor, any other adds to it.

    Factors are decimals of twelve places; a window's limit is ``limit × factor``
    rounded once to a double."""

    def __init__(self, limit: int, period: int, threshold: F, reduction: F, recovery: F, low: F):
        self.limit, self.period = limit, period
        self.threshold, self.reduction = threshold, reduction
        self.recovery = _decimal(recovery)
        self.low = F(math.ceil(low * 10**12), 10**12)
        self.window: int | None = None
        self.count = F(0)
        self.factor = F(1)
        self.effective: F | None = None

    def limit_at(self, factor: F) -> F:
        return F(float(self.limit * factor))

    def roll(self, window: int) -> None:
        if self.window is None:
            self.window = window
        while self.window < window:
            if self.count > self.threshold * self.limit_at(self.factor):
                self.factor = max(self.low, _decimal(self.factor * self.reduction))
            else:
                self.factor = min(F(1), self.factor + self.recovery)
            self.count = F(0)
            self.window += 1

    def hit(self, now: F, cost: F, context: Context) -> Outcome:
        window = int(now // self.period)
        self.roll(window)
        self.effective = self.limit_at(self.factor)
        if cost > self.limit:
            return NEVER
        if self.count + cost <= self.effective:
            self.count += cost
            return ALLOWED
        ahead = copy.copy(self)
        while True:
            window += 1
            ahead.roll(window)
            if cost <= self.limit_at(ahead.factor):
                return Outcome(False, window * self.period - now)


class PriorityModel:
    """One token bucket; priority ``p`` must leave ``p × fraction × capacity`` tokens."""

    effective: F | None = None

    def __init__(self, capacity: F, rate: F, fraction: F, lowest: int) -> None:
        self.capacity, self.rate, self.fraction, self.lowest = capacity, rate, fraction, lowest
        self.tokens = capacity
        self.stamp: F | None = None

    def hit(self, now: F, cost: F, context: Context) -> Outcome:
        priority = (context or {}).get("priority", self.lowest)
        reserve = self.capacity * priority * self.fraction
        tokens = self.capacity
        if self.stamp is not None:
            tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        if cost > self.capacity - reserve:
            return NEVER
        if tokens - cost >= reserve:
            self.tokens, self.stamp = tokens - cost, now
            return ALLOWED
        return Outcome(False, (cost + reserve - tokens) / self.rate)


class QuotaModel:
    """Period by period: the rollover is a share of the period's own unused quota."""

    def __init__(self, limit: int, period: int, share: F, cap: F | None) -> None:
        self.limit, self.period, self.share = limit, period, share
        self.cap = share * limit if cap is None else cap
        self.index: int | None = None
        self.used = F(0)
        self.rollover = F(0)
        self.effective: F | None = None

    def roll(self, index: int) -> None:
        if self.index is None:  # a new key: as if the previous period went unused
            self.index, self.rollover = index, min(self.cap, self.share * self.limit)
        while self.index < index:
            unused = max(F(0), min(F(self.limit), self.limit + self.rollover - self.used))
            self.rollover = min(self.cap, self.share * unused)
            self.used = F(0)
            self.index += 1

    def hit(self, now: F, cost: F, context: Context) -> Outcome:
        index = int(now // self.period)
        self.roll(index)
        self.effective = self.limit + self.rollover
        if cost > self.limit + min(self.cap, self.share * self.limit):
            return NEVER
        if self.used + cost <= self.limit + self.rollover:
            self.used += cost
            return ALLOWED
        ahead = copy.copy(self)
        while True:
            index += 1
            ahead.roll(index)
            if cost <= self.limit + ahead.rollover:
                return Outcome(False, index * self.period - now)


class TimeOfDayModel:
    """A fixed window whose limit at each moment is the limit of that moment's local hour."""

    def __init__(self, limit: int, period: int, hourly: Sequence[F], offset_ms: int) -> None:
        self.limit, self.period, self.hourly, self.offset = limit, period, hourly, offset_ms
        self.start: F | None = None
        self.count = F(0)
        self.effective: F | None = None

    def limit_at(self, moment: F) -> F:
        return self.limit * self.hourly[int((moment + self.offset) // HOUR) % 24]

    def hit(self, now: F, cost: F, context: Context) -> Outcome:
        start = F(now // self.period * self.period)
        used = self.count if self.start == start else F(0)
        self.effective = self.limit_at(now)
        if cost > self.limit * max(self.hourly):
            return NEVER
        if used + cost <= self.limit_at(now):
            self.start, self.count = start, used + cost
            return ALLOWED
        horizon = start + self.period + 2 * DAY
        first_hour = ((now + self.offset) // HOUR + 1) * HOUR - self.offset
        hours = [F(first_hour + k * HOUR) for k in range(int((horizon - first_hour) // HOUR) + 1)]
        windows = [start + k * self.period for k in range(1, int(2 * DAY // self.period) + 3)]

        def fits(moment: F) -> bool:
            count = used if moment // self.period * self.period == start else F(0)
            return count + cost <= self.limit_at(moment)

        return _first_fit(now, [*hours, *windows], fits)


class CostBasedModel:
    """A token bucket refilling at ``base × max(floor, min(1, 1/average))``; full forgets."""

    effective: F | None = None

    def __init__(self, capacity: F, base: F, low: F, window: F) -> None:
        self.capacity, self.base, self.low, self.window = capacity, base, low, window
        self.tokens, self.average = capacity, F(1)
        self.stamp: F | None = None

    def rate(self, average: F) -> F:
        return self.base * max(self.low, min(F(1), 1 / average))

    def hit(self, now: F, cost: F, context: Context) -> Outcome:
        tokens, average = self.capacity, F(1)
        if self.stamp is not None:
            tokens = self.tokens + (now - self.stamp) * self.rate(self.average)
            average = self.average
            if tokens >= self.capacity:
                tokens, average = self.capacity, F(1)
        if cost > self.capacity:
            return NEVER
        if tokens >= cost:
            self.tokens, self.stamp = tokens - cost, now
            self.average = average + (cost - average) / self.window
            return ALLOWED
        return Outcome(False, (cost - tokens) / self.rate(average))


class ConcurrencyModel:
    """Leases ``[id, amount]``, the id being the expiry: ``ceil(now) + lease``, or 2**-10
    ms after the newest id still on the key (released ones too) if that is later. A
    release by id gives back that lease only (nothing once it expired or was given
    back); without one it gives back the oldest units."""

    effective: F | None = None

    def __init__(self, most: F, lease: F) -> None:
        self.most, self.lease = most, lease
        # Released leases stay, emptied, until they would have expired: only their ids
        # count, to keep the next ids apart.
        self.leases: list[list[F]] = []

    def expire(self, now: F) -> None:
        self.leases = sorted(lease for lease in self.leases if lease[0] > now)

    def held(self) -> F:
        return sum((amount for _expiry, amount in self.leases), F(0))

    def hit(self, now: F, cost: F, context: Context) -> Outcome:
        self.expire(now)
        held = self.held()
        if cost > self.most:
            return NEVER
        if held + cost <= self.most:
            newest = max((lease[0] for lease in self.leases), default=now)
            self.last_id = max(F(math.ceil(now)) + self.lease, newest + F(1, 1024))
            self.leases.append([self.last_id, cost])
            return ALLOWED
        freed = F(0)
        for expiry, amount in self.leases:
            freed += amount
            if held - freed + cost <= self.most:
                return Outcome(False, expiry - now)
        raise AssertionError("unreachable")

    def release(self, now: F, cost: F | None, lease: F | None = None) -> F:
        self.expire(now)
        left = (F(1) if lease is None else F(10**400)) if cost is None else cost
        given = F(0)
        for entry in self.leases:
            if lease is None or entry[0] == lease:
                taken = min(left, entry[1])
                entry[1] -= taken
                left -= taken
                given += taken
        return given


# --- drawing cases ------------------------------------------------------------------------------

KINDS = ("tiered", "adaptive", "priority", "quota", "time_of_day", "cost_based", "concurrency")

_WHOLE_PERIODS = st.sampled_from((60_000, 65_536, 90_000, 3_600_000)) | st.integers(60_000, 600_000)
_POW2_LIMITS = st.sampled_from((1, 2, 4, 8, 16))
_POW2_PERIODS = st.sampled_from((65_536, 131_072))
_COSTS = st.sampled_from((0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 1e6))
_POW2_COSTS = st.sampled_from((0.0, 0.5, 1.0, 1.0, 1.0, 2.0, 4.0, 1e6))
_MULTIPLIERS = st.sampled_from((0.5, 1.0, 1.5, 2.0, 3.0))
_HAMMER_COSTS = st.sampled_from((0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 2.0, 1e6))


@dataclass
class Case:
    strategy: AnyStrategy
    rate: Rate
    model: Model
    contexts: st.SearchStrategy[Context]
    costs: st.SearchStrategy[float] = _COSTS
    #: Whether to hammer: hits mostly in the same window, so limits have to adapt.
    hammer: bool = False


@st.composite
def _exact_case(draw: st.DrawFn, kind: str) -> Case:
    """A strategy whose double arithmetic is exact for the drawn parameters, and its model."""
    no_context: st.SearchStrategy[Context] = st.none()
    contexts: st.SearchStrategy[Context]
    model: Model
    if kind == "tiered":
        rate = Rate(draw(st.integers(1, 12)), milliseconds=draw(_WHOLE_PERIODS))
        multipliers = {"free": 1.0, "pro": draw(_MULTIPLIERS), "team": draw(_MULTIPLIERS)}
        default = draw(st.sampled_from(sorted(multipliers)))
        contexts = st.sampled_from(
            (None, {}, {"tier": "free"}, {"tier": "pro"}, {"tier": "team"}, {"tier": "bogus"})
        )
        model = TieredModel(
            rate.limit, int(rate.expire), {t: F(m) for t, m in multipliers.items()}, default
        )
        return Case(TieredRateStrategy(multipliers, default), rate, model, contexts)
    if kind == "adaptive":
        rate = Rate(draw(st.integers(1, 6)), milliseconds=draw(_WHOLE_PERIODS))
        fractions = [
            draw(st.sampled_from(options), label=name)
            for name, options in (
                ("threshold", (0.5, 0.75, 1.0, 0.25)),
                ("reduction", (0.5, 0.25, 1.0, 0.75)),
                ("recovery", (0.125, 0.25, 0.5, 1.0)),
                ("floor", (0.125, 0.25, 0.5, 1.0)),
            )
        ]
        adaptive = AdaptiveThrottleStrategy(*fractions)
        model = AdaptiveModel(rate.limit, int(rate.expire), *(F(x) for x in fractions))
        return Case(adaptive, rate, model, no_context, _HAMMER_COSTS, hammer=True)
    if kind == "priority":
        rate = Rate(draw(_POW2_LIMITS), milliseconds=draw(_POW2_PERIODS))
        levels = draw(st.integers(1, 4))
        fraction = draw(st.sampled_from((0.0, 0.125, 0.25)))
        burst = draw(st.sampled_from((None, 2.0, 4.0, 8.0)))
        priority = PriorityQueueStrategy(levels, fraction, burst_size=burst)
        capacity = F(rate.limit if burst is None else burst)
        contexts = st.none() | st.integers(0, levels - 1).map(lambda p: {"priority": p})
        model = PriorityModel(capacity, F(rate.limit, int(rate.expire)), F(fraction), levels - 1)
        return Case(priority, rate, model, contexts)
    if kind == "quota":
        rate = Rate(draw(st.integers(1, 12)), milliseconds=draw(_WHOLE_PERIODS))
        share = draw(st.sampled_from((0.0, 0.25, 0.5, 1.0)))
        cap = draw(st.sampled_from((None, 0.0, 1.0, 2.5)))
        quota = QuotaWithRolloverStrategy(share, cap)
        model = QuotaModel(rate.limit, int(rate.expire), F(share), None if cap is None else F(cap))
        return Case(quota, rate, model, no_context)
    if kind == "time_of_day":
        rate = Rate(draw(st.integers(1, 8)), milliseconds=draw(_WHOLE_PERIODS))
        windows = draw(
            st.lists(
                st.tuples(st.integers(0, 23), st.integers(0, 24), _MULTIPLIERS).filter(
                    lambda w: w[0] != w[1]
                ),
                max_size=4,
            )
        )
        offset = draw(st.sampled_from((0, 0.5, -5, 5.5, 14, -12)))
        tod = TimeOfDayStrategy(windows, offset)
        hourly = [F(m) for m in tod.hourly_multipliers]
        model = TimeOfDayModel(rate.limit, int(rate.expire), hourly, int(offset * HOUR))
        return Case(tod, rate, model, no_context)
    if kind == "cost_based":
        rate = Rate(draw(_POW2_LIMITS), milliseconds=draw(_POW2_PERIODS))
        burst = draw(st.sampled_from((None, 4.0, 8.0)))
        low = draw(st.sampled_from((0.25, 0.5, 1.0)))
        # A window of 1 keeps the average a power of two (the last cost), so every refill
        # rate is exact; the moving average itself is checked by hand below.
        cost_based = CostBasedTokenBucketStrategy(burst, average_window=1, min_refill_rate=low)
        capacity = F(rate.limit if burst is None else burst)
        model = CostBasedModel(capacity, F(rate.limit, int(rate.expire)), F(low), F(1))
        return Case(cost_based, rate, model, no_context, _POW2_COSTS)
    assert kind == "concurrency"
    rate = Rate(draw(st.integers(1, 8)), milliseconds=draw(_WHOLE_PERIODS))
    most = draw(st.sampled_from((None, 1.0, 2.5, 4.0)))
    lease = draw(st.sampled_from((None, 1_000.0, 60_000.0, 90_000.0)))
    concurrency = ConcurrencyLimitStrategy(most, lease)
    model = ConcurrencyModel(
        F(rate.limit if most is None else most), F(rate.expire if lease is None else lease)
    )
    return Case(concurrency, rate, model, no_context)


# A clock step: ("ms", n) forward n ms; ("wait", d) to the last rejected hit's wait plus d;
# ("boundary", d) to the next multiple of the period plus d (the clock only goes forward).
Step = tuple[str, int]
_DELTAS = st.sampled_from((-1, 0, 0, 1))
_STEPS: st.SearchStrategy[Step] = st.one_of(
    st.just(("ms", 0)),
    st.integers(1, 12).map(lambda n: ("ms", n)),
    st.integers(1, 20_000).map(lambda n: ("ms", n)),
    st.integers(1, 400_000).map(lambda n: ("ms", n)),
    st.sampled_from((HOUR, 5 * HOUR, DAY)).map(lambda n: ("ms", n)),
    _DELTAS.map(lambda d: ("wait", d)),
    _DELTAS.map(lambda d: ("boundary", d)),
)

# Mostly hits in quick succession, so windows fill up and buckets run dry.
_BUSY_STEPS: st.SearchStrategy[Step] = st.one_of(
    st.just(("ms", 0)),
    st.just(("ms", 0)),
    st.integers(1, 1_000).map(lambda n: ("ms", n)),
    _STEPS,
)
# Bursts that fill a window, then the next window.
_HAMMER_STEPS: st.SearchStrategy[Step] = st.one_of(
    *[st.just(("ms", 0))] * 6,
    st.integers(1, 1_000).map(lambda n: ("ms", n)),
    _DELTAS.map(lambda d: ("boundary", d)),
    _STEPS,
)


class Timeline:
    """Moves a fake clock forward by drawn steps."""

    def __init__(self, clock: FakeClock, period_ms: float) -> None:
        self.clock, self.period = clock, F(period_ms)
        self.last_wait: float | None = None

    def advance(self, step: Step) -> float:
        now = self.clock.now
        kind, amount = step
        if kind == "wait" and self.last_wait is not None:
            target = now + self.last_wait + amount
        elif kind == "boundary":
            target = float((F(now) // self.period + 1) * self.period) + amount
        else:
            target = now + amount if kind == "ms" else now + 1
        self.clock.now = max(now, target)
        return self.clock.now

    def saw(self, decision: Decision) -> None:
        self.last_wait = None if decision.allowed else decision.wait_ms


def _check(decision: Decision, expected: Outcome) -> None:
    assert decision.allowed == expected.allowed
    if expected.allowed:
        assert decision.wait_ms == 0
    elif expected.wait_ms is None:
        assert _exceeds(decision) == 1
        assert 0 < decision.wait_ms < math.inf
    else:
        assert _exceeds(decision) == 0
        assert decision.wait_ms == expected.wait_ms


# --- every strategy decides like its model ------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
async def test_decisions_match_the_model(kind: str, data: st.DataObject) -> None:
    case = data.draw(_exact_case(kind), label="case")
    note(f"{case.strategy!r} at {case.rate!r}")
    clock = FakeClock(T0 + data.draw(st.integers(0, 2 * DAY), label="start"))
    timeline = Timeline(clock, case.rate.expire)
    steps = data.draw(
        st.lists(
            st.tuples(
                _HAMMER_STEPS if case.hammer else _BUSY_STEPS,
                case.costs,
                case.contexts,
                # A lease to release (by its index among those taken, any of them: expired,
                # released or held), -1 the oldest units; None: a hit.
                st.none() | st.none() | st.integers(-1, 12),
                st.booleans(),  # a release by id gives the whole lease back
            ),
            min_size=10,
            max_size=40,
        ),
        label="hits",
    )
    store = InMemoryStore(clock=clock)
    leases: list[float] = []  # the ids of the leases taken
    for index, (step, cost, context, release, whole) in enumerate(steps):
        now = timeline.advance(step)
        if release is not None and isinstance(case.model, ConcurrencyModel):
            assert isinstance(case.strategy, ConcurrencyLimitStrategy)
            lease = leases[release % len(leases)] if release >= 0 and leases else None
            amount = None if lease is not None and whole else cost
            given_back = await case.strategy.release("k", case.rate, store, amount, lease=lease)
            expected_back = case.model.release(
                F(now), None if amount is None else F(amount), None if lease is None else F(lease)
            )
            note(f"release {index} at T0+{now - T0} {amount} of {lease}: {given_back}")
            assert given_back.allowed
            if amount != 0:
                assert given_back.metadata["released"] == expected_back
                assert given_back.metadata["in_flight"] == case.model.held()
            continue
        decision = await case.strategy.hit("k", case.rate, store, cost, context)
        # A cost of 0 only looks: admitted, and the model is left as it is.
        expected = case.model.hit(F(now), F(cost), context) if cost else ALLOWED
        note(f"hit {index} at T0+{now - T0} cost {cost} {context}: {decision}, want {expected}")
        _check(decision, expected)
        if cost and case.model.effective is not None:
            assert decision.metadata["effective_limit"] == case.model.effective
        if cost and decision.allowed and isinstance(case.model, ConcurrencyModel):
            assert decision.metadata["lease_id"] == case.model.last_id
            leases.append(decision.metadata["lease_id"])
        timeline.saw(decision)


# --- wait_ms is exact ---------------------------------------------------------------------------


def _inexact_strategies() -> st.SearchStrategy[
    tuple[AnyStrategy, Rate, st.SearchStrategy[Context]]
]:
    """Strategies and rates whose arithmetic is *not* exact in binary."""
    rates = st.sampled_from((Rate(5, seconds=61), Rate(3, minutes=7), Rate(10, hours=1)))
    none: st.SearchStrategy[Context] = st.none()
    cases: list[st.SearchStrategy[tuple[AnyStrategy, Rate, st.SearchStrategy[Context]]]] = [
        st.tuples(
            st.just(TieredRateStrategy({"free": 1, "pro": 2.9, "max": 0.7}, "free")),
            rates,
            st.just(st.sampled_from(({"tier": "free"}, {"tier": "pro"}, {"tier": "max"}))),
        ),
        st.tuples(
            st.builds(
                AdaptiveThrottleStrategy,
                st.sampled_from((0.8, 0.3, 1.0)),
                st.sampled_from((0.5, 0.6, 0.9)),
                st.sampled_from((0.1, 0.3, 1 / 3)),
                st.sampled_from((0.3, 0.1, 0.7)),
            ),
            rates,
            st.just(none),
        ),
        st.tuples(
            st.builds(PriorityQueueStrategy, st.integers(1, 4), st.sampled_from((0.1, 0.2, 0.3))),
            rates,
            st.just(none | st.integers(0, 0).map(lambda p: {"priority": p})),
        ),
        st.tuples(
            st.builds(
                QuotaWithRolloverStrategy,
                st.sampled_from((0.1, 0.5, 1 / 3)),
                st.sampled_from((None, 0.7, 2.0)),
            ),
            rates,
            st.just(none),
        ),
        st.tuples(
            st.builds(
                TimeOfDayStrategy,
                st.just(((0, 8, 2.3), (22, 3, 0.7), (9, 17, 1.1))),
                st.sampled_from((0, 5.5, -3)),
            ),
            rates,
            st.just(none),
        ),
        st.tuples(
            st.builds(
                CostBasedTokenBucketStrategy,
                st.sampled_from((None, 7.5)),
                st.sampled_from((1, 3, 100)),
                st.sampled_from((0.3, 0.5, 1.0)),
            ),
            rates,
            st.just(none),
        ),
        st.tuples(
            st.builds(
                ConcurrencyLimitStrategy,
                st.sampled_from((None, 2.5)),
                st.sampled_from((None, 1_000.5, 61_000.0)),
            ),
            rates,
            st.just(none),
        ),
    ]
    return st.one_of(cases)


@pytest.mark.asyncio
@settings(max_examples=300, deadline=None)
@given(data=st.data())
async def test_wait_is_exact_from_any_state(data: st.DataObject) -> None:
    """On two keys given the same hits, the first rejection's wait is exact: a hit at
    ``now + wait`` is admitted, one at ``now + wait - 1`` is not (and ``stat`` agrees)."""
    strategy, rate, contexts = data.draw(_inexact_strategies(), label="strategy")
    clock = FakeClock(T0 + data.draw(st.integers(0, DAY), label="start"))
    timeline = Timeline(clock, rate.expire)
    probe_cost = data.draw(st.sampled_from((1.0, 1.0, 0.5, 2.0, 1 / 3)), label="probe cost")
    steps = data.draw(st.lists(st.tuples(_STEPS, _COSTS, contexts), max_size=15), label="hits")
    context = data.draw(contexts, label="probe context")
    store = InMemoryStore(clock=clock)
    for step, cost, hit_context in steps:
        timeline.advance(step)
        decision = await strategy.hit("early", rate, store, cost, hit_context)
        assert await strategy.hit("on_time", rate, store, cost, hit_context) == decision
        timeline.saw(decision)
    clock.now += data.draw(st.integers(0, 100_000), label="pause")
    for _ in range(500):  # exhaust both keys with the probe's cost
        decision = await strategy.hit("early", rate, store, probe_cost, context)
        assert await strategy.hit("on_time", rate, store, probe_cost, context) == decision
        if not decision.allowed:
            break
    assert not decision.allowed
    assume(_exceeds(decision) == 0)  # a cost this priority may never take has no wait to check
    now, wait = clock.now, decision.wait_ms
    assert 0 < wait < math.inf
    if probe_cost == 1:
        assert (await strategy.stat("early", rate, store, context)).wait_ms == wait
    clock.now = now + wait - 1 if wait > 1 else now + wait / 2
    assert (await strategy.hit("early", rate, store, probe_cost, context)).allowed is False
    clock.now = now + wait
    assert (await strategy.hit("on_time", rate, store, probe_cost, context)).allowed is True


# --- the contract: cost 0, costs never admitted, stat never writes ------------------------------

CONTRACT: dict[str, tuple[AnyStrategy, Rate, Context]] = {
    "tiered": (TieredRateStrategy({"free": 1, "pro": 3}, "free"), Rate(4, minutes=1), None),
    "tiered_pro": (
        TieredRateStrategy({"free": 1, "pro": 3}, "free"),
        Rate(4, minutes=1),
        {"tier": "pro"},
    ),
    "adaptive": (AdaptiveThrottleStrategy(), Rate(4, minutes=1), None),
    "priority": (PriorityQueueStrategy(), Rate(4, minutes=1), {"priority": 1}),
    "quota": (QuotaWithRolloverStrategy(max_rollover=1), Rate(4, minutes=1), None),
    "time_of_day": (TimeOfDayStrategy(), Rate(4, minutes=1), None),
    "cost_based": (CostBasedTokenBucketStrategy(), Rate(4, minutes=1), None),
    "concurrency": (ConcurrencyLimitStrategy(3, 30_000), Rate(4, minutes=1), None),
}
_CONTRACT_IDS = list(CONTRACT)


async def _state(
    strategy: AnyStrategy, store: InMemoryStore, key: str, context: Context
) -> list[bytes | None]:
    return await store.multi_get(list(strategy.keys(key, context)))


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _CONTRACT_IDS)
async def test_cost_zero_never_rejects_nor_changes_state(name: str) -> None:
    strategy, rate, context = CONTRACT[name]
    clock = FakeClock(T0 + 1_000)
    store = InMemoryStore(clock=clock)
    for key in ("looked", "twin"):
        for _ in range(20):
            await strategy.hit(key, rate, store, 1, context)
    before = await _state(strategy, store, "looked", context)
    decision = await strategy.hit("looked", rate, store, 0, context)
    assert decision.allowed and decision.wait_ms == 0
    assert await _state(strategy, store, "looked", context) == before
    clock.now += 2_000
    assert await strategy.hit("looked", rate, store, 1, context) == await strategy.hit(
        "twin", rate, store, 1, context
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _CONTRACT_IDS)
async def test_a_cost_never_admitted_is_rejected_at_once(name: str) -> None:
    strategy, rate, context = CONTRACT[name]
    store = InMemoryStore(clock=FakeClock())
    await strategy.hit("k", rate, store, 1, context)
    before = await _state(strategy, store, "k", context)
    decision = await strategy.hit("k", rate, store, 1_000, context)
    assert not decision.allowed
    assert _exceeds(decision) == 1
    assert 0 < decision.wait_ms < math.inf
    assert await _state(strategy, store, "k", context) == before


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _CONTRACT_IDS)
async def test_stat_does_not_change_state(name: str) -> None:
    strategy, rate, context = CONTRACT[name]
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    for cost in (1, 1, 2, 1):
        await strategy.hit("k", rate, store, cost, context)
        before = await _state(strategy, store, "k", context)
        seen = await strategy.stat("k", rate, store, context)
        again = await strategy.stat("k", rate, store, context)
        assert seen == again
        assert await _state(strategy, store, "k", context) == before
        decision = await strategy.hit("twin", rate, store, cost, context)
        assert decision.metadata.keys() <= set(seen.metadata)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", _CONTRACT_IDS)
async def test_an_unlimited_rate_never_touches_the_store(name: str) -> None:
    strategy, _rate, context = CONTRACT[name]
    store = InMemoryStore(clock=FakeClock())
    assert (await strategy.hit("k", Rate(0), store, 10**9, context)).allowed
    assert (await strategy.stat("k", "0/0", store, context)).hits_remaining == math.inf
    assert len(store) == 0


@pytest.mark.parametrize("name", _CONTRACT_IDS)
def test_strategies_are_hashable_and_compare_by_value(name: str) -> None:
    strategy, _rate, _context = CONTRACT[name]
    assert hash(strategy) == hash(copy.deepcopy(strategy))
    assert strategy == copy.deepcopy(strategy)


# --- tiered -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tiers_scale_the_limit_and_never_share_counters() -> None:
    strategy = TieredRateStrategy({"free": 1, "premium": 5, "enterprise": 10}, "free")
    store = InMemoryStore(clock=FakeClock())
    rate = Rate(2, hours=1)
    admitted = {}
    for tier in ("free", "premium", "enterprise"):
        results = [
            (await strategy.hit("user", rate, store, context={"tier": tier})).allowed
            for _ in range(25)
        ]
        admitted[tier] = results.count(True)
    assert admitted == {"free": 2, "premium": 10, "enterprise": 20}
    assert sorted(strategy.keys("user", {"tier": "premium"})) == ["user:tier:premium"]


@pytest.mark.asyncio
async def test_the_tier_comes_from_the_context_never_from_the_key() -> None:
    strategy = TieredRateStrategy({"free": 1, "premium": 5}, "free")
    store = InMemoryStore(clock=FakeClock())
    decision = await strategy.hit("tier:premium:user:1", "1/h", store)
    assert decision.metadata["tier_multiplier"] == 1
    # Unknown tiers count as the default tier, under its key: no fresh counters to mint.
    assert not (await strategy.hit("tier:premium:user:1", "1/h", store, 1, {"tier": "x"})).allowed
    seen = await strategy.stat("tier:premium:user:1", "1/h", store, {"tier": "premium"})
    assert seen.metadata["tier"] == "premium" and seen.metadata["effective_limit"] == 5


@pytest.mark.asyncio
async def test_a_tier_resolver_decides_the_tier() -> None:
    def resolver(context: Context) -> str:
        return "gold" if context and context.get("user", "").startswith("vip") else "basic"

    strategy = TieredRateStrategy({"basic": 1, "gold": 3}, "basic", tier_resolver=resolver)
    store = InMemoryStore(clock=FakeClock())
    seen = await strategy.stat("k", "2/m", store, {"user": "vip-7", "tier": "basic"})
    assert seen.metadata["tier"] == "gold"
    assert seen.metadata["effective_limit"] == 6
    assert (await strategy.stat("k", "2/m", store)).metadata["tier"] == "basic"


def test_tier_multipliers_are_immutable_and_limits_decimal() -> None:
    source = {"free": 1.0, "pro": 0.29}
    strategy = TieredRateStrategy(source, "free")
    source["pro"] = 100.0
    assert strategy.tier_multipliers == {"free": 1.0, "pro": 0.29}
    assert isinstance(strategy.tier_multipliers, TierMultipliers)
    assert not hasattr(strategy.tier_multipliers, "__setitem__")
    assert scaled_limit(100, 0.29) == 29.0  # not 28.999999999999996
    assert strategy.arguments(Rate(100, hours=1), 1, {"tier": "pro"})[0] == 29.0


@pytest.mark.parametrize(
    ("multipliers", "default"),
    [({}, "free"), ({"free": 1}, "pro"), ({"free": 0}, "free"), ({"free": math.inf}, "free"),
     ({"a b": 1}, "a b"), ({"{x}": 1}, "{x}"), ({"free": True}, "free")],
)  # fmt: skip
def test_tiered_configuration_is_checked(multipliers: dict[str, Any], default: str) -> None:
    with pytest.raises(ConfigurationError):
        TieredRateStrategy(multipliers, default)


# --- adaptive -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sustained_load_shrinks_the_limit_and_quiet_windows_restore_it() -> None:
    strategy = AdaptiveThrottleStrategy(0.8, 0.5, 0.25, 0.25)
    clock = FakeClock(T0 - T0 % 60_000)
    store = InMemoryStore(clock=clock)
    limits = []
    for busy in (True, True, True, False, False, False, False):
        seen = await strategy.stat("k", "8/m", store)
        limits.append(seen.metadata["effective_limit"])
        if busy:
            while (await strategy.hit("k", "8/m", store)).allowed:
                pass
        clock.now += 60_000
    assert limits == [8, 4, 2, 2, 4, 6, 8]


@pytest.mark.asyncio
async def test_an_idle_key_recovers_as_if_it_had_expired() -> None:
    strategy = AdaptiveThrottleStrategy(0.5, 0.5, 0.1, 0.3)
    clock = FakeClock(T0 - T0 % 60_000)
    store = InMemoryStore(clock=clock)
    for _ in range(10):
        await strategy.hit("k", "10/m", store)
    clock.now += 60_000
    assert (await strategy.stat("k", "10/m", store)).metadata["effective_limit"] == 5
    clock.now += 5 * 60_000
    assert (await strategy.stat("k", "10/m", store)).metadata["effective_limit"] == 10
    assert len(store) == 1  # still held until the factor is certainly 1 again
    clock.now += 10 * 60_000
    assert len(store) == 0 or await store.get("k") is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("limit", "cost", "recovery", "factor"),
    [(1, 0.5, 0.15, 0.05), (3, 1.5, 0.15, 0.05), (1, 0.5, 0.05, 0.35), (3, 1.5, 0.05, 0.35)],
)
async def test_adaptive_wait_is_exact_where_the_division_rounds(
    limit: int, cost: float, recovery: float, factor: float
) -> None:
    """States where solving for the first window that fits rounds to one window too few
    (the first two) or too many (the last two); the script corrects either way."""
    strategy = AdaptiveThrottleStrategy(0.5, 0.5, recovery, min_limit_ratio=factor)
    clock = FakeClock(T0 - T0 % 60_000)
    store = InMemoryStore(clock=clock)
    # A full, hot window at the floor: the next window's factor is the floor again.
    state = b"%.17g:%.17g:%.17g" % (clock.now // 60_000, limit * factor, factor)
    for key in ("early", "on_time"):
        await store.set(key, state)
    wait = await strategy("early", Rate(limit, minutes=1), store, cost)
    assert wait == await strategy("on_time", Rate(limit, minutes=1), store, cost)
    assert wait % 60_000 == 0
    clock.now += wait - 1
    assert not (await strategy.hit("early", Rate(limit, minutes=1), store, cost)).allowed
    clock.now += 1
    assert (await strategy.hit("on_time", Rate(limit, minutes=1), store, cost)).allowed


def test_adaptive_configuration_is_checked() -> None:
    for kwargs in ({"load_threshold": 0}, {"reduction_factor": 1.5}, {"recovery_rate": -1},
                   {"min_limit_ratio": 0}):  # fmt: skip
        with pytest.raises(ConfigurationError):
            AdaptiveThrottleStrategy(**kwargs)


# --- priority -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_higher_priorities_keep_capacity_lower_ones_cannot_use() -> None:
    strategy = PriorityQueueStrategy(priority_levels=3, reserved_fraction=0.25)
    store = InMemoryStore(clock=FakeClock())
    rate = Rate(8, minutes=1)
    low = [
        (await strategy.hit("k", rate, store, context={"priority": 2})).allowed for _ in range(8)
    ]
    assert low.count(True) == 4  # 8 - 2 × 0.25 × 8
    middle = [
        (await strategy.hit("k", rate, store, context={"priority": 1})).allowed for _ in range(8)
    ]
    assert middle.count(True) == 2
    top = [
        (await strategy.hit("k", rate, store, context={"priority": 0})).allowed for _ in range(8)
    ]
    assert top.count(True) == 2
    # The lowest priority waits for its reserve to refill as well as its cost.
    assert await strategy("k", rate, store) == pytest.approx(5 * 7_500)


@pytest.mark.asyncio
async def test_priority_comes_from_the_context_and_defaults_to_the_lowest() -> None:
    strategy = PriorityQueueStrategy(priority_levels=2, reserved_fraction=0.5)
    store = InMemoryStore(clock=FakeClock())
    assert (await strategy.stat("k", "4/m", store)).metadata["priority"] == 1
    assert (await strategy.stat("k", "4/m", store)).metadata["reserved_tokens"] == 2
    assert (await strategy.stat("k", "4/m", store, {"priority": 0})).metadata["priority"] == 0
    for bad in (-1, 2, "0", 0.0, True):
        with pytest.raises(ConfigurationError):
            await strategy.hit("k", "4/m", store, context={"priority": bad})
    with pytest.raises(ConfigurationError):
        PriorityQueueStrategy(priority_levels=3, reserved_fraction=0.5)


# --- quota with rollover ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_unused_quota_rolls_over_once_and_is_capped() -> None:
    strategy = QuotaWithRolloverStrategy(rollover_percentage=0.5, max_rollover=3)
    clock = FakeClock(T0 - T0 % 60_000)
    store = InMemoryStore(clock=clock)

    async def use(hits: int) -> float:
        for _ in range(hits):
            assert await strategy("k", "10/m", store) == 0
        seen = await strategy.stat("k", "10/m", store)
        clock.now += 60_000
        return seen.metadata["rollover_amount"]

    # A new key starts as if the previous period went unused: min(3, 0.5 × 10).
    assert await use(10) == 3
    # The rollover is spent first: 10 of 13 used leaves 3 of its own, half carries.
    assert await use(11) == 1.5
    assert await use(6) == 0.25  # 0.5 × (11.5 - 11)
    assert await use(0) == 2.125  # 0.5 × (10.25 - 6)
    # An idle period's own 10 are unused (what rolled into it never carries twice).
    assert await use(1) == 3
    assert (await strategy.stat("k", "10/m", store)).metadata["rollover_amount"] == 3


@pytest.mark.asyncio
async def test_a_rejected_hit_waits_for_a_period_that_can_hold_it() -> None:
    strategy = QuotaWithRolloverStrategy(rollover_percentage=1.0)
    clock = FakeClock(T0 - T0 % 60_000)
    store = InMemoryStore(clock=clock)
    assert await strategy("k", "4/m", store, 8) == 0  # 4 + a full rollover of 4
    clock.now += 60_000
    assert await strategy("k", "4/m", store, 3) == 0  # nothing rolled over: 4 this period
    # The next period gets 4 + 1: a cost of 6 waits for the period after it (4 + 4).
    assert await strategy("k", "4/m", store, 6) == 120_000
    assert await strategy("k", "4/m", store, 1) == 0


# --- time of day --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_hour_comes_from_the_store_clock_with_the_offset() -> None:
    strategy = TimeOfDayStrategy([(22, 6, 3.0), (9, 17, 0.5)], timezone_offset=5.5)
    midnight = T0 - T0 % DAY
    clock = FakeClock(midnight + 17 * HOUR)  # 22:30 local
    store = InMemoryStore(clock=clock)
    seen = await strategy.stat("k", "4/m", store)
    assert seen.metadata["hour_of_day"] == 22
    assert seen.metadata["time_multiplier"] == 3 and seen.metadata["effective_limit"] == 12
    clock.now = midnight + 4 * HOUR  # 09:30 local
    seen = await strategy.stat("k", "4/m", store)
    assert (seen.metadata["hour_of_day"], seen.metadata["effective_limit"]) == (9, 2)
    clock.now = midnight + 12 * HOUR  # 17:30 local: in no window
    assert (await strategy.stat("k", "4/m", store)).metadata["time_multiplier"] == 1


@pytest.mark.asyncio
async def test_the_wait_finds_the_hour_whose_limit_fits() -> None:
    # A day-long window: 4 used by 23:00, then only hours from 02:00 allow 8.
    strategy = TimeOfDayStrategy([(0, 2, 1.0), (2, 4, 2.0), (4, 24, 1.0)])
    midnight = T0 - T0 % DAY
    clock = FakeClock(midnight + 1 * HOUR)
    store = InMemoryStore(clock=clock)
    for _ in range(4):
        assert await strategy("k", "4/d", store) == 0
    decision = await strategy.hit("k", "4/d", store)
    assert decision.wait_ms == HOUR  # 02:00, when the limit doubles
    # The script alone answers the next moment its decision may change: a lower bound.
    raw = await store.run(time_of_day, ["k"], strategy.arguments(Rate(4, days=1), 1, None))
    assert raw.wait_ms == HOUR
    clock.now = midnight + 4 * HOUR + 5
    decision = await strategy.hit("k", "4/d", store, 2)
    assert decision.wait_ms == DAY - 4 * HOUR - 5  # back to 4/day: wait for the next day
    raw = await store.run(time_of_day, ["k"], strategy.arguments(Rate(4, days=1), 2, None))
    assert raw.wait_ms == HOUR - 5


def test_time_windows_are_checked_and_may_wrap() -> None:
    assert TimeOfDayStrategy([(23, 1, 2.0)]).hourly_multipliers[23] == 2.0
    assert TimeOfDayStrategy([(23, 1, 2.0)]).hourly_multipliers[0] == 2.0
    assert TimeOfDayStrategy([(0, 24, 2.0), (0, 1, 5.0)]).hourly_multipliers[0] == 2.0
    for windows in ([(0, 0, 1.0)], [(3, 25, 1.0)], [(1.5, 3, 1.0)], [(0, 3, 0)], [(0, 3)]):
        with pytest.raises(ConfigurationError):
            TimeOfDayStrategy(windows)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        TimeOfDayStrategy(timezone_offset=15)


# --- cost-based token bucket --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_expensive_hits_slow_the_refill_until_the_bucket_is_full() -> None:
    strategy = CostBasedTokenBucketStrategy(burst_size=16, average_window=4, min_refill_rate=0.25)
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    rate = Rate(16, milliseconds=65_536)  # 1/4096 of a token per ms
    for cost, average in ((5, 2.0), (5, 2.75), (1, 2.3125)):
        decision = await strategy.hit("k", rate, store, cost)
        assert decision.allowed and decision.metadata["average_cost"] == average
    assert decision.metadata["effective_refill_rate_per_ms"] == pytest.approx(1 / 4096 / 2.3125)
    assert decision.metadata["tokens"] == 5
    # The refill is at the slowed rate...
    assert await strategy("k", rate, store, 6) == pytest.approx(4096 * 2.3125)
    # ...and a bucket that has refilled completely forgets the average.
    clock.now += 11 * 4096 * 2.3125 + 1
    seen = await strategy.stat("k", rate, store)
    # (stat: the bucket as it stands; the average as a hit of cost 1 would leave it)
    assert seen.metadata["average_cost"] == 1 and seen.metadata["tokens"] == 16


# --- concurrency ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_release_gives_back_exactly_its_cost_from_the_oldest_leases() -> None:
    strategy = ConcurrencyLimitStrategy(max_in_flight=5, lease_ms=30_000)
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    for cost in (2, 2):  # the same millisecond: two leases, 2**-10 ms apart
        assert await strategy("k", "1/s", store, cost) == 0
    clock.now += 10
    assert await strategy("k", "1/s", store, 1) == 0
    assert not (await strategy.hit("k", "1/s", store)).allowed
    released = await strategy.release("k", "1/s", store, 3)
    assert released.metadata["released"] == 3 and released.remaining == 3
    raw = await store.get("k")
    assert raw is not None
    entries, total = codec_for(ConcurrencyLimitStrategy.script.keys[0]).decode("k", raw)
    assert (entries, total) == ([(T0 + 30_000 + 2**-10, 1.0), (T0 + 30_010, 1.0)], 2.0)
    assert await strategy("k", "1/s", store, 3) == 0
    released = await strategy.release("k", "1/s", store, 100)
    assert released.metadata["released"] == 5 and released.remaining == 5
    # The newest lease is kept, emptied, for its id (until it would have expired).
    raw = await store.get("k")
    assert raw is not None
    entries, total = codec_for(ConcurrencyLimitStrategy.script.keys[0]).decode("k", raw)
    assert (entries, total) == ([(T0 + 30_010 + 2**-10, 0.0)], 0.0)
    assert (await strategy.stat("k", "1/s", store)).metadata["oldest_lease_expiry_ms"] == T0 + 10
    clock.now += 30_001
    assert await strategy("k", "1/s", store, 5) == 0


@pytest.mark.asyncio
async def test_a_release_by_lease_id_frees_that_lease_alone() -> None:
    """The audit's case: a holder whose lease expired, or who releases twice, must not
    free the slot of a holder still at work."""
    strategy = ConcurrencyLimitStrategy(max_in_flight=1, lease_ms=10_000)
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    a = await strategy.hit("k", "1/10s", store)
    assert a.allowed and a.metadata["lease_id"] == T0 + 10_000
    clock.now = T0 + 10_001  # A is slow: its lease has ended on its own
    b = await strategy.hit("k", "1/10s", store)
    assert b.allowed
    clock.now = T0 + 10_500  # A finishes, and releases in its `finally`
    late = await strategy.release("k", "1/10s", store, lease=a.metadata["lease_id"])
    assert late.metadata["released"] == 0 and late.metadata["in_flight"] == 1
    assert not (await strategy.hit("k", "1/10s", store)).allowed  # B still holds the slot
    # A double release, even within the millisecond a new holder took the slot in.
    done = await strategy.release("k", "1/10s", store, lease=b.metadata["lease_id"])
    assert done.metadata["released"] == 1 and done.remaining == 1
    c = await strategy.hit("k", "1/10s", store)
    assert c.allowed and c.metadata["lease_id"] != b.metadata["lease_id"]
    again = await strategy.release("k", "1/10s", store, lease=b.metadata["lease_id"])
    assert again.metadata["released"] == 0
    assert not (await strategy.hit("k", "1/10s", store)).allowed  # C still holds it
    # Part of a lease, then the rest; an id never taken gives back nothing.
    assert (await strategy.release("k", "1/10s", store, lease=T0 + 1)).metadata["released"] == 0
    part = await strategy.release("k", "1/10s", store, 0.25, lease=c.metadata["lease_id"])
    assert part.metadata["released"] == 0.25 and part.metadata["in_flight"] == 0.75
    rest = await strategy.release("k", "1/10s", store, lease=c.metadata["lease_id"])
    assert rest.metadata["released"] == 0.75 and rest.remaining == 1
    for bad in (0, -1.0, math.nan, math.inf, "1"):
        with pytest.raises(ConfigurationError):
            await strategy.release("k", "1/10s", store, lease=bad)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_lease_ends_on_its_own() -> None:
    strategy = ConcurrencyLimitStrategy(max_in_flight=1, lease_ms=30_000)
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    assert await strategy("k", "1/s", store) == 0
    assert await strategy("k", "1/s", store) == 30_000
    clock.now += 30_000
    assert await strategy("k", "1/s", store) == 0
    assert (await strategy.release("k", "1/s", store, 0)).remaining == 0  # cost 0 only looks
    assert (await strategy.release("k", Rate(0), store)).allowed
    with pytest.raises(ConfigurationError):
        await strategy.release("k", "1/s", store, -1)


def test_the_defaults_come_from_the_rate() -> None:
    assert ConcurrencyLimitStrategy().arguments(Rate(7, seconds=9), 1, None) == (7, 9_000, 1)
    with pytest.raises(ConfigurationError):
        ConcurrencyLimitStrategy(max_in_flight=0)


# --- the conformance kit: every target, bit for bit -------------------------------------------


# The kit's own cases for these scripts (acquire and release share their keys).
CASES: tuple[ScriptCase, ...] = MORE_CASES


def test_every_new_script_conforms_on_every_target() -> None:
    """The Python target (bytes and objects), the Lua target on lupa and the in-memory
    store decide and store alike, bit for bit; acquire and release share their keys."""
    check_stores({"memory": store_factory(InMemoryStore)}, CASES, max_examples=15, steps=40)
