"""``all_of`` / ``hit_all``: one key per part."""

from __future__ import annotations

import pytest

from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import (
    FixedWindowStrategy,
    TieredRateStrategy,
    TokenBucketStrategy,
    all_of,
)
from ratescript.strategies.composition import Charge, hit_all

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
