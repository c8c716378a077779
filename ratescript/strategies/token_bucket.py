"""Token buckets: refill ``limit / period`` tokens per ms up to a capacity; a hit takes its cost.

Both variants decide by *when* the bucket will hold enough, computed from the
stored state alone (``allow_at``), and admit once the clock reaches it. So
``wait_ms = allow_at - now`` is exact: a retry after exactly ``wait_ms`` on an
idle key is admitted, one a millisecond earlier is not. The key expires once the
bucket would be full again, and a missing key reads as a full bucket, so expiry
never changes a decision.
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
    "Bucket",
    "TokenBucketStatMetadata",
    "TokenBucketStrategy",
    "TokenBucketWithDebtStatMetadata",
    "TokenBucketWithDebtStrategy",
    "token_bucket",
    "token_bucket_with_debt",
]


class Bucket(Record):
    tokens: float
    stamp: float


class TokenBucketStatMetadata(TypedDict):
    tokens: float
    capacity: float
    refill_rate_per_ms: float
    exceeds_capacity: float


class TokenBucketWithDebtStatMetadata(TypedDict):
    tokens: float
    current_debt: float
    max_debt: float
    exceeds_capacity: float


@script
def token_bucket(bucket: Key[Bucket], capacity: float, rate: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    b = bucket.get(default=Bucket(capacity, now))
    tokens = min(capacity, b.tokens + max(0, now - b.stamp) * rate)
    full_in = (capacity - tokens) / rate
    if cost > capacity:
        return deny(
            wait_ms=capacity / rate, remaining=tokens, reset_ms=full_in, tokens=tokens,
            capacity=capacity, refill_rate_per_ms=rate, exceeds_capacity=1,
        )  # fmt: skip
    allow_at = b.stamp + (cost - b.tokens) / rate
    if tokens >= cost or now >= allow_at:
        left = max(0, tokens - cost)
        bucket.set(Bucket(left, max(now, b.stamp)), ttl_ms=(capacity - left) / rate + 1)
        return allow(
            remaining=left, reset_ms=(capacity - left) / rate, tokens=left, capacity=capacity,
            refill_rate_per_ms=rate, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=tokens, reset_ms=full_in, tokens=tokens,
        capacity=capacity, refill_rate_per_ms=rate, exceeds_capacity=0,
    )  # fmt: skip


@script
def token_bucket_with_debt(  # type: ignore[no-untyped-def]
    bucket: Key[Bucket], capacity: float, rate: float, max_debt: float, cost: float
):
    now = now_ms()
    b = bucket.get(default=Bucket(capacity, now))
    tokens = min(capacity, b.tokens + max(0, now - b.stamp) * rate)
    full_in = (capacity - tokens) / rate
    if cost > capacity + max_debt:
        return deny(
            wait_ms=(capacity + max_debt) / rate, remaining=max(0, tokens + max_debt),
            reset_ms=full_in,
            tokens=tokens, current_debt=max(0, -tokens), max_debt=max_debt, exceeds_capacity=1,
        )  # fmt: skip
    allow_at = b.stamp + (cost - max_debt - b.tokens) / rate
    if tokens - cost >= -max_debt or now >= allow_at:
        left = max(-max_debt, tokens - cost)
        bucket.set(Bucket(left, max(now, b.stamp)), ttl_ms=(capacity - left) / rate + 1)
        return allow(
            remaining=max(0, left + max_debt), reset_ms=(capacity - left) / rate, tokens=left,
            current_debt=max(0, -left), max_debt=max_debt, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=max(0, tokens + max_debt), reset_ms=full_in,
        tokens=tokens, current_debt=max(0, -tokens), max_debt=max_debt, exceeds_capacity=0,
    )  # fmt: skip


def _capacity(burst_size: float | None, rate: Rate) -> float:
    return float(rate.limit if burst_size is None else burst_size)


def _refill_ms(tokens: float, rate: Rate) -> float:
    """How long ``tokens`` take to refill: the longest a bucket's key must be kept."""
    return tokens * rate.expire / rate.limit + 1


@dataclass(frozen=True)
class TokenBucketStrategy(Strategy[TokenBucketStatMetadata]):
    """Smooth refill with bursts up to ``burst_size`` (default: the limit).

    Accuracy: exact; long-run rate ``rate.limit`` per ``rate.expire``. Memory: one
    record per key. Bursts: up to the capacity at once.
    """

    burst_size: float | None = None
    script = token_bucket
    reuses_arguments = True

    def __post_init__(self) -> None:
        if self.burst_size is not None:
            check_number("TokenBucketStrategy", "burst_size", self.burst_size)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        capacity = _capacity(self.burst_size, rate)
        check_horizon("TokenBucketStrategy", rate, _refill_ms(capacity, rate), "the capacity")
        return (capacity, rate.limit / rate.expire, cost)


@dataclass(frozen=True)
class TokenBucketWithDebtStrategy(Strategy[TokenBucketWithDebtStatMetadata]):
    """A token bucket that may lend up to ``max_debt`` tokens, repaid by later refill.

    Lets a client burst past the capacity once, then throttles it until the debt is
    paid back. ``max_debt`` defaults to half the capacity.
    """

    burst_size: float | None = None
    max_debt: float | None = None
    script = token_bucket_with_debt
    reuses_arguments = True

    def __post_init__(self) -> None:
        owner = "TokenBucketWithDebtStrategy"
        if self.burst_size is not None:
            check_number(owner, "burst_size", self.burst_size)
        if self.max_debt is not None:
            check_number(owner, "max_debt", self.max_debt, low_open=False)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        capacity = _capacity(self.burst_size, rate)
        debt = capacity / 2 if self.max_debt is None else float(self.max_debt)
        check_horizon(
            "TokenBucketWithDebtStrategy",
            rate,
            _refill_ms(capacity + debt, rate),
            "the capacity and max_debt",
        )
        return (capacity, rate.limit / rate.expire, debt, cost)
