"""Cost-based token bucket: the refill slows while a key's recent hits are expensive.

A token bucket of ``burst_size`` tokens (default: the limit) whose refill rate is

    refill = (rate.limit / rate.expire) × max(min_refill_rate, min(1, 1 / average_cost))

tokens per ms, where ``average_cost`` is an exponentially weighted moving average
of the costs of the key's admitted hits: each admitted hit of cost ``c`` moves it
by ``(c - average_cost) / average_window`` (so it spans roughly the last
``average_window`` hits). A key whose hits average a cost of 1 or less refills
like a plain ``TokenBucketStrategy``; one averaging 4 refills at a quarter of
that (never below ``min_refill_rate`` of it), so expensive traffic pays twice: in
tokens, and in a slower refill while it lasts.

The average starts at 1 (a new key is presumed to make unit-cost hits), and a hit
that finds the bucket full starts it again at 1: a key that has been quiet long
enough to refill completely has its history forgotten. That is exactly what a
missing key reads as, so the key can expire once the bucket would be full without
changing any decision. The record holds the tokens, their time and the average;
the refill rate only changes when a hit is admitted, so a rejected hit's wait —
when the bucket will hold its cost at the current refill rate — is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ratescript.rates import Rate
from ratescript.scriptdsl import Key, Record, allow, deny, now_ms, script
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon, check_number

__all__ = [
    "CostBasedTokenBucketStatMetadata",
    "CostBasedTokenBucketStrategy",
    "CostBucket",
    "cost_based_token_bucket",
]


class CostBucket(Record):
    tokens: float
    stamp: float
    average: float  # the moving average of admitted costs


class CostBasedTokenBucketStatMetadata(TypedDict):
    tokens: float
    capacity: float
    average_cost: float
    base_refill_rate_per_ms: float
    effective_refill_rate_per_ms: float
    exceeds_capacity: float


@script
def cost_based_token_bucket(  # type: ignore[no-untyped-def]
    bucket: Key[CostBucket], capacity: float, base_rate: float, min_factor: float,
    window: float, cost: float,
):  # fmt: skip
    now = now_ms()
    b = bucket.get(default=CostBucket(capacity, now, 1))
    rate = base_rate
    if b.average > 1:
        rate = base_rate * max(min_factor, 1 / b.average)
    tokens = min(capacity, b.tokens + max(0, now - b.stamp) * rate)
    # A full bucket forgets the average: a missing key is a full bucket with average 1.
    # The time it fills is the very expression of the key's TTL, so an expired key and
    # one a server has not yet reclaimed agree.
    average = b.average
    if tokens >= capacity or now >= b.stamp + (capacity - b.tokens) / rate:
        tokens = capacity
        average = 1
    current_rate = base_rate
    if average > 1:
        current_rate = base_rate * max(min_factor, 1 / average)
    if cost > capacity:
        return deny(
            wait_ms=capacity / base_rate, remaining=tokens,
            reset_ms=(capacity - tokens) / current_rate, tokens=tokens, capacity=capacity,
            average_cost=average, base_refill_rate_per_ms=base_rate,
            effective_refill_rate_per_ms=current_rate, exceeds_capacity=1,
        )  # fmt: skip
    allow_at = b.stamp + (cost - b.tokens) / rate
    if tokens >= cost or now >= allow_at:
        left = max(0, tokens - cost)
        new_average = average + (cost - average) / window
        new_rate = base_rate
        if new_average > 1:
            new_rate = base_rate * max(min_factor, 1 / new_average)
        bucket.set(
            CostBucket(left, max(now, b.stamp), new_average),
            ttl_ms=(capacity - left) / new_rate + 1,
        )
        return allow(
            remaining=left, reset_ms=(capacity - left) / new_rate, tokens=left,
            capacity=capacity, average_cost=new_average, base_refill_rate_per_ms=base_rate,
            effective_refill_rate_per_ms=new_rate, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=tokens, reset_ms=(capacity - tokens) / current_rate,
        tokens=tokens, capacity=capacity, average_cost=average,
        base_refill_rate_per_ms=base_rate, effective_refill_rate_per_ms=current_rate,
        exceeds_capacity=0,
    )  # fmt: skip


@dataclass(frozen=True)
class CostBasedTokenBucketStrategy(Strategy[CostBasedTokenBucketStatMetadata]):
    """A token bucket that refills more slowly while the key's hits cost more than 1.

    Args:
        burst_size: the bucket's capacity in tokens (default: the limit).
        average_window: how many recent admitted hits the moving average of costs
            spans (>= 1; 1 means "the last hit's cost").
        min_refill_rate: the refill never drops below this share of the base rate
            (in (0, 1]; 1 makes this a plain token bucket).

    With ``"100/minute"`` and the defaults, a client whose recent hits cost 1 gets
    100 tokens a minute; one whose hits average 10 gets 50 (the floor), i.e. 5 such
    hits a minute where a plain bucket would allow 10.

    Accuracy: exact (the refill rate is constant between admitted hits). Memory: one
    record per key. Bursts: up to ``burst_size`` tokens. Typical use: APIs with
    cheap and expensive operations, where clients leaning on the expensive ones
    should be slowed down more than their raw costs say.
    """

    burst_size: float | None = None
    average_window: float = 100
    min_refill_rate: float = 0.5
    script = cost_based_token_bucket
    reuses_arguments = True
    # The average (and so the refill) a hit would leave depends on that hit's cost.
    hit_metadata = frozenset({"average_cost", "effective_refill_rate_per_ms", "exceeds_capacity"})

    def __post_init__(self) -> None:
        owner = "CostBasedTokenBucketStrategy"
        if self.burst_size is not None:
            check_number(owner, "burst_size", self.burst_size)
        check_number(owner, "average_window", self.average_window, low=1.0, low_open=False)
        check_number(owner, "min_refill_rate", self.min_refill_rate, high=1.0)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        capacity = float(rate.limit if self.burst_size is None else self.burst_size)
        # The slowest refill is min_refill_rate of the base rate.
        refill_ms = capacity * rate.expire / rate.limit / self.min_refill_rate + 1
        check_horizon("CostBasedTokenBucketStrategy", rate, refill_ms, "the capacity")
        return (
            capacity,
            rate.limit / rate.expire,
            float(self.min_refill_rate),
            float(self.average_window),
            cost,
        )
