"""The tutorial's strategy works, and the conformance kit certifies it on every store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import strategies as st

from ratescript.conformance import ScriptCase, check_stores, store_factory
from ratescript.stores.memcached import MemcachedStore
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
import cooldown

CASE = ScriptCase(
    cooldown.cooldown,
    {
        "limit": st.integers(1, 5).map(float),
        "period_ms": st.just(60_000.0),
        "cooldown_ms": st.floats(0, 30_000),
    },
    {"cost": st.sampled_from([0.0, 1.0, 2.0])},
)


class Clock:
    now = 1_700_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_the_cooldown_strategy_cools_down() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock)
    strategy = cooldown.CooldownStrategy(cooldown_ms=200)
    waits = []
    for offset in (0, 100, 200, 400, 700):
        clock.now = 1_700_000_000_000.0 + offset
        waits.append(await strategy("user", "3/s", store))
    assert waits == [0.0, 100.0, 0.0, 0.0, 300.0]  # cooldown, cooldown over, quota of 3 spent


@pytest.mark.redis
@pytest.mark.memcached
def test_the_kit_certifies_the_tutorial_strategy(redis_url: str, memcached_url: str) -> None:
    check_stores(
        {
            "memory": store_factory(InMemoryStore),
            "redis": store_factory(RedisStore, url_or_client_or_factory=redis_url),
            "memcached": store_factory(MemcachedStore, url=memcached_url),
        },
        [CASE],
        max_examples=20,
    )
