"""``all_of`` / ``hit_all``: one key per part, and an exact wait with a time-of-day part.

The asgi layer composes throttles with ``hit_all`` and reads each part with
``part_decision``, taking the longest wait of the parts that rejected; ``AllOf.hit``
reports the decision's own wait. Both must be the exact wait of the composition: a
retry at ``now + wait`` is admitted by every part, one a millisecond earlier is not.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import (
    FixedWindowStrategy,
    GCRAStrategy,
    SlidingWindowLogStrategy,
    Strategy,
    TieredRateStrategy,
    TimeOfDayStrategy,
    TokenBucketStrategy,
    all_of,
)
from ratescript.strategies.composition import Charge, hit_all, part_decision

HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_700_000_000_000.0
MIDNIGHT = T0 - T0 % DAY


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- one key per part -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_two_parts_on_one_key_are_a_configuration_error() -> None:
    """The audit's case: a fixed window and a token bucket on one key each read the key
    as it was and the bucket's write won: 30 of 30 hits through a limit of 10 an hour."""
    store = InMemoryStore(clock=FakeClock(T0))
    composed = all_of((FixedWindowStrategy(), "10/h"), (TokenBucketStrategy(), "1000/h"))
    with pytest.raises(ConfigurationError, match="a key of its own"):
        await composed.hit(["user:1", "user:1"], store)
    with pytest.raises(ConfigurationError, match="a key of its own"):
        await composed.hit(["user:1", "user:1"], store, [1, 0])  # one part only looks
    with pytest.raises(ConfigurationError, match="a key of its own"):
        await hit_all(
            store,
            [
                Charge(FixedWindowStrategy(), Rate.parse("10/h"), "user:1", 1.0),
                Charge(FixedWindowStrategy(), Rate.parse("100/d"), "user:1", 1.0),
            ],
        )
    assert len(store) == 0
    admitted = [(await composed.hit(["a", "b"], store)).allowed for _ in range(30)]
    assert admitted.count(True) == 10


@pytest.mark.asyncio
async def test_parts_whose_store_keys_differ_share_a_throttle_key() -> None:
    """Tiers count under keys of their own, so two tiered parts may take one throttle key."""
    tiered = TieredRateStrategy({"free": 1, "pro": 2}, "free")
    store = InMemoryStore(clock=FakeClock(T0))
    decision = await hit_all(
        store,
        [
            Charge(tiered, Rate.parse("2/h"), "u", 1.0, {"tier": "free"}),
            Charge(tiered, Rate.parse("2/h"), "u", 1.0, {"tier": "pro"}),
        ],
    )
    assert decision.allowed


# --- the exact wait with a time-of-day part -------------------------------------------------


def _composed_wait(decision: Decision, parts: int) -> float:
    """The wait the asgi layer derives: the longest of the rejecting parts' own."""
    waits = [part_decision(decision, i) for i in range(parts)]
    return max(d.wait_ms for d in waits if not d.allowed)


@pytest.mark.asyncio
async def test_a_time_of_day_part_that_rejects_waits_for_its_hour() -> None:
    """The audit's case: 3 a day from 08:00 to 17:00 (1×), the window full at 09:00. The
    script only knows the next hour (a lower bound); the hit fits at 17:00 (1.5×)."""
    clock = FakeClock(MIDNIGHT + 9 * HOUR)
    store = InMemoryStore(clock=clock)
    composed = all_of((TimeOfDayStrategy(), "3/d"), (TokenBucketStrategy(), "1000/s"))
    for _ in range(3):
        assert (await composed.hit(["a", "b"], store)).allowed
    decision = await composed.hit(["a", "b"], store)
    assert decision.wait_ms == 8 * HOUR == _composed_wait(decision, 2)
    assert decision.metadata["1__allowed"] == 1.0  # the bucket admitted: its verdict kept
    clock.now += decision.wait_ms - 1
    assert not (await composed.hit(["a", "b"], store)).allowed
    clock.now += 1
    assert (await composed.hit(["a", "b"], store)).allowed


@pytest.mark.asyncio
async def test_a_time_of_day_part_that_admits_now_may_not_admit_later() -> None:
    """The fixed window rejects until 02:00, when the time-of-day limit (2× until then) has
    dropped back to 1×, which the day's count already fills: the first hour that fits is
    17:00 (1.5×). The time-of-day part admitted now, so only the composition can tell."""
    windows = [(0, 2, 2.0), (2, 17, 1.0), (17, 24, 1.5)]
    clock = FakeClock(MIDNIGHT + 1 * HOUR)
    store = InMemoryStore(clock=clock)
    composed = all_of((TimeOfDayStrategy(windows), "2/d"), (FixedWindowStrategy(), "2/2h"))
    for _ in range(2):
        assert (await composed.hit(["day", "window"], store)).allowed
    decision = await composed.hit(["day", "window"], store)
    assert decision.metadata["0__allowed"] == 1.0  # 3 of 4 at 01:00
    assert decision.metadata["1__wait"] == decision.wait_ms == 16 * HOUR
    assert _composed_wait(decision, 2) == 16 * HOUR
    clock.now += decision.wait_ms - 1
    assert not (await composed.hit(["day", "window"], store)).allowed
    clock.now += 1
    assert (await composed.hit(["day", "window"], store)).allowed


