"""Leaky buckets: a meter that drains at ``limit / period``, and a FIFO queue of slots.

``LeakyBucketStrategy`` admits a hit while the meter has room for its cost; the
meter leaks continuously. ``LeakyBucketWithQueueStrategy`` serves hits strictly in
order, one cost unit per ``period / limit`` ms: an admitted hit is given the next
free slot (``metadata["delay_ms"]`` says how long until it comes), and a hit that
would make the queue longer than ``max_queue`` is rejected with the exact wait
until it would fit. Both keep a meter: the level (cost units queued) and when it
was last set, so a burst's level is the exact sum of its costs and a burst of
unit hits admits exactly ``max_queue`` of them at any rate. Both decide by a
moment computed from stored state alone, so ``wait_ms`` is exact; both read a
missing key as an empty bucket, which is what an expired key means.
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
    "LeakyBucketStatMetadata",
    "LeakyBucketStrategy",
    "LeakyBucketWithQueueStatMetadata",
    "LeakyBucketWithQueueStrategy",
    "Meter",
    "leaky_bucket",
    "leaky_bucket_queue",
]


class Meter(Record):
    level: float
    stamp: float


class LeakyBucketStatMetadata(TypedDict):
    bucket_level: float
    bucket_capacity: float
    leak_rate_per_ms: float
    exceeds_capacity: float


class LeakyBucketWithQueueStatMetadata(TypedDict):
    queue_size: float
    queue_cost: float
    delay_ms: float
    exceeds_capacity: float


@script
def leaky_bucket(meter: Key[Meter], capacity: float, leak: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    m = meter.get(default=Meter(0, now))
    level = max(0, m.level - max(0, now - m.stamp) * leak)
    if cost > capacity:
        return deny(
            wait_ms=capacity / leak, remaining=capacity - level, reset_ms=level / leak,
            bucket_level=level, bucket_capacity=capacity, leak_rate_per_ms=leak,
            exceeds_capacity=1,
        )  # fmt: skip
    allow_at = m.stamp + (m.level + cost - capacity) / leak
    if level + cost <= capacity or now >= allow_at:
        filled = min(capacity, level + cost)
        meter.set(Meter(filled, max(now, m.stamp)), ttl_ms=filled / leak + 1)
        return allow(
            remaining=capacity - filled, reset_ms=filled / leak, bucket_level=filled,
            bucket_capacity=capacity, leak_rate_per_ms=leak, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=capacity - level, reset_ms=level / leak,
        bucket_level=level, bucket_capacity=capacity, leak_rate_per_ms=leak, exceeds_capacity=0,
    )  # fmt: skip


@script
def leaky_bucket_queue(queue: Key[Meter], interval: float, max_queue: float, cost: float):  # type: ignore[no-untyped-def]
    # The backlog in cost units (not the time it drains, a time since the epoch: adding
    # cost × interval to one rounds, and a burst piled the roundings up).
    now = now_ms()
    q = queue.get(default=Meter(0, now))
    queued = max(0, q.level - max(0, now - q.stamp) / interval)
    if cost > max_queue:
        return deny(
            wait_ms=max_queue * interval, remaining=max(0, max_queue - queued),
            reset_ms=queued * interval, queue_size=queued, queue_cost=queued,
            delay_ms=queued * interval, exceeds_capacity=1,
        )  # fmt: skip
    allow_at = q.stamp + (q.level + cost - max_queue) * interval
    if queued + cost <= max_queue or now >= allow_at:
        filled = min(max_queue, queued + cost)
        queue.set(Meter(filled, max(now, q.stamp)), ttl_ms=filled * interval + 1)
        return allow(
            remaining=max(0, max_queue - filled), reset_ms=filled * interval,
            queue_size=filled, queue_cost=filled, delay_ms=queued * interval,
            exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=max(0, max_queue - queued), reset_ms=queued * interval,
        queue_size=queued, queue_cost=queued, delay_ms=queued * interval, exceeds_capacity=0,
    )  # fmt: skip


@dataclass(frozen=True)
class LeakyBucketStrategy(Strategy[LeakyBucketStatMetadata]):
    """A meter of ``capacity`` (default: the limit) leaking ``rate.limit`` per ``rate.expire``.

    Accuracy: exact. Memory: one record per key. Bursts: up to the capacity.
    """

    capacity: float | None = None
    script = leaky_bucket
    reuses_arguments = True

    def __post_init__(self) -> None:
        if self.capacity is not None:
            check_number("LeakyBucketStrategy", "capacity", self.capacity)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        capacity = float(rate.limit if self.capacity is None else self.capacity)
        check_horizon(
            "LeakyBucketStrategy", rate, capacity * rate.expire / rate.limit + 1, "capacity"
        )
        return (capacity, rate.limit / rate.expire, cost)


@dataclass(frozen=True)
class LeakyBucketWithQueueStrategy(Strategy[LeakyBucketWithQueueStatMetadata]):
    """Strict FIFO at ``rate.limit`` per ``rate.expire``; at most ``max_queue`` waiting.

    An admitted hit's slot is ``metadata["delay_ms"]`` away: serve it then for a
    perfectly even output rate. A burst of unit hits on an idle key admits exactly
    ``max_queue`` of them (rounded down). Memory: one record (two numbers) per key.
    """

    max_queue: float | None = None
    script = leaky_bucket_queue
    reuses_arguments = True
    hit_metadata = frozenset({"delay_ms", "exceeds_capacity"})

    def __post_init__(self) -> None:
        if self.max_queue is not None:
            check_number("LeakyBucketWithQueueStrategy", "max_queue", self.max_queue)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        queue = float(rate.limit if self.max_queue is None else self.max_queue)
        interval = rate.expire / rate.limit
        check_horizon(
            "LeakyBucketWithQueueStrategy", rate, queue * interval + 1, "max_queue × interval"
        )
        return (interval, queue, cost)
