"""Sliding windows: an exact log of hits, or a weighted pair of fixed-window counters.

The log stores each admitted hit as ``(expiry time, cost)``, expiry being the
arrival time (rounded up to the millisecond, so hits of one millisecond merge and
memory stays bounded by the limit) plus the period. An entry leaves the window
exactly at its stored expiry, and a rejected hit's wait is read off those same
stored times, so ``wait_ms`` is exact.

The counter keeps the current and previous fixed windows and weighs the previous
one by how much of it still overlaps the sliding window: O(1) memory, an estimate
that assumes hits were spread evenly over the previous window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ratescript.rates import Rate
from ratescript.scriptdsl import (
    Key,
    Log,
    Record,
    allow,
    ceil,
    deny,
    now_ms,
    script,
    window_index,
)
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon

__all__ = [
    "Counters",
    "SlidingWindowCounterStatMetadata",
    "SlidingWindowCounterStrategy",
    "SlidingWindowLogStatMetadata",
    "SlidingWindowLogStrategy",
    "sliding_window_counter",
    "sliding_window_log",
]


class SlidingWindowLogStatMetadata(TypedDict):
    entry_count: float
    current_cost_sum: float
    oldest_entry_ms: float
    exceeds_capacity: float


class SlidingWindowCounterStatMetadata(TypedDict):
    current_count: float
    previous_count: float
    weighted_count: float
    exceeds_capacity: float


class Counters(Record):
    start: float
    current: float
    previous: float


@script
def sliding_window_log(log: Key[Log], limit: float, period_ms: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    entries = log.get()
    entries.trim(now)
    used = entries.sum()
    oldest = entries.oldest(default=now + period_ms) - period_ms
    if cost > limit:
        return deny(
            wait_ms=period_ms, remaining=max(0, limit - used), reset_ms=oldest + period_ms - now,
            entry_count=entries.count(), current_cost_sum=used, oldest_entry_ms=oldest,
            exceeds_capacity=1,
        )  # fmt: skip
    if used + cost <= limit:
        entries.append(ceil(now) + period_ms, cost)
        log.set(entries, ttl_ms=ceil(now) + period_ms - now + 1)
        return allow(
            remaining=max(0, limit - (used + cost)), reset_ms=entries.oldest(default=now) - now,
            entry_count=entries.count(), current_cost_sum=used + cost,
            oldest_entry_ms=entries.oldest(default=now) - period_ms, exceeds_capacity=0,
        )  # fmt: skip
    # The first expiry after which the hit fits, found with the very arithmetic a later
    # hit's trim will do (the running total less each entry, in order): with fractional
    # costs any other sum can round the other way. Once every entry has left, the log is
    # empty (its total exactly 0) and the hit fits.
    rest = used
    wait = entries.newest(default=now) - now
    for expiry, amount in entries:
        rest = rest - amount
        if rest + cost <= limit:
            wait = expiry - now
            break
    return deny(
        wait_ms=wait, remaining=max(0, limit - used), reset_ms=oldest + period_ms - now,
        entry_count=entries.count(), current_cost_sum=used, oldest_entry_ms=oldest,
        exceeds_capacity=0,
    )  # fmt: skip


@script
def sliding_window_counter(counters: Key[Counters], limit: float, period_ms: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    index = window_index(now, period_ms)
    start = index * period_ms
    end = (index + 1) * period_ms
    c = counters.get(default=Counters(start, 0, 0))
    current = 0.0
    previous = 0.0
    if c.start == start:
        current = c.current
        previous = c.previous
    elif c.start == (index - 1) * period_ms:
        previous = c.current
    weight = min(1, (end - now) / period_ms)
    weighted = previous * weight + current
    if cost > limit:
        return deny(
            wait_ms=period_ms, remaining=max(0, limit - weighted), reset_ms=end - now,
            current_count=current, previous_count=previous, weighted_count=weighted,
            exceeds_capacity=1,
        )  # fmt: skip
    # The earliest time the hit fits: now, by the weighted count; else, from the stored
    # counts alone, in this window while the previous window's weight fades, or in the
    # next one. (Worked out only for a hit that does not fit now: most hits skip it.)
    allow_at = now
    if weighted + cost > limit:
        if current + cost <= limit:
            if previous > 0:
                allow_at = end - (limit - current - cost) * period_ms / previous
        else:
            allow_at = (index + 2) * period_ms - (limit - cost) * period_ms / current
    if now >= allow_at:
        counters.set(
            Counters(start, current + cost, previous), ttl_ms=(index + 2) * period_ms - now + 1
        )
        return allow(
            remaining=max(0, limit - weighted - cost), reset_ms=end - now,
            current_count=current + cost, previous_count=previous,
            weighted_count=weighted + cost, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=max(0, limit - weighted),
        reset_ms=end - now, current_count=current, previous_count=previous,
        weighted_count=weighted, exceeds_capacity=0,
    )  # fmt: skip


@dataclass(frozen=True)
class SlidingWindowLogStrategy(Strategy[SlidingWindowLogStatMetadata]):
    """Exactly ``rate.limit`` in any window of ``rate.expire`` ms.

    Accuracy: exact. Memory: one entry per distinct millisecond with hits in the
    window (at most the limit for unit costs). Bursts: none beyond the limit.
    """

    script = sliding_window_log
    reuses_arguments = True

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        # An entry lives a period from the millisecond after its hit.
        check_horizon("SlidingWindowLogStrategy", rate, rate.expire + 1, "the period")
        return (float(rate.limit), float(rate.expire), cost)


@dataclass(frozen=True)
class SlidingWindowCounterStrategy(Strategy[SlidingWindowCounterStatMetadata]):
    """The previous window weighted by its remaining overlap, plus the current one.

    Accuracy: an estimate (exact when hits are evenly spread); no boundary bursts
    of twice the limit. Memory: one record per key.
    """

    script = sliding_window_counter
    reuses_arguments = True

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        # The previous window counts while the current one lasts: two periods.
        check_horizon("SlidingWindowCounterStrategy", rate, 2 * rate.expire, "the period")
        return (float(rate.limit), float(rate.expire), cost)
