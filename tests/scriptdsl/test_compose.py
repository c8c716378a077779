"""Composition: one script that admits only when every part admits, then charges all.

The reference is the parts run one by one: first each part's read-only twin (would
it admit?), then, only if all would, each part for real. The composed script must
decide the same, wait the longest of the refusing parts' waits, and leave the same
bytes — on the Python target and on the Lua target.
"""

from __future__ import annotations

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import LuaExecutor, PythonExecutor
from ratescript.rates import Rate
from ratescript.scriptdsl.compose import compose_all
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore
from ratescript.strategies import (
    FixedWindowStrategy,
    SlidingWindowLogStrategy,
    TokenBucketStrategy,
    all_of,
)

PARTS = (token_bucket, fixed_window, sliding_log)
KEYS = ["{u}:bucket", "{u}:window", "{u}:log"]


@settings(max_examples=120, deadline=None)
@given(
    limits=st.tuples(*(st.sampled_from((1.0, 2.0, 3.0, 5.0)) for _ in PARTS)),
    steps=st.lists(
        st.tuples(
            st.sampled_from((0.0, 1.0, 10.0, 250.0, 1000.0, 1 / 3)),
            st.sampled_from((0.5, 1.0, 2.0)),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_composition_equals_the_parts_checked_then_charged(
    limits: tuple[float, float, float], steps: list[tuple[float, float]]
) -> None:
    composed = compose_all(*PARTS)
    python, lua, separate = PythonExecutor(), LuaExecutor(), PythonExecutor()
    now = 1.7e12
    for advance, cost in steps:
        now += advance
        part_args = [(limit, 1000.0, cost) for limit in limits]
        args = [a for part in part_args for a in part]
        decision = python.run(composed, KEYS, args, now)
        assert lua.run(composed, KEYS, args, now) == decision
        looks = [
            separate.run(script.readonly, [key], part, now)
            for script, key, part in zip(PARTS, KEYS, part_args, strict=True)
        ]
        assert decision.allowed == all(look.allowed for look in looks)
        if decision.allowed:
            for script, key, part in zip(PARTS, KEYS, part_args, strict=True):
                assert separate.run(script, [key], part, now).allowed
        else:
            assert decision.wait_ms == max(look.wait_ms for look in looks if not look.allowed)
        assert decision.remaining == min(look.remaining for look in looks)
        for index, look in enumerate(looks):
            assert decision.metadata[f"{index}__allowed"] == float(look.allowed)
            assert decision.metadata[f"{index}__remaining"] == look.remaining
            if not look.allowed:
                assert decision.metadata[f"{index}__wait"] == look.wait_ms
        assert python.state(now, KEYS) == separate.state(now, KEYS) == lua.state(now, KEYS)


def test_composed_metadata_names_each_part() -> None:
    composed = compose_all(token_bucket, fixed_window)
    assert composed.metadata_names == (
        "0__allowed",
        "0__wait",
        "0__remaining",
        "0__reset",
        "0_exceeds_capacity",
        "1__allowed",
        "1__wait",
        "1__remaining",
        "1__reset",
    )
    assert composed.keys == token_bucket.keys + fixed_window.keys
    assert composed.readonly.lua_source.count("'SET'") == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1.7e12

    def __call__(self) -> float:
        return self.now


LIMITS = all_of(
    (TokenBucketStrategy(), "5/s"),
    (FixedWindowStrategy(), "3/min"),
    (SlidingWindowLogStrategy(), Rate(0)),
)


@pytest.mark.asyncio
async def test_when_one_limit_rejects_none_is_charged() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock)
    keys = ["{ip}:burst", "{ip}:minute", "{ip}:unlimited"]
    for _ in range(3):
        assert (await LIMITS.hit(keys, store)).allowed
    before = await store.multi_get(keys)
    refused = await LIMITS.hit(keys, store)
    assert not refused.allowed
    window_end = (clock.now // 60_000 + 1) * 60_000
    assert refused.wait_ms == window_end - clock.now  # the minute window's wait, not the bucket's
    assert await store.multi_get(keys) == before  # the token bucket was not charged
    assert await store.get("{ip}:unlimited") is None  # an unlimited part never touches the store


@pytest.mark.redis
@pytest.mark.asyncio
async def test_several_limits_cost_one_round_trip_on_redis(redis_url: str) -> None:
    clock = Clock()
    store = RedisStore(redis_url, namespace="compose", clock=clock)
    keys = ["{ip}:burst", "{ip}:minute", "{ip}:unlimited"]
    client = redis.Redis.from_url(redis_url)
    try:
        await LIMITS.hit(keys, store)  # loads the script
        before = client.info("commandstats")
        for _ in range(10):
            await LIMITS.hit(keys, store)
        after = client.info("commandstats")
        calls = {
            name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"]
            for name in after
            if name.startswith("cmdstat_eval")
            and after[name]["calls"] != before.get(name, {"calls": 0})["calls"]
        }
        assert calls == {"cmdstat_evalsha": 10}
    finally:
        await store.close()
        client.close()