@pytest.mark.asyncio
async def test_a_composition_that_can_never_admit_keeps_the_scripts_wait() -> None:
    store = InMemoryStore(clock=FakeClock(MIDNIGHT + 9 * HOUR))
    composed = all_of((TimeOfDayStrategy(), "3/d"), (FixedWindowStrategy(), "2/h"))
    decision = await composed.hit(["a", "b"], store, 3)  # 3 > 2: the window never admits it
    assert not decision.allowed and decision.metadata["1_exceeds_capacity"] == 1
    assert 0 < decision.wait_ms < math.inf


@pytest.mark.asyncio
async def test_two_time_of_day_parts_wait_for_an_hour_both_allow() -> None:
    """Each part's first fit moves the other's on, until an hour suits both: the first
    allows 2 from 00:00 to 06:00 and 20:00 on, the second from 05:00 to 22:00."""
    clock = FakeClock(MIDNIGHT + 7 * HOUR)
    store = InMemoryStore(clock=clock)
    night = TimeOfDayStrategy([(20, 6, 2.0)], timezone_offset=0)
    day = TimeOfDayStrategy([(5, 22, 2.0)])
    composed = all_of((night, "1/d"), (day, "1/d"))
    decision = await composed.hit(["night", "day"], store, 2)  # 07:00: only `day` allows
    assert decision.wait_ms == 13 * HOUR  # 20:00
    assert decision.metadata["0__wait"] == 13 * HOUR and decision.metadata["1__allowed"] == 1
    clock.now += decision.wait_ms - 1
    assert not (await composed.hit(["night", "day"], store, 2)).allowed
    clock.now += 1
    assert (await composed.hit(["night", "day"], store, 2)).allowed


@pytest.mark.asyncio
async def test_time_of_day_parts_that_never_agree_keep_the_scripts_wait() -> None:
    """Hours that never suit both parts: no moment admits the hit, as with a cost no part
    can take; the wait stays the script's (finite, the next hour)."""
    clock = FakeClock(MIDNIGHT)
    store = InMemoryStore(clock=clock)
    composed = all_of(
        (TimeOfDayStrategy([(0, 1, 2.0)]), "1/d"), (TimeOfDayStrategy([(0, 1, 0.5)]), "2/d")
    )
    decision = await composed.hit(["a", "b"], store, 2)
    assert not decision.allowed and decision.wait_ms == HOUR


def _part(kind: str, limit: int) -> tuple[Strategy[Any], Rate]:
    if kind == "fixed_window":
        return FixedWindowStrategy(), Rate(limit, minutes=90)
    if kind == "token_bucket":
        return TokenBucketStrategy(), Rate(limit, hours=5)
    if kind == "gcra":
        return GCRAStrategy(burst_tolerance_ms=HOUR), Rate(limit, hours=3)
    return SlidingWindowLogStrategy(), Rate(limit, hours=2)


WINDOWS = st.lists(
    st.tuples(
        st.integers(0, 23),
        st.integers(1, 24),
        st.sampled_from((0.5, 1.0, 1.5, 2.0, 3.0)),
    ).filter(lambda w: w[0] != w[1]),
    max_size=4,
)


@pytest.mark.asyncio
@settings(max_examples=150, deadline=None)
@given(
    windows=WINDOWS,
    day_limit=st.integers(1, 6),
    period=st.sampled_from((DAY, 6 * HOUR, 2 * DAY, 90 * 60_000)),
    others=st.lists(
        st.tuples(
            st.sampled_from(("fixed_window", "token_bucket", "gcra", "sliding_log")),
            st.integers(1, 5),
        ),
        max_size=2,
    ),
    start=st.integers(0, DAY),
    steps=st.lists(
        st.tuples(st.sampled_from((0, 0, 0, 1, 60_000, HOUR, 5 * HOUR)), st.sampled_from((1, 2))),
        min_size=1,
        max_size=30,
    ),
)
async def test_the_composed_wait_is_exact(
    windows: list[tuple[int, int, float]],
    day_limit: int,
    period: int,
    others: list[tuple[str, int]],
    start: int,
    steps: list[tuple[int, int]],
) -> None:
    """A time-of-day part and steady parts, from any state: a rejection's wait, as
    ``AllOf.hit`` and as the asgi layer reads it, is exact."""
    parts: list[tuple[Strategy[Any], Rate | str]] = [
        (TimeOfDayStrategy(windows), Rate(day_limit, milliseconds=period))
    ]
    parts += [_part(kind, limit) for kind, limit in others]
    composed = all_of(*parts)
    keys = [f"p{i}" for i in range(len(parts))]
    twins = [f"q{i}" for i in range(len(parts))]
    clock = FakeClock(MIDNIGHT + start)
    store = InMemoryStore(clock=clock)
    for advance, cost in steps:
        clock.now += advance
        decision = await composed.hit(keys, store, cost)
        assert await composed.hit(twins, store, cost) == decision
        if decision.allowed or any(
            decision.metadata.get(f"{i}_exceeds_capacity") == 1.0 for i in range(len(parts))
        ):
            continue
        note(f"rejected at {clock.now - MIDNIGHT} cost {cost}: {decision}")
        assert _composed_wait(decision, len(parts)) == decision.wait_ms
        now, wait = clock.now, decision.wait_ms
        clock.now = now + wait - 1 if wait > 1 else math.nextafter(now + wait, 0)
        assert not (await composed.hit(keys, store, cost)).allowed
        clock.now = now + wait
        assert (await composed.hit(twins, store, cost)).allowed
        return
