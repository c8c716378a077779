"""Priority admission: one shared token bucket whose last tokens only higher priorities get.

Priorities are ``0`` (the highest) to ``priority_levels - 1`` (the lowest). Every
priority draws from the same bucket — ``rate.limit`` tokens a period, up to
``burst_size`` — but a hit of priority ``p`` must leave ``p × reserved_fraction``
of the capacity in the bucket: that part is reserved for the priorities above it.
So when traffic is heavy the lowest priorities are throttled first, and the
highest can always use the whole bucket.

There is no queue, despite the name (kept from Traffik): a rejected hit is told
exactly how long until the bucket holds its cost plus its reserve, computed from
the stored bucket alone; and a higher-priority hit in the meantime may take those
tokens first, which is the point. A missing key reads as a full bucket, which is
what the key's expiry (once the bucket would be full) means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl import Key, allow, deny, now_ms, script
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon, check_number
from ratescript.strategies.token_bucket import Bucket

__all__ = ["PriorityQueueStatMetadata", "PriorityQueueStrategy", "priority_bucket"]


class PriorityQueueStatMetadata(TypedDict):
    priority: float
    tokens: float
    capacity: float
    #: Tokens this priority must leave in the bucket for the priorities above it.
    reserved_tokens: float
    exceeds_capacity: float


@script
def priority_bucket(  # type: ignore[no-untyped-def]
    bucket: Key[Bucket], capacity: float, rate: float, reserve: float, priority: float,
    cost: float,
):  # fmt: skip
    now = now_ms()
    b = bucket.get(default=Bucket(capacity, now))
    tokens = min(capacity, b.tokens + max(0, now - b.stamp) * rate)
    full_in = (capacity - tokens) / rate
    if cost > capacity - reserve:
        return deny(
            wait_ms=capacity / rate, remaining=max(0, tokens - reserve), reset_ms=full_in,
            priority=priority, tokens=tokens, capacity=capacity, reserved_tokens=reserve,
            exceeds_capacity=1,
        )  # fmt: skip
    allow_at = b.stamp + (cost + reserve - b.tokens) / rate
    if tokens - cost >= reserve or now >= allow_at:
        left = max(reserve, tokens - cost)
        bucket.set(Bucket(left, max(now, b.stamp)), ttl_ms=(capacity - left) / rate + 1)
        return allow(
            remaining=left - reserve, reset_ms=(capacity - left) / rate, priority=priority,
            tokens=left, capacity=capacity, reserved_tokens=reserve, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=max(0, tokens - reserve), reset_ms=full_in,
        priority=priority, tokens=tokens, capacity=capacity, reserved_tokens=reserve,
        exceeds_capacity=0,
    )  # fmt: skip


@dataclass(frozen=True)
class PriorityQueueStrategy(Strategy[PriorityQueueStatMetadata]):
    """A token bucket shared by all priorities, with capacity reserved for the higher ones.

    Args:
        priority_levels: how many priorities there are: ``0`` is the highest,
            ``priority_levels - 1`` the lowest.
        reserved_fraction: the share of the capacity each priority level reserves
            for the levels above it: priority ``p`` may only take the bucket down to
            ``p × reserved_fraction × capacity``. ``(priority_levels - 1) ×
            reserved_fraction`` must be below 1, so the lowest priority gets something.
        default_priority: the priority of a hit whose context has none; ``None``: the
            lowest (so unclassified traffic never eats into reserves).
        burst_size: the bucket's capacity (default: the limit).

    The priority is ``context["priority"]``, an ``int`` in range (an ``IntEnum`` will
    do); anything else raises ``ConfigurationError``. With 3 levels, a fraction of 0.2
    and ``"100/minute"``: priority 0 may use all 100 tokens, priority 1 all but 20,
    priority 2 all but 40. A cost above what a priority may ever take (``capacity -
    reserve``) is rejected with ``exceeds_capacity``.

    Accuracy: exact (a token bucket; long-run rate ``rate.limit`` per period for all
    priorities together). Memory: one record per key. Bursts: up to ``capacity -
    reserve`` for each priority. Typical use: keeping headroom for paying or
    interactive traffic while batch jobs soak up the rest.
    """

    priority_levels: int = 3
    reserved_fraction: float = 0.2
    default_priority: int | None = None
    burst_size: float | None = None
    script = priority_bucket
    reuses_arguments = True

    def __post_init__(self) -> None:
        levels = self.priority_levels
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ConfigurationError(f"priority_levels must be an int >= 1, got {levels!r}")
        fraction = check_number(
            "PriorityQueueStrategy",
            "reserved_fraction",
            self.reserved_fraction,
            low_open=False,
            high=1.0,
            high_open=True,
        )
        if (levels - 1) * fraction >= 1:
            raise ConfigurationError(
                f"{levels} levels reserving {fraction!r} each leave nothing for the lowest "
                "priority: (priority_levels - 1) × reserved_fraction must be below 1"
            )
        if self.default_priority is not None:
            self._check_priority(self.default_priority)
        if self.burst_size is not None:
            check_number("PriorityQueueStrategy", "burst_size", self.burst_size)

    def _check_priority(self, priority: object) -> int:
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not 0 <= priority < self.priority_levels
        ):
            raise ConfigurationError(
                f"a priority must be an int from 0 (highest) to {self.priority_levels - 1} "
                f"(lowest), got {priority!r}"
            )
        return int(priority)

    def priority_of(self, context: Mapping[str, Any] | None) -> int:
        """The priority of a hit with ``context``."""
        if context is not None and "priority" in context:
            return self._check_priority(context["priority"])
        if self.default_priority is not None:
            return self.default_priority
        return self.priority_levels - 1

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        capacity = float(rate.limit if self.burst_size is None else self.burst_size)
        refill_ms = capacity * rate.expire / rate.limit + 1
        check_horizon("PriorityQueueStrategy", rate, refill_ms, "the capacity")
        priority = self.priority_of(context)
        reserve = capacity * (priority * self.reserved_fraction)
        return (capacity, rate.limit / rate.expire, reserve, float(priority), cost)
